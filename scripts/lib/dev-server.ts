/**
 * An embedded Temporal dev server (and UI), from the `temporal` binary the setup script installed.
 * With SKOALA_TEST_TEMPORAL=server, tests get a production-shaped Temporal instead: the server
 * binary on PostgreSQL (sandbox/temporal-server.ts), so whole suites can be run against it.
 */
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { toolPaths } from '../../sandbox/tools';

export interface DevServerOptions {
  /** Serve the Temporal UI on this port. */
  uiPort?: number;
  /** Fixed frontend port (default: a free one). */
  port?: number;
  /** SQLite file: the server's state outlives the process (default: in memory). */
  dbFilename?: string;
}

/** The SDK's readiness wait is short; a cold start on 2 busy cores may need another try. */
export async function startDevServer(opts: DevServerOptions = {}): Promise<TestWorkflowEnvironment> {
  // The UI and a restart on the same SQLite file are dev-server features: those keep it.
  if (process.env.SKOALA_TEST_TEMPORAL === 'server' && !opts.uiPort && !opts.dbFilename) return startServerOnPostgres();
  let lastError: unknown;
  for (let attempt = 1; attempt <= 3; attempt++) {
    try {
      return await TestWorkflowEnvironment.createLocal({
        server: {
          executable: { type: 'existing-path', path: toolPaths().temporal },
          ip: '127.0.0.1',
          ...(opts.uiPort ? { ui: true, uiPort: opts.uiPort } : { ui: false }),
          ...(opts.port ? { port: opts.port } : {}),
          ...(opts.dbFilename ? { dbFilename: opts.dbFilename } : {}),
          log: { format: 'pretty', level: 'warn' },
        },
      });
    } catch (err) {
      lastError = err;
    }
  }
  throw lastError;
}

/** The production-shaped server, wrapped as the SDK's test environment; teardown stops it and PostgreSQL. */
async function startServerOnPostgres(): Promise<TestWorkflowEnvironment> {
  const { startTemporalServer } = await import('../../sandbox/temporal-server');
  const dir = await mkdtemp(path.join(tmpdir(), 'skoala-temporal-'));
  const server = await startTemporalServer({ dir });
  const env = await TestWorkflowEnvironment.createFromExistingServer({
    address: server.address,
    namespace: server.namespace,
  });
  const teardown = env.teardown.bind(env);
  env.teardown = async () => {
    await teardown();
    await server.stop();
    await rm(dir, { recursive: true, force: true });
  };
  return env;
}
