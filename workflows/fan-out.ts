/**
 * The worker clusters: one upgradeWorkerCluster child per cluster, at most maxParallel at a time.
 * Stops starting children when the upgrade is cancelled or this run has started its share (the
 * parent then continues as new).
 */
import {
  CancellationScope,
  isCancellation,
  ParentClosePolicy,
  setCurrentDetails,
  startChild,
  workflowInfo,
} from '@temporalio/workflow';
import type { ClusterPlan, ClusterResult, Plan, UpgradeRequest } from '../runbook/types';
import { skippedResult } from './control-plane';
import { errorMessage } from './errors';
import type { FleetStatus } from './fleet-status';
import { upgradeWorkerCluster } from './upgrade-worker-cluster';

export const childId = (cluster: string): string => `${workflowInfo().workflowId}/${cluster}`;

/** Runs the window; returns the clusters not started yet (empty when all are done). */
export async function fanOut(
  plan: Plan,
  request: UpgradeRequest,
  status: FleetStatus,
  done: Map<string, ClusterResult>
): Promise<ClusterPlan[]> {
  const { options } = request;
  status.phase = 'workers';
  const queue = plan.workers.filter((w) => !done.has(w.cluster.name));
  const running = new Map<string, Promise<string>>();
  const perRun = request.tuning?.childrenPerRun ?? 200;
  const cancelled = () => CancellationScope.current().consideredCancelled;
  let startedThisRun = 0;
  while (queue.length > 0 || running.size > 0) {
    while (!cancelled() && running.size < options.maxParallel && queue.length > 0 && startedThisRun < perRun) {
      const wp = queue.shift() as ClusterPlan;
      if (wp.skipped) {
        done.set(wp.cluster.name, skippedResult(wp));
        status.finished(skippedResult(wp));
        continue;
      }
      status.running(wp);
      startedThisRun++;
      running.set(wp.cluster.name, runChild(wp, request, status, done));
    }
    setCurrentDetails(
      `workers: ${done.size}/${plan.workers.length} done, ${running.size} running, waiting for approval: ${status.waiting().join(', ') || 'none'}`
    );
    if (running.size === 0) break;
    running.delete(await Promise.race(running.values()));
  }
  return queue;
}

/** Runs one child to its end; resolves with the cluster name whatever happens, never rejects. */
async function runChild(
  plan: ClusterPlan,
  request: UpgradeRequest,
  status: FleetStatus,
  done: Map<string, ClusterResult>
): Promise<string> {
  const name = plan.cluster.name;
  const startedAt = new Date().toISOString();
  let result: ClusterResult;
  try {
    const child = await startChild(upgradeWorkerCluster, {
      workflowId: childId(name),
      args: [{ upgradeId: request.upgradeId, plan, tuning: request.tuning }],
      ...(plan.cluster.taskQueue ? { taskQueue: plan.cluster.taskQueue } : {}),
      // If the parent is terminated, children are asked to cancel: each lets a running helm finish
      // and ends in a named state, instead of being killed mid-step (TERMINATE, the default).
      parentClosePolicy: ParentClosePolicy.REQUEST_CANCEL,
      staticSummary: `skoala-init on ${name}: ${plan.from ?? 'none'} -> ${plan.to}`,
    });
    result = await child.result();
  } catch (err) {
    const cancelled = isCancellation(err) || isCancellation((err as Error).cause);
    const atGate = status.state(name) === 'waiting-approval';
    result = {
      cluster: name,
      role: 'worker',
      outcome: cancelled ? 'cancelled' : 'failed',
      from: plan.from,
      to: plan.to,
      error: cancelled ? `cancelled${atGate ? ' at the CRD approval gate' : ''}` : errorMessage(err),
      startedAt,
      finishedAt: new Date().toISOString(),
    };
  }
  done.set(name, result);
  status.finished(result);
  return name;
}
