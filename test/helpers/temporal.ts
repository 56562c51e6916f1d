/** A real Temporal dev server for a test file, from the binary the setup script installed. */
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { toolPaths } from '../../sandbox/tools';

/** The SDK's readiness wait is short; a cold start on 2 busy cores may need another try. */
export async function startTemporal(): Promise<TestWorkflowEnvironment> {
  let lastError: unknown;
  for (let attempt = 1; attempt <= 3; attempt++) {
    try {
      return await TestWorkflowEnvironment.createLocal({
        server: {
          executable: { type: 'existing-path', path: toolPaths().temporal },
          ip: '127.0.0.1',
          ui: false,
          log: { format: 'pretty', level: 'warn' },
        },
      });
    } catch (err) {
      lastError = err;
    }
  }
  throw lastError;
}
