/**
 * The rollout's decisions, pure: which worker cluster starts next, when the rollout stops (a
 * canary, the failure budget), waves and their soak, pause, holds and windows, retries and skips.
 * The fan-out (workflows/fan-out.ts) carries them out with child workflows and timers; the
 * property-based test (test/unit/rollout-model.test.ts) drives them with random event sequences.
 */
import type { ClusterOutcome } from './types';

/** What the decisions need of a finished cluster. */
export interface Ended {
  cluster: string;
  outcome: ClusterOutcome;
  error?: string;
}

export type Halt = { reason: string } | undefined;

/** Wave of each worker cluster, in plan order (`--batches` sizes); without batches, one wave. */
export function wavesOf(workers: readonly string[], batches: readonly number[] | undefined) {
  const index = new Map<string, number>();
  let i = 0;
  (batches ?? [workers.length]).forEach((size, wave) => {
    for (const w of workers.slice(i, i + size)) index.set(w, wave);
    i += size;
  });
  const count = batches?.length ?? 1;
  const of = (name: string) => index.get(name) ?? count - 1;
  return {
    count,
    of,
    /** The first wave with a cluster not finished yet. */
    current: (done: ReadonlyMap<string, unknown>) => Math.min(count, ...workers.filter((w) => !done.has(w)).map(of)),
    begun: (wave: number, done: ReadonlyMap<string, unknown>, running: ReadonlyMap<string, unknown>) =>
      workers.some((w) => of(w) === wave && (done.has(w) || running.has(w))),
  };
}

export type Waves = ReturnType<typeof wavesOf>;

/**
 * A canary that did not upgrade, or more failed clusters than the budget allows, stops the rollout.
 * A canary a person skipped is their decision to go on (`skippedCanaryGoesOn`, asked only when one
 * was skipped: the workflow answers it with a patch).
 */
export function haltReason(
  maxFailures: number | undefined,
  canaries: ReadonlySet<string>,
  done: ReadonlyMap<string, Ended>,
  skippedCanaryGoesOn: () => boolean = () => true
): Halt {
  for (const c of canaries) {
    const r = done.get(c);
    if (!r || r.outcome === 'upgraded' || r.outcome === 'already-at-target') continue;
    if (r.outcome === 'skipped' && skippedCanaryGoesOn()) continue;
    return { reason: `canary ${c} ended ${r.outcome}${r.error ? ` (${r.error})` : ''}` };
  }
  // Each cluster once: `done` holds one result per cluster.
  const failed = [...done.values()].filter((r) => r.outcome === 'failed' || r.outcome === 'rolled-back');
  if (maxFailures !== undefined && failed.length > maxFailures)
    return {
      reason: `${failed.length} worker cluster(s) failed (${failed.map((r) => r.cluster).join(', ')}), more than --max-failures ${maxFailures}`,
    };
  return undefined;
}

/** A cluster waiting in the queue. */
export interface Queued {
  cluster: string;
  /** The plan leaves it out (already at the target...): it ends as planned, without a child. */
  planSkipped?: boolean;
}

/**
 * Everything one round of starts looks at. The maps and functions are live: `start` and
 * `finishPlanned` add to `running` and `done`, and the rules see that at once, as the workflow does.
 */
export interface RoundInput {
  /** Mutated: started, planned-skipped and dropped clusters leave it. */
  queue: Queued[];
  running: ReadonlyMap<string, unknown>;
  done: ReadonlyMap<string, unknown>;
  /** Clusters a person asked to retry: they start even when the rollout stopped, unless a person paused it. */
  retried: ReadonlySet<string>;
  canaries: ReadonlySet<string>;
  /** Canaries the plan has (a canary outside the selection never holds the others back). */
  plannedCanaries: readonly string[];
  waves: Waves;
  maxParallel: number;
  soakMs: number | undefined;
  /** The wave whose soak already ran (-1 none). */
  soakedBefore: number;
  /** How many children this run may still start (continue-as-new keeps each run's history small). */
  startsLeft: () => number;
  /**
   * A cluster a person retried starts even past the run's share: it was told "will start again",
   * and a stop that comes before the next run would leave it not-started. (The workflow asks a
   * patch: upgrades started before the rule keep the old one.)
   */
  retriesKeepTheirWord?: () => boolean;
  cancelled: () => boolean;
  halted: () => boolean;
  paused: () => boolean;
  /** The pause is the failure policy's (`--on-failure pause`), not a person's. */
  pausedForFailure: () => boolean;
  /** A hold or a closed window keeps it back this round (it may count it). */
  keepsBack: (cluster: string) => boolean;
  /** Starts its child: from now on it is in `running`. */
  start: (cluster: string) => void;
  /** Ends it as the plan says, without a child: from now on it is in `done`. */
  finishPlanned: (cluster: string) => void;
  /** Where to go on after a soak (the index the soak was decided at). */
  from?: number;
}

/**
 * One round: starts clusters in queue order until the free slots, the queue, the run's share of
 * starts or a reason to wait runs out. Returns the wave to soak first, when one must (then the
 * caller waits, and calls again `from` where it stopped with `soakedBefore` set).
 */
export function planRound(r: RoundInput): { soak?: { wave: number; from: number } } {
  const { queue } = r;
  let i = r.from ?? 0;
  while (!r.cancelled() && r.running.size < r.maxParallel && i < queue.length) {
    const next = queue[i] as Queued;
    const asked = r.retried.has(next.cluster);
    if (r.startsLeft() <= 0 && !(asked && (r.retriesKeepTheirWord?.() ?? true))) break;
    // Stopped or paused, nothing starts; except a cluster an operator retried, unless a person paused.
    if (r.halted() && !asked) break;
    if (r.paused() && !(r.pausedForFailure() && asked)) break;
    // Skipped by an operator while it waited.
    if (r.done.has(next.cluster)) {
      queue.splice(i, 1);
      continue;
    }
    // The canaries must all have finished before anyone else starts.
    if (!r.canaries.has(next.cluster) && r.plannedCanaries.some((c) => !r.done.has(c))) break;
    // A wave starts when every earlier one has finished, after the soak.
    const wave = r.waves.of(next.cluster);
    if (wave > r.waves.current(r.done)) break;
    if (wave > 0 && r.soakMs && r.soakedBefore < wave && !r.waves.begun(wave, r.done, r.running))
      return { soak: { wave, from: i } };
    if (!next.planSkipped && r.keepsBack(next.cluster)) {
      i++;
      continue;
    }
    queue.splice(i, 1);
    if (next.planSkipped) r.finishPlanned(next.cluster);
    else r.start(next.cluster);
  }
  return {};
}

/** What the run knows when no child runs and no retry is pending: may a person still move it on? */
export interface RunAtRest {
  /** Clusters queued, not started. */
  queued: number;
  /** One of them a person retried (asked only when it matters: the workflow answers with a patch). */
  retriedQueued: () => boolean;
  cancelled: boolean;
  /** Asked only when something is queued (as the fan-out always has). */
  halted: () => boolean;
  startsLeft: number;
  paused: boolean;
  /** A hold or a closed window keeps one back. */
  keptBack: boolean;
  /** `--on-failure pause` waits for a decision on a failed cluster. */
  awaitingDecision: boolean;
}

/**
 * True while the run waits for a person (resume, release, a window, a decision); false when it
 * ends here: cancelled, stopped, finished, or out of starts (then it continues as new). A retried
 * cluster keeps the run open through a stop or a person's pause: it was told it would start.
 */
export function steerable(s: RunAtRest): boolean {
  if (s.cancelled) return false;
  const mayStartLater = s.queued > 0 && ((!s.halted() && s.startsLeft > 0) || s.retriedQueued());
  return (mayStartLater && (s.paused || s.keptBack)) || s.awaitingDecision;
}
