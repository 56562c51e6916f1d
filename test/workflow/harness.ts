/** One Temporal dev server and one workflow bundle per test file; a fresh worker per test. */
import { bundleWorkflowCode, type Worker, type WorkflowBundleWithSourceMap } from '@temporalio/worker';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { readFile } from 'node:fs/promises';
import { WorkflowUpdateFailedError, type WorkflowHandle } from '@temporalio/client';
import { createWorker, workflowsPath } from '../../worker/create-worker';
import { startTemporal } from '../helpers/temporal';
import type { Activities } from '../../activities';
import { statusQuery } from '../../workflows/messages';
import type { UpgradeStatus } from '../../runbook/types';

export interface Harness {
  env: TestWorkflowEnvironment;
  bundle: WorkflowBundleWithSourceMap;
  worker(taskQueue: string, activities: Activities): Promise<Worker>;
  close(): Promise<void>;
}

export async function startHarness(): Promise<Harness> {
  const [env, bundle] =
    (await sharedServer()) ??
    (await Promise.all([startTemporal(), bundleWorkflowCode({ workflowsPath, logger: quietLogger })]));
  return {
    env,
    bundle,
    worker: (taskQueue, activities) =>
      createWorker({
        connection: env.nativeConnection,
        taskQueue,
        activities,
        workflowBundle: bundle,
        shutdownGraceTime: '1s',
      }),
    close: () => env.teardown(),
  };
}

/**
 * Under vitest, the server and bundle of test/global-setup.ts (teardown closes only this file's
 * connections); outside it (record-histories), undefined: the caller starts its own.
 */
async function sharedServer(): Promise<[TestWorkflowEnvironment, WorkflowBundleWithSourceMap] | undefined> {
  if (!process.env.VITEST) return undefined;
  const { inject } = await import('vitest');
  const shared = inject('temporal');
  if (!shared) return undefined; // a run without the shared server (SKOALA_SHARED_TEMPORAL=off)
  const { address, namespace } = shared;
  const [env, bundle] = await Promise.all([
    TestWorkflowEnvironment.createFromExistingServer({ address, namespace }),
    readFile(inject('workflowBundleFile'), 'utf8').then((text) => JSON.parse(text) as WorkflowBundleWithSourceMap),
  ]);
  return [env, bundle];
}

const noop = () => {};
const quietLogger = { trace: noop, debug: noop, info: noop, warn: noop, error: noop, log: noop };

/** Polls the status query until `predicate` holds (the workflow must be running on some worker). */
export async function waitForStatus(
  handle: WorkflowHandle,
  predicate: (s: UpgradeStatus) => boolean,
  timeoutMs = 30_000
): Promise<UpgradeStatus> {
  const deadline = Date.now() + timeoutMs;
  let last: UpgradeStatus | undefined;
  let lastError: unknown;
  while (Date.now() < deadline) {
    try {
      last = await handle.query(statusQuery);
      if (predicate(last)) return last;
    } catch (err) {
      lastError = err; // not started yet, or no worker answered yet
    }
    await new Promise((r) => setTimeout(r, 150));
  }
  const why = last === undefined && lastError instanceof Error ? ` (the query failed: ${lastError.message})` : '';
  throw new Error(`status never matched; last: ${JSON.stringify(last)}${why}`);
}

/** The largest number of intervals that overlap at one instant. */
export function maxOverlap(intervals: [number, number][]): number {
  const points = intervals
    .flatMap(([s, e]) => [[s, 1] as const, [e, -1] as const])
    .sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  let now = 0;
  let max = 0;
  for (const [, d] of points) max = Math.max(max, (now += d));
  return max;
}

/** The message an update was refused with (its validator's or its handler's); fails if it was accepted. */
export async function refusal(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (err) {
    if (err instanceof WorkflowUpdateFailedError) return (err.cause as Error).message;
    throw err;
  }
  throw new Error('the update was accepted');
}
