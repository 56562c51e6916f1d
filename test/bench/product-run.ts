/**
 * One upgrade by the product, as an operator runs it: a worker process (`worker/main.ts`), the
 * upgrade started as `start-upgrade` starts it, CRD steps approved ahead as `approve --ahead --all`
 * does. Measures the wall time from the start call to the result and the worker's peak RSS.
 */
import type { Client } from '@temporalio/client';
import { approve } from '../../scripts/commands/approve';
import { buildRequest } from '../../scripts/commands/plan';
import { startUpgrade } from '../../scripts/commands/start-upgrade';
import type { TemporalEnv } from '../../scripts/lib/temporal';
import type { UpgradeRequest } from '../../runbook/types';
import type { upgradeEngine } from '../../workflows';
import { startWorkers, type WorkerProcess } from './worker-process';

export interface ProductRunOptions {
  client: Client;
  temporal: TemporalEnv;
  fleetFile: string;
  version: string;
  maxParallel: number;
  /** Environment of the worker process (tools, dirs, stand-in settings), given the upgrade ID. */
  workerEnv(upgradeId: string): NodeJS.ProcessEnv;
  /** Called once the upgrade runs (the resume measurement kills and replaces the worker here). */
  during?(ctx: {
    request: UpgradeRequest;
    worker: WorkerProcess;
    startedAt: number;
    env: NodeJS.ProcessEnv;
  }): Promise<WorkerProcess>;
  cpuProfileDir?: string;
  /** Workflows and activities in two worker processes (SKOALA_WORKER_ROLE), not one. */
  split?: boolean;
}

export interface ProductRun {
  workflowId: string;
  upgradeId: string;
  wallMs: number;
  counts: Record<string, number>;
  peakRssBytes: number;
}

export async function runProduct(o: ProductRunOptions): Promise<ProductRun> {
  const request = await buildRequest({
    fleet: o.fleetFile,
    version: o.version,
    maxParallel: String(o.maxParallel),
    by: 'bench',
  });
  const env = {
    ...o.workerEnv(request.upgradeId),
    TEMPORAL_ADDRESS: o.temporal.address,
    SKOALA_TASK_QUEUE: o.temporal.taskQueue,
  };
  let worker = await startWorkers(env, { split: o.split, cpuProfileDir: o.cpuProfileDir });
  try {
    const startedAt = Date.now();
    const started = await startUpgrade(request, o.client, o.temporal);
    await approveAhead(o.client, started.workflowId);
    if (o.during) worker = await o.during({ request, worker, startedAt, env });
    const result = await o.client.workflow.getHandle<typeof upgradeEngine>(started.workflowId).result();
    const wallMs = Date.now() - startedAt;
    const peakRssBytes = await worker.peakRss();
    return {
      workflowId: started.workflowId,
      upgradeId: request.upgradeId,
      wallMs,
      counts: result.counts,
      peakRssBytes,
    };
  } finally {
    await worker.stop();
  }
}

/**
 * `approve --ahead --all` once the plan exists. The CLI waits up to 60 s for it; a large fleet's
 * preflight may take longer (1,000 clusters through 20 activity slots: more than a minute).
 */
async function approveAhead(client: Client, workflowId: string): Promise<void> {
  const deadline = Date.now() + 10 * 60_000;
  for (;;) {
    try {
      await approve({ ahead: true, all: true, by: 'bench', workflowId }, client);
      return;
    } catch (err) {
      if (!(err instanceof Error && /plan is not made yet/.test(err.message)) || Date.now() > deadline) throw err;
    }
  }
}
