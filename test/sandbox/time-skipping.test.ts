/** The time-skipping test server (installed by scripts/setup-tools.ts) skips a 3-day timer. */
import { fileURLToPath } from 'node:url';
import {
  bundleWorkflowCode,
  DefaultLogger,
  Runtime,
  Worker,
  type WorkflowBundleWithSourceMap,
} from '@temporalio/worker';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startTimeSkipping } from '../helpers/time-skipping';
import type { sleepy } from './fixtures/sleepy-workflow';

const noop = () => {};
const quietLogger = { trace: noop, debug: noop, info: noop, warn: noop, error: noop, log: noop };
const THREE_DAYS_MS = 3 * 24 * 3600_000;

// Before any connection (one runtime per process; vitest forks a process per file): warnings only.
Runtime.install({ logger: new DefaultLogger('WARN') });

let env: TestWorkflowEnvironment | undefined;
let bundle: WorkflowBundleWithSourceMap;

beforeAll(async () => {
  [env, bundle] = await Promise.all([
    startTimeSkipping(),
    bundleWorkflowCode({
      workflowsPath: fileURLToPath(new URL('./fixtures/sleepy-workflow.ts', import.meta.url)),
      logger: quietLogger,
    }),
  ]);
});

afterAll(async () => {
  await env?.teardown();
});

it('runs a workflow that sleeps 3 days in well under a minute', async () => {
  const e = env!;
  expect(e.supportsTimeSkipping).toBe(true);
  const taskQueue = `time-skipping-${Date.now()}`;
  const worker = await Worker.create({
    connection: e.nativeConnection,
    taskQueue,
    workflowBundle: bundle,
    shutdownGraceTime: '1s',
  });
  const startedAt = await e.currentTimeMs();
  const t0 = Date.now();
  const workflowNow = await worker.runUntil(
    e.client.workflow.execute<typeof sleepy>('sleepy', { taskQueue, workflowId: taskQueue })
  );
  const realMs = Date.now() - t0;
  expect(workflowNow - startedAt).toBeGreaterThanOrEqual(THREE_DAYS_MS);
  expect(realMs).toBeLessThan(60_000);
});
