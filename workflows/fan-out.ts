/**
 * The worker clusters: one upgradeWorkerCluster child per cluster, at most maxParallel at a time.
 * Stops starting children when the upgrade is cancelled or this run has started its share (the
 * parent then continues as new).
 */
import {
  ApplicationFailure,
  CancellationScope,
  condition,
  isCancellation,
  ParentClosePolicy,
  patched,
  sleep,
  startChild,
} from '@temporalio/workflow';
import type { ClusterPlan, ClusterResult, Plan, StepKind, UpgradeRequest } from '../runbook/types';
import type { SearchAttributePair } from '@temporalio/common';
import { SKOALA_CLUSTER, SKOALA_FLEET, SKOALA_PHASE, SKOALA_VERSION } from '../runbook/search-attributes';
import { haltReason, planRound, steerable, wavesOf, type Halt, type Waves } from '../runbook/rollout';
import { skippedResult } from './control-plane';
import { errorMessage } from './errors';
import type { FleetStatus } from './fleet-status';
import { hasSearchAttributes, type FleetView } from './fleet-view';
import type { ClusterControl } from './cluster-control';
import { childId } from './child-id';
import { notifyContextOf, type Notifier } from './notify';
import { aheadGrantFor, policyFor } from './rollout-control';
import { startGate } from './start-gate';
import { upgradeWorkerCluster } from './upgrade-worker-cluster';

/** Why the rollout stopped starting clusters, when it did. */
export type { Halt } from '../runbook/rollout';

/**
 * Runs the window; returns the clusters not started yet (empty when all are done) and, when the
 * rollout stopped early (a canary did not upgrade, or the failure budget ran out), why.
 * Canaries go first and all the way; the others start only when every canary upgraded.
 */
export async function fanOut(
  plan: Plan,
  request: UpgradeRequest,
  status: FleetStatus,
  notify: Notifier,
  view: FleetView,
  control: ClusterControl
): Promise<{ left: ClusterPlan[]; halt: Halt }> {
  const { options } = request;
  status.enter('workers');
  const done = status.ended;
  const canaries = new Set(options.canaries ?? []);
  const isCanary = (w: ClusterPlan) => canaries.has(w.cluster.name);
  const queue = [
    ...plan.workers.filter((w) => !done.has(w.cluster.name) && isCanary(w)),
    ...plan.workers.filter((w) => !done.has(w.cluster.name) && !isCanary(w)),
  ];
  const waves = wavesOf(
    plan.workers.map((w) => w.cluster.name),
    options.batches
  );
  const plannedCanaries = [...canaries].filter((c) => plan.workers.some((w) => w.cluster.name === c));
  const running = new Map<string, Promise<string>>();
  const perRun = request.tuning?.childrenPerRun ?? 200;
  const outer = CancellationScope.current();
  const cancelled = () => outer.consideredCancelled;
  const paused = () => status.rollout.paused !== undefined;
  let halt: Halt;
  let startedThisRun = 0;
  let soakedBefore = -1;
  let movesSeen = control.moves;
  const retried = new Set<string>();
  const check = () => {
    // A retry or a skip may lift what stopped the rollout: decide again from what is done now.
    if (control.moves !== movesSeen) [movesSeen, halt] = [control.moves, undefined];
    // A canary a person skipped lets the rollout go on (added after v8 histories were recorded:
    // upgrades already running keep the old rule).
    return (halt ??= haltReason(options.maxFailures, canaries, done, () => patched('skipped-canary-goes-on')));
  };
  // Holds and maintenance windows: a cluster they keep back is passed over, the next one may start.
  const gate = startGate(request, status);
  let waveEnded = waves.current(done);
  while (queue.length > 0 || running.size > 0 || control.retries.length > 0 || control.awaitingDecision()) {
    // Retried clusters go first, in the order asked.
    const again = control.retries
      .splice(0)
      .filter((name) => !done.has(name) && !running.has(name) && !queue.some((q) => q.cluster.name === name));
    for (const name of again) retried.add(name);
    queue.unshift(...plan.workers.filter((w) => again.includes(w.cluster.name)));
    const round = gate.round(Date.now());
    // Which clusters start now is runbook/rollout.ts's decision; here it becomes children and timers.
    const queued = queue.map((w) => ({ cluster: w.cluster.name, planSkipped: !!w.skipped }));
    const planOf = (name: string) => queue.find((w) => w.cluster.name === name) as ClusterPlan;
    let from = 0;
    for (;;) {
      const { soak: soakFirst } = planRound({
        queue: queued,
        running,
        done,
        retried,
        canaries,
        plannedCanaries,
        waves,
        maxParallel: options.maxParallel,
        soakMs: options.soakMs,
        soakedBefore,
        startsLeft: () => perRun - startedThisRun,
        // Added after v8 histories were recorded: upgrades already running keep the old rule.
        retriesKeepTheirWord: () => patched('retried-cluster-always-starts'),
        cancelled,
        halted: () => check() !== undefined,
        paused,
        pausedForFailure: () => control.pausedForFailure(),
        keepsBack: (name) => round.keepsBack(name),
        start: (name) => {
          const next = planOf(name);
          status.running(next);
          startedThisRun++;
          running.set(name, runChild(next, request, status, notify, control));
        },
        finishPlanned: (name) => {
          const next = planOf(name);
          status.finished(skippedResult(next));
        },
        from,
      });
      if (!soakFirst) break;
      await soak(options.soakMs ?? 0, soakFirst.wave, waves.count, status, view);
      soakedBefore = soakFirst.wave;
      from = soakFirst.from; // paused or cancelled during the soak: checked again
    }
    // The queue keeps what did not start, in order.
    const left = new Set(queued.map((q) => q.cluster));
    queue.splice(0, queue.length, ...queue.filter((w) => left.has(w.cluster.name)));
    round.end();
    if (waves.count > 1)
      status.wave(Math.min(waves.current(done), waves.count - 1) + 1, waves.count, status.rollout.soakingUntil);
    view.publish([
      ...(waves.count > 1 ? [`wave ${status.rollout.wave}/${waves.count}`] : []),
      ...(status.rollout.paused ? [`PAUSED by ${status.rollout.paused.by}`] : []),
      ...(round.keptBack > 0 ? [`${round.keptBack} kept back by holds or windows`] : []),
      ...(halt ? [`stopped: ${halt.reason}`] : []),
    ]);
    const atRest = steerable({
      queued: queue.length,
      // Added after v8 histories were recorded: upgrades already running keep the old rule.
      retriedQueued: () => queue.some((w) => retried.has(w.cluster.name)) && patched('retried-cluster-always-starts'),
      cancelled: cancelled(),
      halted: () => check() !== undefined,
      startsLeft: perRun - startedThisRun,
      paused: paused(),
      keptBack: round.keptBack > 0,
      awaitingDecision: control.awaitingDecision(),
    });
    if (running.size === 0 && !atRest && control.retries.length === 0) break;
    // Also wake when resumed, released, a window opens, a cluster is retried or skipped, not only when a child ends.
    const seen = status.steers;
    // Once cancelled, only the children ending matter (a scope made now would be cancelled at once:
    // waking on it would spin this loop without end).
    const wakeScope = new CancellationScope();
    const wake = cancelled()
      ? undefined
      : wakeScope
          .run(() =>
            atRest && round.opensAt !== undefined
              ? condition(() => status.steers !== seen || cancelled(), Math.max(1, round.opensAt - Date.now()), {
                  summary: 'a maintenance window opens',
                }).then(() => undefined)
              : condition(() => status.steers !== seen || cancelled())
          )
          .then(
            () => undefined,
            () => undefined
          );
    const first = await Promise.race([...running.values(), ...(wake ? [wake] : [])]);
    wakeScope.cancel();
    if (first !== undefined) running.delete(first);
    waveEnded = notifyWavesEnded(waveEnded, waves, done, notify);
  }
  return { left: queue, halt: check() };
}

/** The durable wait between two waves, shown in `status` and the UI with the time it ends. */
async function soak(ms: number, wave: number, waves: number, status: FleetStatus, view: FleetView): Promise<void> {
  const until = new Date(Date.now() + ms).toISOString();
  // `wave` is the index of the wave about to start: its number, 1-based, is wave + 1.
  status.wave(wave + 1, waves, until);
  view.publish([`soaking after wave ${wave}/${waves} until ${until}; then wave ${wave + 1}/${waves}`]);
  try {
    await sleep(ms, { summary: `soak before wave ${wave + 1}/${waves}` });
  } finally {
    status.wave(wave + 1, waves);
  }
}

/** Runs one child to its end; resolves with the cluster name whatever happens, never rejects. */
async function runChild(
  plan: ClusterPlan,
  request: UpgradeRequest,
  status: FleetStatus,
  notify: Notifier,
  control: ClusterControl
): Promise<string> {
  const name = plan.cluster.name;
  const startedAt = new Date().toISOString();
  const policy = policyFor(request, status, name);
  const ahead = aheadGrantFor(status, name, policy);
  const hook = notifyContextOf(request);
  let result: ClusterResult;
  try {
    const child = await startChild(upgradeWorkerCluster, {
      workflowId: childId(name),
      args: [
        {
          upgradeId: request.upgradeId,
          plan,
          tuning: request.tuning,
          onFailure: request.options.onFailure,
          // Approved ahead already: the child passes its gate without a round trip through the parent.
          ...(ahead ? { approvedAhead: ahead } : {}),
          policy,
          ...(hook ? { notify: hook } : {}),
        },
      ],
      ...(plan.cluster.taskQueue ? { taskQueue: plan.cluster.taskQueue } : {}),
      // If the parent is terminated, children are asked to cancel: each lets a running helm finish
      // and ends in a named state, instead of being killed mid-step (TERMINATE, the default).
      parentClosePolicy: ParentClosePolicy.REQUEST_CANCEL,
      staticSummary: `skoala-init on ${name}: ${plan.from ?? 'none'} -> ${plan.to}`,
      ...(hasSearchAttributes() ? { typedSearchAttributes: childAttributes(request, name) } : {}),
    });
    result = await child.result();
  } catch (err) {
    const cancelled = isCancellation(err) || isCancellation((err as Error).cause);
    const atGate = status.state(name) === 'waiting-approval';
    const cause = (err as Error).cause;
    const step =
      cause instanceof ApplicationFailure ? (cause.details?.[0] as { step?: StepKind } | undefined)?.step : undefined;
    result = {
      cluster: name,
      role: 'worker',
      ...(step ? { step } : atGate ? { step: 'awaitCrdApproval' as const } : {}),
      outcome: cancelled ? 'cancelled' : 'failed',
      from: plan.from,
      to: plan.to,
      error: cancelled ? `cancelled${atGate ? ' at the CRD approval gate' : ''}` : errorMessage(err),
      startedAt,
      finishedAt: new Date().toISOString(),
    };
  }
  status.finished(result);
  if (result.outcome === 'failed' || result.outcome === 'rolled-back') control.onClusterFailed(result);
  if (result.outcome === 'failed' || result.outcome === 'rolled-back')
    notify.send({
      event: result.outcome === 'failed' ? 'cluster-failed' : 'cluster-rolled-back',
      cluster: name,
      message: `${name} ${result.outcome === 'failed' ? 'failed' : 'was rolled back'}: ${result.error ?? 'no cause given'}`,
    });
  return name;
}

/** A child's search attributes: its cluster, and the parent's fleet and version. */
const childAttributes = (request: UpgradeRequest, cluster: string): SearchAttributePair[] => [
  { key: SKOALA_CLUSTER, value: cluster },
  { key: SKOALA_FLEET, value: request.fleet.name },
  { key: SKOALA_VERSION, value: request.options.targetVersion },
  { key: SKOALA_PHASE, value: 'running' },
];

/** Tells the webhook about every wave that finished since `before`; returns the current wave. */
function notifyWavesEnded(
  before: number,
  waves: Waves,
  done: ReadonlyMap<string, ClusterResult>,
  notify: Notifier
): number {
  const now = waves.current(done);
  if (waves.count > 1)
    for (let w = before; w < now && w < waves.count; w++)
      notify.send({
        event: 'wave-ended',
        wave: w + 1,
        waves: waves.count,
        message: `wave ${w + 1}/${waves.count} finished${w + 1 < waves.count ? `; wave ${w + 2} is next` : ''}`,
      });
  return now;
}
