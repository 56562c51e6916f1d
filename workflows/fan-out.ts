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

/** Why the rollout stopped starting clusters, when it did. */
export type Halt = { reason: string } | undefined;

/**
 * Runs the window; returns the clusters not started yet (empty when all are done) and, when the
 * rollout stopped early (a canary did not upgrade, or the failure budget ran out), why.
 * Canaries go first and all the way; the others start only when every canary upgraded.
 */
export async function fanOut(
  plan: Plan,
  request: UpgradeRequest,
  status: FleetStatus,
  done: Map<string, ClusterResult>
): Promise<{ left: ClusterPlan[]; halt: Halt }> {
  const { options } = request;
  status.phase = 'workers';
  const canaries = new Set(options.canaries ?? []);
  const isCanary = (w: ClusterPlan) => canaries.has(w.cluster.name);
  const queue = [
    ...plan.workers.filter((w) => !done.has(w.cluster.name) && isCanary(w)),
    ...plan.workers.filter((w) => !done.has(w.cluster.name) && !isCanary(w)),
  ];
  const running = new Map<string, Promise<string>>();
  const perRun = request.tuning?.childrenPerRun ?? 200;
  const cancelled = () => CancellationScope.current().consideredCancelled;
  let halt: Halt;
  let startedThisRun = 0;
  const check = () => (halt ??= haltReason(options, canaries, done));
  while (queue.length > 0 || running.size > 0) {
    while (
      !cancelled() &&
      !check() &&
      running.size < options.maxParallel &&
      queue.length > 0 &&
      startedThisRun < perRun
    ) {
      const next = queue[0] as ClusterPlan;
      // The canaries must all have finished before anyone else starts.
      if (!isCanary(next) && [...canaries].some((c) => !done.has(c) && plan.workers.some((w) => w.cluster.name === c)))
        break;
      queue.shift();
      if (next.skipped) {
        done.set(next.cluster.name, skippedResult(next));
        status.finished(skippedResult(next));
        continue;
      }
      status.running(next);
      startedThisRun++;
      running.set(next.cluster.name, runChild(next, request, status, done));
    }
    setCurrentDetails(
      `workers: ${done.size}/${plan.workers.length} done, ${running.size} running, waiting for approval: ${status.waiting().join(', ') || 'none'}${halt ? `; stopped: ${halt.reason}` : ''}`
    );
    if (running.size === 0) break;
    running.delete(await Promise.race(running.values()));
  }
  return { left: queue, halt: check() };
}

/** A canary that did not upgrade, or more failed clusters than the budget allows, stops the rollout. */
function haltReason(options: UpgradeRequest['options'], canaries: Set<string>, done: Map<string, ClusterResult>): Halt {
  const bad = (r: ClusterResult) => r.outcome === 'failed' || r.outcome === 'rolled-back';
  for (const c of canaries) {
    const r = done.get(c);
    if (r && r.outcome !== 'upgraded' && r.outcome !== 'already-at-target')
      return { reason: `canary ${c} ended ${r.outcome}${r.error ? ` (${r.error})` : ''}` };
  }
  const failed = [...done.values()].filter(bad);
  if (options.maxFailures !== undefined && failed.length > options.maxFailures)
    return {
      reason: `${failed.length} worker cluster(s) failed (${failed.map((r) => r.cluster).join(', ')}), more than --max-failures ${options.maxFailures}`,
    };
  return undefined;
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
      args: [{ upgradeId: request.upgradeId, plan, tuning: request.tuning, onFailure: request.options.onFailure }],
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
