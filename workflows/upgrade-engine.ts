/**
 * upgradeEngine: the whole runbook for one fleet. Preflight every cluster (read-only), plan,
 * upgrade the control plane and verify it, then fan out one upgradeWorkerCluster child per worker
 * cluster, at most maxParallel at a time.
 */
import {
  ApplicationFailure,
  ChildWorkflowFailure,
  condition,
  continueAsNew,
  getExternalWorkflowHandle,
  allHandlersFinished,
  log,
  setCurrentDetails,
  setHandler,
  startChild,
  upsertMemo,
  workflowInfo,
} from '@temporalio/workflow';
import { PlanRefused, planUpgrade } from '../runbook/plan';
import type {
  ClusterFacts,
  ClusterPlan,
  ClusterResult,
  FleetFacts,
  Plan,
  UpgradeRequest,
  UpgradeResult,
} from '../runbook/types';
import { proxies, type Proxies } from './activities';
import { FleetStatus } from './fleet-status';
import {
  clusterProgressSignal,
  crdDecisionSignal,
  decideAllSignal,
  decideAllUpdate,
  statusQuery,
  type CrdDecisionForAll,
} from './messages';
import { memoOf } from './plan-memo';
import { runSteps } from './run-steps';
import { upgradeWorkerCluster } from './upgrade-worker-cluster';

export interface UpgradeEngineInput {
  request: UpgradeRequest;
  /** State handed over by continue-as-new; absent on the first run. */
  carried?: Carried;
}

interface Carried {
  facts: FleetFacts;
  controlPlane: ClusterResult;
  /** Worker clusters already finished, in finishing order. */
  workers: ClusterResult[];
}

const errorMessage = (err: unknown): string => {
  if (err instanceof ChildWorkflowFailure && err.cause) return err.cause.message;
  if (err instanceof Error) return err.cause instanceof Error ? err.cause.message : err.message;
  return String(err);
};

export async function upgradeEngine(input: UpgradeEngineInput): Promise<UpgradeResult> {
  const { request } = input;
  const { fleet, options } = request;
  const acts = proxies(request.tuning);
  const status = new FleetStatus(
    request.upgradeId,
    options.targetVersion,
    fleet.controlPlane.name,
    fleet.workers.map((w) => w.name)
  );
  setHandler(statusQuery, () => status.status());
  setHandler(clusterProgressSignal, (p) => status.progress(p));
  const decideAll = async (d: CrdDecisionForAll): Promise<string[]> => {
    const clusters = status.waiting();
    // Workflows cannot send updates, only signals: the child applies the same checks to either.
    await Promise.all(
      clusters.map((cluster) =>
        getExternalWorkflowHandle(childId(cluster)).signal(crdDecisionSignal, {
          cluster,
          approve: d.approve,
          by: d.by,
          reason: d.reason,
        })
      )
    );
    log.info(`CRD step ${d.approve ? 'approved' : 'rejected'} for all waiting clusters`, { clusters, by: d.by });
    return clusters;
  };
  setHandler(decideAllUpdate, decideAll, {
    validator: (d) => {
      if (!d.by?.trim())
        throw ApplicationFailure.nonRetryable('an approval must say who gives it (--by)', 'ApprovalRefused');
      if (status.waiting().length === 0)
        throw ApplicationFailure.nonRetryable('no cluster is waiting for approval', 'ApprovalRefused');
    },
  });
  setHandler(decideAllSignal, async (d) => {
    if (d.by?.trim()) await decideAll(d);
  });

  // 1. Preflight: read every cluster and the chart repo before anything changes.
  const facts = input.carried?.facts ?? (await preflight(request, acts, status));
  let plan: Plan;
  try {
    plan = planUpgrade(request, facts);
  } catch (err) {
    status.phase = 'failed';
    if (err instanceof PlanRefused)
      throw ApplicationFailure.nonRetryable(`upgrade refused: ${err.message}`, 'PlanRefused');
    throw err;
  }
  status.planned(plan);
  if (!input.carried) upsertMemo({ plan: memoOf(plan) });

  // 2. Control plane, verified before any worker cluster is touched.
  const controlPlane =
    input.carried?.controlPlane ?? (await upgradeControlPlane(plan.controlPlane, request.upgradeId, acts, status));
  status.finished(controlPlane);

  // 3. Worker clusters: a sliding window of children.
  status.phase = 'workers';
  const done = new Map<string, ClusterResult>((input.carried?.workers ?? []).map((r) => [r.cluster, r]));
  for (const r of done.values()) status.finished(r);
  const queue = plan.workers.filter((w) => !done.has(w.cluster.name));
  const running = new Map<string, Promise<string>>();
  const perRun = request.tuning?.childrenPerRun ?? 200;
  let finishedThisRun = 0;
  while (queue.length > 0 || running.size > 0) {
    while (running.size < options.maxParallel && queue.length > 0 && finishedThisRun + running.size < perRun) {
      const wp = queue.shift() as ClusterPlan;
      if (wp.skipped) {
        done.set(wp.cluster.name, skippedResult(wp));
        status.finished(skippedResult(wp));
        continue;
      }
      status.running(wp);
      running.set(wp.cluster.name, runChild(wp, request, status, done));
    }
    setCurrentDetails(
      `workers: ${done.size}/${plan.workers.length} done, ${running.size} running, waiting for approval: ${status.waiting().join(', ') || 'none'}`
    );
    if (running.size === 0) break;
    const finished = await Promise.race(running.values());
    running.delete(finished);
    finishedThisRun++;
  }
  if (queue.length > 0) {
    // History stays small for large fleets: the window drained, hand the rest to a new run.
    await condition(allHandlersFinished);
    await continueAsNew<typeof upgradeEngine>({
      request,
      carried: { facts, controlPlane, workers: [...done.values()] },
    });
  }

  status.phase = 'done';
  setCurrentDetails('done');
  const workers = plan.workers.map((w) => done.get(w.cluster.name) ?? notStarted(w));
  await condition(allHandlersFinished);
  return {
    upgradeId: request.upgradeId,
    targetVersion: options.targetVersion,
    controlPlane,
    workers,
    counts: countOutcomes([controlPlane, ...workers]),
  };
}

const childId = (cluster: string): string => `${workflowInfo().workflowId}/${cluster}`;

async function preflight(request: UpgradeRequest, acts: Proxies, status: FleetStatus): Promise<FleetFacts> {
  const { fleet, options } = request;
  setCurrentDetails('preflight: reading every cluster and the chart repository');
  const version = options.targetVersion;
  const [charts, clusters] = await Promise.all([
    Promise.allSettled(
      (['skoala', 'skoala-init'] as const).map((chart) =>
        acts.quick.checkChartVersion({ repo: fleet.chartRepo, chart, version })
      )
    ),
    Promise.allSettled([
      // Each cluster is read from its own site's task queue: only workers there may reach it.
      ...[fleet.controlPlane, ...fleet.workers].map((cluster, i) =>
        acts.quick.preflightCluster.executeWithOptions(
          {
            ...acts.options.quick,
            ...(cluster.taskQueue ? { taskQueue: cluster.taskQueue } : {}),
            summary: `preflight ${cluster.name}`,
          },
          [{ cluster, release: i === 0 ? 'skoala' : 'skoala-init' }]
        )
      ),
    ]),
  ]);
  const names = ['chart skoala', 'chart skoala-init', fleet.controlPlane.name, ...fleet.workers.map((w) => w.name)];
  const problems = [...charts, ...clusters].flatMap((r, i) =>
    r.status === 'rejected' ? [`${names[i]}: ${errorMessage(r.reason)}`] : []
  );
  if (problems.length > 0) {
    status.phase = 'failed';
    throw ApplicationFailure.nonRetryable(
      `preflight failed, nothing was changed: ${problems.join('; ')}`,
      'PreflightFailed'
    );
  }
  const [controlPlane, ...workers] = clusters.map((r) => (r as PromiseFulfilledResult<ClusterFacts>).value);
  return { controlPlane: controlPlane as ClusterFacts, workers };
}

async function upgradeControlPlane(
  plan: ClusterPlan,
  upgradeId: string,
  acts: Proxies,
  status: FleetStatus
): Promise<ClusterResult> {
  status.phase = 'control-plane';
  if (plan.skipped) return skippedResult(plan);
  const startedAt = new Date().toISOString();
  status.running(plan);
  try {
    const outcome = await runSteps(plan, acts, {
      upgradeId,
      onStep: (kind) => {
        setCurrentDetails(`control plane ${plan.cluster.name}: ${kind}`);
        status.update(plan.cluster.name, { step: kind });
      },
    });
    return {
      cluster: plan.cluster.name,
      role: 'control-plane',
      outcome: 'upgraded',
      from: plan.from,
      to: plan.to,
      backup: outcome.backup,
      startedAt,
      finishedAt: new Date().toISOString(),
    };
  } catch (err) {
    status.phase = 'failed';
    status.update(plan.cluster.name, { state: 'failed', error: errorMessage(err) });
    throw ApplicationFailure.nonRetryable(
      `control plane ${plan.cluster.name} failed, no worker cluster was touched: ${errorMessage(err)}`,
      'ControlPlaneFailed'
    );
  }
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
      staticSummary: `skoala-init on ${name}: ${plan.from ?? 'none'} -> ${plan.to}`,
    });
    result = await child.result();
  } catch (err) {
    result = {
      cluster: name,
      role: 'worker',
      outcome: 'failed',
      from: plan.from,
      to: plan.to,
      error: errorMessage(err),
      startedAt,
      finishedAt: new Date().toISOString(),
    };
  }
  done.set(name, result);
  status.finished(result);
  return name;
}

const skippedResult = (p: ClusterPlan): ClusterResult => ({
  cluster: p.cluster.name,
  role: p.role,
  outcome: 'already-at-target',
  from: p.from,
  to: p.to,
});
const notStarted = (p: ClusterPlan): ClusterResult => ({
  cluster: p.cluster.name,
  role: p.role,
  outcome: 'not-started',
  from: p.from,
  to: p.to,
});

function countOutcomes(results: ClusterResult[]): UpgradeResult['counts'] {
  const counts = { upgraded: 0, 'already-at-target': 0, rejected: 0, failed: 0, 'not-started': 0 };
  for (const r of results) counts[r.outcome]++;
  return counts;
}
