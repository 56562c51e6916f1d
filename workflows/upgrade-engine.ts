/**
 * upgradeEngine: the whole runbook for one fleet. Preflight every cluster (read-only), decide the
 * rules once and plan, upgrade the control plane and verify it, then fan out one
 * upgradeWorkerCluster child per worker cluster, at most maxParallel at a time.
 */
import {
  ApplicationFailure,
  CancellationScope,
  CancelledFailure,
  ContinueAsNew,
  allHandlersFinished,
  condition,
  isCancellation,
  makeContinueAsNewFunc,
  patched,
  setHandler,
  upsertMemo,
  workflowInfo,
} from '@temporalio/workflow';
import { PlanRefused, planUpgrade } from '../runbook/plan';
import type { RuleDecisions } from '../runbook/rules';
import type {
  ClusterPlan,
  ClusterResult,
  FleetFacts,
  Plan,
  RolloutStatus,
  UpgradeRequest,
  UpgradeResult,
} from '../runbook/types';
import { proxies } from './activities';
import { handleApprovals } from './approvals';
import { skippedResult, upgradeControlPlane } from './control-plane';
import { handleClusterControl } from './cluster-control';
import { fanOut } from './fan-out';
import { FleetStatus } from './fleet-status';
import { fleetView } from './fleet-view';
import { clusterProgressSignal, statusQuery } from './messages';
import { memoOf } from './plan-memo';
import { checkImagesAtPreflight } from './image-check';
import { handleRolloutControl } from './rollout-control';
import { preflight, recordRules } from './preflight';
import { errorMessage } from './errors';
import { notifier, notifyContextOf } from './notify';
import { fleetCrdChange, fleetCrdDigest } from '../runbook/digest';

export interface UpgradeEngineInput {
  request: UpgradeRequest;
  /** State handed over by continue-as-new; absent on the first run. */
  carried?: Carried;
}

/** What a new run needs to go on exactly where the last one stopped, with the same plan. */
interface Carried {
  facts: FleetFacts;
  /** The rules decided in the first run: the plan is rebuilt from these facts and decisions only. */
  rules: RuleDecisions;
  /** Absent when the first run only read the fleet (large fleets: see below). */
  controlPlane?: ClusterResult;
  /** Worker clusters already finished, in finishing order. */
  workers: ClusterResult[];
  /** A pause, holds and the approvals given ahead outlive the run they were given in. */
  rollout?: Pick<RolloutStatus, 'paused' | 'aheadApprovals' | 'holds'>;
}

export async function upgradeEngine(input: UpgradeEngineInput): Promise<UpgradeResult> {
  const { request, carried } = input;
  const { fleet, options } = request;
  const acts = proxies(request.tuning);
  const status = new FleetStatus(
    request.upgradeId,
    options.targetVersion,
    fleet.controlPlane.name,
    fleet.workers.map((w) => w.name)
  );
  status.labelled(fleet.workers);
  const view = fleetView(status);
  status.onChange = () => view.changed();
  setHandler(statusQuery, () => status.status());
  handleApprovals(status, request);
  const control = handleRolloutControl(status, request);
  status.carryResults(carried?.workers ?? []);
  const clusterControl = handleClusterControl(status, request);
  setHandler(clusterProgressSignal, (p) => {
    const before = status.state(p.cluster);
    status.progress(p);
    if (before !== 'waiting-approval' && status.state(p.cluster) === 'waiting-approval') control.onGateOpen(p.cluster);
  });

  const notify = notifier(notifyContextOf(request));
  status.carry(carried?.rollout);
  try {
    // 1. Preflight (read-only), and the rules decided once: the plan follows from both.
    const facts = carried?.facts ?? (await preflight(request, acts).catch(failWith(status)));
    const perRun = request.tuning?.childrenPerRun ?? 200;
    // The first run's patches are asked before the rules' local activity, never right after it: a
    // local activity that ends as its workflow task is heartbeated (a loaded worker) leaves its
    // marker in one task and what follows in the next, where a patch asked then is not seen on
    // replay (a worker replaying after a Temporal restart failed so). Added after v9 histories:
    // those ask them after the rules, and replay that way.
    const early = !carried && patched('patches-before-rules');
    const checksImagesEarly = early && fleet.checkImages !== false && patched('image-check-at-preflight');
    // Without the image check nothing comes between the rules and the split: asked early too.
    const splitsEarly =
      early && !checksImagesEarly && fleet.workers.length > perRun && patched('continue-after-preflight');
    const rules = carried?.rules ?? (await recordRules(request, facts, acts));
    const plan = planOrRefuse(request, facts, rules, status);
    // What an approval given ahead names: computed from the plan, so every run of the upgrade agrees.
    const crdDigest = fleetCrdDigest(plan);
    if (crdDigest) status.carry({ crdDigest, crdChange: fleetCrdChange(plan) });
    if (!carried) {
      // Before the DB Job or any upgrade: the images the plan needs are in their registries.
      // Added after v4 histories were recorded: upgrades already running go on as they started.
      const checksImages = early
        ? checksImagesEarly
        : fleet.checkImages !== false && patched('image-check-at-preflight');
      if (checksImages) await checkImagesAtPreflight(request, plan, facts, acts).catch(failWith(status));
      upsertMemo({ plan: memoOf(plan) });
      // Preflight costs 3 events per cluster: on a large fleet it gets a run of its own, so no run's
      // history grows past ~4,000 events (1,000 clusters: preflight ~3,100, then ~2,500 per run).
      // Added after v2 histories were recorded: upgrades already running go on as they started.
      // (After the image check's activity it is safe to ask here.)
      const splits =
        early && !checksImages ? splitsEarly : fleet.workers.length > perRun && patched('continue-after-preflight');
      if (splits) await continueWith(request, { facts, rules, workers: [] }, status);
    }

    // 2. Control plane, verified before any worker cluster is touched.
    const controlPlane = carried?.controlPlane ?? (await upgradeControlPlane(plan.controlPlane, request, acts, status));
    status.finished(controlPlane);

    // 3. Worker clusters: a sliding window of children.
    for (const r of status.ended.values()) status.finished(r);
    const { left, halt } = await fanOut(plan, request, status, notify, view, clusterControl);
    if (CancellationScope.current().consideredCancelled) throw new CancelledFailure('the upgrade was cancelled');
    if (halt) {
      for (const w of left) status.finished({ ...outcomeOf(w, 'not-started'), error: `not started: ${halt.reason}` });
      for (const r of status.ended.values()) status.finished(r);
    } else if (left.length > 0) {
      // History stays small for large fleets: the window drained, hand the rest to a new run.
      await condition(allHandlersFinished);
      await continueWith(request, { facts, rules, controlPlane, workers: [...status.ended.values()] }, status);
    }

    status.enter('done');
    view.publish(halt ? [`stopped: ${halt.reason}`] : []);
    const workers = plan.workers.map((w) => status.ended.get(w.cluster.name) ?? outcomeOf(w, 'not-started'));
    const counts = countOutcomes([controlPlane, ...workers]);
    notify.send({
      event: 'upgrade-ended',
      phase: 'done',
      counts,
      message: `upgrade to ${options.targetVersion} finished: ${countsLine(counts)}`,
    });
    await notify.flush();
    await condition(allHandlersFinished);
    return { upgradeId: request.upgradeId, targetVersion: options.targetVersion, controlPlane, workers, counts };
  } catch (err) {
    if (isContinueAsNew(err)) throw err;
    const cancelled = isCancellation(err);
    notify.send({
      event: 'upgrade-ended',
      phase: cancelled ? 'cancelled' : 'failed',
      message: `upgrade to ${options.targetVersion} ${cancelled ? 'was cancelled' : `failed: ${errorMessage(err)}`}`,
    });
    await CancellationScope.nonCancellable(() => notify.flush());
    if (!cancelled) {
      status.enter('failed');
      view.publish([errorMessage(err).split('\n')[0] ?? '']);
      throw err;
    }
    // Cancelled: every cluster ends in a named state, and the workflow ends CANCELLED, not FAILED.
    status.cancelled();
    view.publish();
    await CancellationScope.nonCancellable(() => condition(allHandlersFinished));
    throw err;
  }
}

/** Continue as new with `carried`; the memo (target version, plan) goes along: the CLI reads the version from it. */
function continueWith(request: UpgradeRequest, carried: Carried, status: FleetStatus): Promise<never> {
  const { paused, aheadApprovals, holds } = status.rollout;
  const rollout = {
    ...(paused ? { paused } : {}),
    ...(aheadApprovals ? { aheadApprovals } : {}),
    ...(holds ? { holds } : {}),
  };
  // The search attributes go along too (the next run keeps them current only if it has them).
  return makeContinueAsNewFunc<typeof upgradeEngine>({
    memo: workflowInfo().memo,
    typedSearchAttributes: workflowInfo().typedSearchAttributes,
  })({
    request,
    carried: { ...carried, ...(Object.keys(rollout).length > 0 ? { rollout } : {}) },
  });
}

const isContinueAsNew = (err: unknown): boolean => err instanceof ContinueAsNew;

const failWith =
  (status: FleetStatus) =>
  (err: unknown): never => {
    if (!isCancellation(err)) status.enter('failed');
    throw err;
  };

function planOrRefuse(request: UpgradeRequest, facts: FleetFacts, rules: RuleDecisions, status: FleetStatus): Plan {
  try {
    const plan = planUpgrade(request, facts, rules);
    status.planned(plan);
    return plan;
  } catch (err) {
    status.enter('failed');
    if (err instanceof PlanRefused)
      throw ApplicationFailure.nonRetryable(`upgrade refused: ${err.message}`, 'PlanRefused');
    throw err;
  }
}

const outcomeOf = (p: ClusterPlan, outcome: ClusterResult['outcome']): ClusterResult =>
  p.skipped ? skippedResult(p) : { cluster: p.cluster.name, role: p.role, outcome, from: p.from, to: p.to };

const countsLine = (counts: UpgradeResult['counts']): string =>
  Object.entries(counts)
    .filter(([, n]) => n > 0)
    .map(([k, n]) => `${n} ${k}`)
    .join(', ');

function countOutcomes(results: ClusterResult[]): UpgradeResult['counts'] {
  const counts = {
    upgraded: 0,
    'already-at-target': 0,
    rejected: 0,
    failed: 0,
    'rolled-back': 0,
    cancelled: 0,
    'not-started': 0,
    skipped: 0,
  };
  for (const r of results) counts[r.outcome]++;
  return counts;
}
