/**
 * An embedded Temporal dev server (and UI), from the `temporal` binary the setup script installed,
 * with the project's search attributes registered, its log in a file. With
 * SKOALA_TEST_TEMPORAL=server, tests get a production-shaped Temporal instead: the server binary on
 * PostgreSQL (sandbox/temporal-server.ts), so whole suites can be run against it.
 *
 * We start `temporal server start-dev` ourselves rather than with the SDK's createLocal: the SDK's
 * native bridge pipes the server's stdout and stderr into ours (core-bridge `src/testing.rs`,
 * get_stdout_stderr) with no way to redirect them, so its log lines (`time=... level=WARN msg=...`)
 * landed in the demo's terminal. Its readiness wait is also a fixed 5 s, short for a cold start on
 * 2 busy cores; ours waits for the frontend as long as the process lives.
 */
import { Connection } from '@temporalio/client';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { CLI_TYPE_NAME, SKOALA_SEARCH_ATTRIBUTES } from '../../runbook/search-attributes';
import { freePort, sleep, spawnTracked, tailFile, terminate, waitPortFree, type Tracked } from '../../sandbox/procs';
import { toolPaths } from '../../sandbox/tools';

export interface DevServerOptions {
  /** Serve the Temporal UI on this port. */
  uiPort?: number;
  /** Fixed frontend port (default: a free one). */
  port?: number;
  /** SQLite file: the server's state outlives the process (default: in memory). */
  dbFilename?: string;
  /**
   * The server's stdout and stderr are appended here (default: a file in a temp dir that teardown
   * removes). Nothing of the server's reaches our own stdout or stderr.
   */
  logFile?: string;
}

/** How long one start may take before the frontend answers (a cold start on 2 busy cores: ~2-6 s). */
const READY_TIMEOUT_MS = 30_000;
/** SIGTERM lets the server close its SQLite file; SIGKILL after this. */
const STOP_GRACE_MS = 5_000;
const NAMESPACE = 'default';

/** The `temporal server start-dev` arguments (exported for the unit test). */
export function devServerArgs(opts: { port: number; uiPort?: number; dbFilename?: string }): string[] {
  return [
    'server',
    'start-dev',
    '--ip',
    '127.0.0.1',
    '--port',
    String(opts.port),
    ...(opts.uiPort ? ['--ui-port', String(opts.uiPort)] : ['--headless']),
    ...(opts.dbFilename ? ['--db-filename', opts.dbFilename] : []),
    '--namespace',
    NAMESPACE,
    ...SKOALA_SEARCH_ATTRIBUTES.flatMap((k) => ['--search-attribute', `${k.name}=${CLI_TYPE_NAME[k.type]}`]),
    '--log-level',
    'warn',
    '--log-format',
    'pretty',
    // As the SDK's createLocal passes them: no version check call home; updates on (decideCrd).
    '--dynamic-config-value',
    'frontend.enableServerVersionCheck=false',
    '--dynamic-config-value',
    'frontend.enableUpdateWorkflowExecution=true',
    '--dynamic-config-value',
    'frontend.enableUpdateWorkflowExecutionAsyncAccepted=true',
  ];
}

export async function startDevServer(opts: DevServerOptions = {}): Promise<TestWorkflowEnvironment> {
  // The UI and a restart on the same SQLite file are dev-server features: those keep it.
  if (process.env.SKOALA_TEST_TEMPORAL === 'server' && !opts.uiPort && !opts.dbFilename) return startServerOnPostgres();
  const tempDir = opts.logFile ? undefined : await mkdtemp(path.join(tmpdir(), 'skoala-devserver-'));
  const logFile = opts.logFile ?? path.join(tempDir!, 'temporal-server.log');
  let lastError: unknown;
  // A free port can be taken between freePort() and the server's bind: another try, another port.
  for (let attempt = 1; attempt <= 3; attempt++) {
    const port = opts.port ?? (await freePort());
    // A restart on a fixed port must not race the previous server still letting go of it.
    if (opts.port) await waitPortFree(port);
    const proc = spawnTracked('temporal-dev-server', toolPaths().temporal, devServerArgs({ ...opts, port }), logFile);
    try {
      const address = `127.0.0.1:${port}`;
      await waitForFrontend(proc, address, logFile);
      const env = await TestWorkflowEnvironment.createFromExistingServer({ address, namespace: NAMESPACE });
      const teardown = env.teardown.bind(env);
      env.teardown = async () => {
        await teardown();
        await terminate(proc, STOP_GRACE_MS);
        if (tempDir) await rm(tempDir, { recursive: true, force: true });
      };
      return env;
    } catch (err) {
      lastError = err;
      await terminate(proc, STOP_GRACE_MS);
    }
  }
  if (tempDir) await rm(tempDir, { recursive: true, force: true });
  throw lastError;
}

/** Until the frontend answers (the connection's getSystemInfo succeeds), or the process ends. */
async function waitForFrontend(proc: Tracked, address: string, logFile: string): Promise<void> {
  const start = Date.now();
  let lastErr = '';
  for (;;) {
    if (proc.child.exitCode !== null || proc.child.signalCode !== null) {
      throw new Error(
        `temporal server start-dev exited (${await proc.exited}) before ${address} answered; ${logFile}:\n${await tailFile(logFile)}`
      );
    }
    if (Date.now() - start > READY_TIMEOUT_MS) {
      throw new Error(
        `temporal server start-dev: ${address} not answering after ${READY_TIMEOUT_MS} ms (${lastErr}); ${logFile}:\n${await tailFile(logFile)}`
      );
    }
    try {
      const connection = await Connection.connect({ address, connectTimeout: 1000 });
      await connection.close();
      return;
    } catch (err) {
      lastErr = err instanceof Error ? err.message : String(err);
      await sleep(100);
    }
  }
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
  try {
    // As the dev server registers them at start; a test against either finds the same attributes.
    const { namespace } = server;
    await env.connection.operatorService.addSearchAttributes({
      namespace,
      searchAttributes: Object.fromEntries(
        SKOALA_SEARCH_ATTRIBUTES.map((k) => [k.name, k.type === 'KEYWORD' ? INDEXED_KEYWORD : INDEXED_KEYWORD_LIST])
      ),
    });
    // SQL visibility maps them in the namespace's config, which the services' namespace caches
    // learn within a refresh (1 s here): until then a start naming one is refused ("no mapping").
    const query = SKOALA_SEARCH_ATTRIBUTES.map((k) => `${k.name} = "probe"`).join(' OR ');
    for (let waited = 0; ; waited += 100) {
      try {
        await env.connection.workflowService.countWorkflowExecutions({ namespace, query });
        break;
      } catch (err) {
        if (waited > 10_000) throw err;
        await sleep(100);
      }
    }
  } catch (err) {
    await env.teardown();
    throw err;
  }
  return env;
}

// temporal.api.enums.v1.IndexedValueType (@temporalio/proto is not a direct dependency).
const INDEXED_KEYWORD = 2;
const INDEXED_KEYWORD_LIST = 7;
