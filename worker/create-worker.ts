/**
 * The worker: registers the two workflows and the activities it is given. The entry point
 * (main.ts), the demo and the tests all build theirs here.
 */
import { Worker, type NativeConnection, type WorkerOptions } from '@temporalio/worker';
import { fileURLToPath } from 'node:url';
import type { Activities } from '../activities';
import { DEFAULT_TASK_QUEUE } from '../runbook/fleet';
import { DEFAULT_MAX_CONCURRENT_ACTIVITIES } from './config';

export { DEFAULT_TASK_QUEUE };
export const workflowsPath = fileURLToPath(new URL('../workflows/index.ts', import.meta.url));
/** Written by `npm run build`; `npm run worker` uses it when SKOALA_WORKFLOW_BUNDLE names it. */
export const workflowBundlePath = fileURLToPath(new URL('../dist/workflow-bundle.js', import.meta.url));

export interface CreateWorkerOptions {
  connection: NativeConnection;
  namespace?: string;
  taskQueue?: string;
  /** Absent: no activities at all (tests of workflow code alone). */
  activities?: Activities;
  /** False: an activities-only worker (no workflow code, a small process). Default true. */
  workflows?: boolean;
  /**
   * False: a workflows-only worker. It still runs the local activities (pure decisions recorded in
   * history, which run where their workflow runs) but polls no activity tasks.
   */
  remoteActivities?: boolean;
  /** A bundle from `npm run build` (faster start); otherwise the workflows are bundled at start. */
  workflowBundle?: WorkerOptions['workflowBundle'];
  maxConcurrentActivityTaskExecutions?: number;
  /** How long a stopping worker lets running activities finish before cancelling them. */
  shutdownGraceTime?: WorkerOptions['shutdownGraceTime'];
}

export async function createWorker(opts: CreateWorkerOptions): Promise<Worker> {
  return Worker.create({
    connection: opts.connection,
    namespace: opts.namespace ?? 'default',
    taskQueue: opts.taskQueue ?? DEFAULT_TASK_QUEUE,
    ...(opts.workflows === false
      ? {}
      : opts.workflowBundle
        ? { workflowBundle: opts.workflowBundle }
        : { workflowsPath }),
    ...(opts.activities
      ? {
          activities: opts.activities,
          maxConcurrentActivityTaskExecutions:
            opts.maxConcurrentActivityTaskExecutions ?? DEFAULT_MAX_CONCURRENT_ACTIVITIES,
          enableNonLocalActivities: opts.remoteActivities ?? true,
        }
      : {}),
    shutdownGraceTime: opts.shutdownGraceTime ?? '10s',
  });
}
