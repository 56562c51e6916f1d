/** An embedded Temporal dev server (and UI), from the `temporal` binary the setup script installed. */
import { TestWorkflowEnvironment } from '@temporalio/testing';
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
