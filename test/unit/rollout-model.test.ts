/**
 * The rollout's decisions (runbook/rollout.ts, the code the fan-out runs) driven by random event
 * sequences with fast-check: children ending with any outcome, retries, skips, pauses, holds,
 * maintenance windows (runbook/windows.ts, a clock that moves), waves with soaks, canaries, a failure
 * budget, cancel, and continue-as-new (a run's share of starts, then a
 * new run carrying what ended, the pause and the holds). Invariants are checked after every event; at the end the
 * operator settles everything (skips what failed, releases holds, resumes) and every cluster must
 * have ended. The seed is printed; a failing run prints its seed and the shrunk sequence, and found
 * counterexamples stay below as fixed cases. SKOALA_FC_SEED=N replays one.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { haltReason, planRound, steerable, wavesOf, type Ended, type Queued } from '../../runbook/rollout';
import type { ClusterOutcome, MaintenanceWindow } from '../../runbook/types';
import { windowState } from '../../runbook/windows';

/** The maintenance window of the clusters a fleet marks `windowed`: daily 02:00-04:00 in Shanghai. */
const WINDOWS: MaintenanceWindow[] = [
  {
    days: ['Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat', 'Sun'],
    start: '02:00',
    durationMs: 2 * 3600_000,
    timeZone: 'Asia/Shanghai',
  },
];
const MONDAY = Date.UTC(2026, 0, 5);

interface Fleet {
  workers: number;
  canaries: number;
  maxParallel: number;
  maxFailures: number | undefined;
  batches: number[] | undefined;
  soak: boolean;
  planSkipped: number[];
  pauseOnFailure: boolean;
  /** Children a run may start before it continues as new (tuning.childrenPerRun). */
  perRun: number;
  /** Clusters (by index) that may start only inside WINDOWS. */
  windowed: number[];
  /** Minutes after Monday 00:00 UTC the upgrade starts at. */
  startMinute: number;
}

type Event =
  | { kind: 'end'; pick: number; outcome: ClusterOutcome }
  | { kind: 'retry'; pick: number }
  | { kind: 'skip'; pick: number }
  | { kind: 'pause' }
  | { kind: 'resume' }
  | { kind: 'hold'; pick: number }
  | { kind: 'release'; pick: number }
  | { kind: 'tick'; minutes: number }
  | { kind: 'cancel' };

/** The fan-out's bookkeeping around planRound, without Temporal (as workflows/fan-out.ts and cluster-control.ts keep it). */
class Rollout {
  readonly names: string[];
  readonly canaries: Set<string>;
  readonly waves: ReturnType<typeof wavesOf>;
  readonly skipped: Set<string>;
  queue: Queued[] = [];
  readonly running = new Map<string, true>();
  readonly done = new Map<string, Ended>();
  /** Per run (a new run starts with none): clusters a person retried. */
  retried = new Set<string>();
  readonly retries: string[] = [];
  /** Every retry a person was told "will start again". */
  readonly promised = new Set<string>();
  readonly held = new Set<string>();
  paused: 'person' | 'failure' | undefined;
  cancelled = false;
  soakedBefore = -1;
  startedThisRun = 0;
  runs = 1;
  /** How the upgrade ended, once it has; clusters left then end as `left` says. */
  ended: { how: 'done' | 'halted' | 'cancelled'; left: string[] } | undefined;
  readonly starts: string[] = [];
  readonly windowed: Set<string>;
  /** The clock (epoch ms): windows open and close as it moves. */
  now: number;

  constructor(readonly f: Fleet) {
    this.names = Array.from({ length: f.workers }, (_, i) => `w${i + 1}`);
    this.canaries = new Set(this.names.slice(0, f.canaries));
    this.waves = wavesOf(this.names, f.batches);
    this.skipped = new Set(f.planSkipped.map((i) => this.names[i % f.workers] as string));
    this.windowed = new Set(f.windowed.map((i) => this.names[i % f.workers] as string));
    this.now = MONDAY + f.startMinute * 60_000;
    this.newRun();
  }

  /** upgrade-engine.ts at the start of a run: the queue is every worker not ended, canaries first. */
  private newRun(): void {
    const q = (n: string): Queued => ({ cluster: n, planSkipped: this.skipped.has(n) });
    const open = this.names.filter((n) => !this.done.has(n));
    this.queue = [
      ...open.filter((n) => this.canaries.has(n)).map(q),
      ...open.filter((n) => !this.canaries.has(n)).map(q),
    ];
    this.retried = new Set();
    this.soakedBefore = -1;
    this.startedThisRun = 0;
  }

  /** Its window is closed now (start-gate.ts: windowState of the windows covering it). */
  outsideWindow(n: string): boolean {
    return this.windowed.has(n) && !windowState(WINDOWS, this.now).open;
  }

  /** A hold or a closed window keeps it back (planRound's keepsBack). */
  keepsBack(n: string): boolean {
    return this.held.has(n) || this.outsideWindow(n);
  }

  /** cluster-control.ts's awaitingDecision: --on-failure pause holds the run open for a decision. */
  private awaitingDecision(): boolean {
    const failed = [...this.done.values()].some((r) => r.outcome === 'failed' || r.outcome === 'rolled-back');
    return this.paused === 'failure' && failed;
  }

  /**
   * fan-out.ts's loop exit and what upgrade-engine.ts does next: the run waits while children run
   * or a person may still steer; else the upgrade ends (cancelled, halted, done) or continues as new.
   */
  settleRun(): void {
    if (this.ended || this.running.size > 0 || this.retries.length > 0) return;
    const halt = this.halt();
    const atRest = steerable({
      queued: this.queue.length,
      retriedQueued: () => this.queue.some((q) => this.retried.has(q.cluster)),
      cancelled: this.cancelled,
      halted: () => halt !== undefined,
      startsLeft: this.f.perRun - this.startedThisRun,
      paused: this.paused !== undefined,
      keptBack: this.queue.some((q) => !q.planSkipped && this.keepsBack(q.cluster)),
      awaitingDecision: this.awaitingDecision(),
    });
    if (atRest) return;
    const left = this.queue.map((q) => q.cluster).filter((n) => !this.done.has(n));
    if (this.cancelled) this.ended = { how: 'cancelled', left };
    else if (halt) this.ended = { how: 'halted', left };
    else if (left.length > 0) {
      const before = this.starts.length;
      this.runs++;
      this.newRun();
      this.round();
      // A new run that starts nothing and ends at once would continue as new for ever.
      this.settleRun();
      if (!this.ended && this.running.size === 0)
        expect(
          this.starts.length > before ||
            this.paused !== undefined ||
            this.queue.some((q) => !q.planSkipped && this.keepsBack(q.cluster)),
          'an empty run'
        ).toBe(true);
    } else this.ended = { how: 'done', left: [] };
  }

  halt() {
    return haltReason(this.f.maxFailures, this.canaries, this.done);
  }

  /** cluster-control.ts: the failure policy's pause lifts once no failed cluster waits for a decision. */
  private liftPauseIfDecided() {
    const failed = [...this.done.values()].some((r) => r.outcome === 'failed' || r.outcome === 'rolled-back');
    if (this.paused === 'failure' && !failed) this.paused = undefined;
  }

  apply(e: Event): void {
    // A closed upgrade takes no more commands (the CLI is told it ended).
    if (this.ended) return;
    const at = <T>(xs: T[], pick: number): T | undefined => (xs.length ? xs[pick % xs.length] : undefined);
    switch (e.kind) {
      case 'end': {
        const c = at([...this.running.keys()], e.pick);
        if (!c) return;
        this.running.delete(c);
        this.done.set(c, { cluster: c, outcome: e.outcome });
        if ((e.outcome === 'failed' || e.outcome === 'rolled-back') && this.f.pauseOnFailure && !this.paused)
          this.paused = 'failure';
        return;
      }
      case 'retry': {
        const c = at(
          [...this.done.values()].filter((r) => r.outcome === 'failed' || r.outcome === 'rolled-back'),
          e.pick
        );
        if (!c) return;
        this.done.delete(c.cluster);
        this.retries.push(c.cluster);
        this.promised.add(c.cluster);
        this.liftPauseIfDecided();
        return;
      }
      case 'skip': {
        // A failed cluster, or one not started yet.
        const candidates = [
          ...[...this.done.values()].filter((r) => r.outcome === 'failed').map((r) => r.cluster),
          ...this.queue.filter((q) => !this.done.has(q.cluster)).map((q) => q.cluster),
        ];
        const c = at(candidates, e.pick);
        if (!c) return;
        this.done.set(c, { cluster: c, outcome: 'skipped' });
        this.promised.delete(c);
        this.liftPauseIfDecided();
        return;
      }
      case 'cancel':
        this.cancelled = true;
        return;
      case 'tick':
        this.now += e.minutes * 60_000;
        return;
      case 'pause':
        this.paused ??= 'person';
        return;
      case 'resume':
        this.paused = undefined;
        return;
      case 'hold': {
        const c = at(this.names, e.pick);
        if (c) this.held.add(c);
        return;
      }
      case 'release': {
        const c = at([...this.held], e.pick);
        if (c) this.held.delete(c);
        return;
      }
    }
  }

  /** One turn of the fan-out's loop: retried clusters first, then planRound (soaks pass at once here). */
  round(): void {
    if (this.ended) return;
    const again = this.retries
      .splice(0)
      .filter((n) => !this.done.has(n) && !this.running.has(n) && !this.queue.some((q) => q.cluster === n));
    for (const n of again) this.retried.add(n);
    this.queue.unshift(...this.names.filter((n) => again.includes(n)).map((n) => ({ cluster: n })));
    let from = 0;
    for (;;) {
      const { soak } = planRound({
        queue: this.queue,
        running: this.running,
        done: this.done,
        retried: this.retried,
        canaries: this.canaries,
        plannedCanaries: [...this.canaries],
        waves: this.waves,
        maxParallel: this.f.maxParallel,
        soakMs: this.f.soak ? 60_000 : undefined,
        soakedBefore: this.soakedBefore,
        startsLeft: () => this.f.perRun - this.startedThisRun,
        cancelled: () => this.cancelled,
        halted: () => this.halt() !== undefined,
        paused: () => this.paused !== undefined,
        pausedForFailure: () => this.paused === 'failure',
        keepsBack: (n) => this.keepsBack(n),
        start: (n) => this.start(n),
        finishPlanned: (n) => this.done.set(n, { cluster: n, outcome: 'already-at-target' }),
        from,
      });
      if (!soak) return;
      expect(soak.wave).toBeGreaterThan(this.soakedBefore);
      this.soakedBefore = soak.wave;
      from = soak.from;
    }
  }

  private start(n: string): void {
    expect(this.cancelled, `${n} started after the upgrade was cancelled`).toBe(false);
    if (!this.retried.has(n))
      expect(this.startedThisRun, `${n} started past the run's share`).toBeLessThan(this.f.perRun);
    // Never started twice at once, never restarted once ended (a retry takes it out of `done` first).
    expect(this.running.has(n), `${n} started while running`).toBe(false);
    expect(this.done.has(n), `${n} started after it ended`).toBe(false);
    // Canaries first, all the way; waves in order.
    if (!this.canaries.has(n))
      for (const c of this.canaries) expect(this.done.has(c), `${n} before canary ${c}`).toBe(true);
    expect(this.waves.of(n)).toBeLessThanOrEqual(this.waves.current(this.done));
    // Inside its maintenance window, or not at all.
    expect(this.outsideWindow(n), `${n} started outside its window`).toBe(false);
    // Stopped or paused, only a retried cluster starts (and not while a person paused).
    if (this.halt() || this.paused) {
      expect(this.retried.has(n), `${n} started while stopped or paused`).toBe(true);
      expect(this.paused).not.toBe('person');
    }
    this.running.set(n, true);
    this.starts.push(n);
    this.startedThisRun++;
  }
}

const fleetArb: fc.Arbitrary<Fleet> = fc.integer({ min: 1, max: 7 }).chain((workers) =>
  fc.record({
    workers: fc.constant(workers),
    canaries: fc.integer({ min: 0, max: Math.min(2, workers) }),
    maxParallel: fc.integer({ min: 1, max: 3 }),
    maxFailures: fc.option(fc.integer({ min: 0, max: 2 }), { nil: undefined }),
    batches: fc.option(fc.array(fc.integer({ min: 1, max: 3 }), { minLength: 1, maxLength: 3 }), { nil: undefined }),
    soak: fc.boolean(),
    planSkipped: fc.array(fc.nat(), { maxLength: 2 }),
    pauseOnFailure: fc.boolean(),
    perRun: fc.oneof(fc.constant(1_000), fc.integer({ min: 1, max: 3 })),
    windowed: fc.array(fc.nat(), { maxLength: 3 }),
    startMinute: fc.integer({ min: 0, max: 24 * 60 - 1 }),
  })
);

const outcomeArb = fc.constantFrom<ClusterOutcome>('upgraded', 'upgraded', 'failed', 'rolled-back', 'rejected');
const eventArb: fc.Arbitrary<Event> = fc.oneof(
  { weight: 6, arbitrary: fc.record({ kind: fc.constant('end' as const), pick: fc.nat(), outcome: outcomeArb }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('retry' as const), pick: fc.nat() }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('skip' as const), pick: fc.nat() }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'pause' as const }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'resume' as const }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('hold' as const), pick: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('release' as const), pick: fc.nat() }) },
  {
    weight: 1,
    arbitrary: fc.record({ kind: fc.constant('tick' as const), minutes: fc.integer({ min: 1, max: 720 }) }),
  },
  { weight: 1, arbitrary: fc.constant({ kind: 'cancel' as const }) }
);

/** Runs the events, checking after each; then settles like an operator and checks the end. */
function check(fleet: Fleet, events: Event[]): void {
  const r = new Rollout(fleet);
  r.round();
  r.settleRun();
  for (const e of events) {
    const before = [...r.retries];
    r.apply(e);
    const retried = r.retries.filter((n) => !before.includes(n));
    r.round();
    r.settleRun();
    expect(r.running.size).toBeLessThanOrEqual(fleet.maxParallel);
    for (const n of r.running.keys()) expect(r.done.has(n)).toBe(false);
    // The failure budget counts each failed cluster once.
    const failed = [...r.done.values()].filter((x) => x.outcome === 'failed' || x.outcome === 'rolled-back');
    const budget = /^(\d+) worker cluster\(s\) failed/.exec(r.halt()?.reason ?? '');
    if (budget) expect(Number(budget[1])).toBe(failed.length);
    // A retried cluster is not left waiting: it runs, unless held, paused by a person, out of slots,
    // cancelled, or behind a canary or an earlier wave still running.
    for (const n of retried) {
      const blocked =
        r.cancelled ||
        r.held.has(n) ||
        r.outsideWindow(n) ||
        r.paused === 'person' ||
        r.running.size >= fleet.maxParallel ||
        (!r.canaries.has(n) && [...r.canaries].some((c) => !r.done.has(c))) ||
        r.waves.of(n) > r.waves.current(r.done);
      if (!blocked) expect(r.running.has(n) || r.done.has(n), `retried ${n} left waiting`).toBe(true);
    }
  }
  // Settle as an operator would: running children end well, failed clusters are skipped (a
  // decision), holds released, the rollout resumed.
  for (let turn = 0; turn < 200 && !r.ended; turn++) {
    while (r.running.size > 0) r.apply({ kind: 'end', pick: 0, outcome: 'upgraded' });
    for (const x of [...r.done.values()])
      if (x.outcome === 'failed' || x.outcome === 'rolled-back') r.done.set(x.cluster, { ...x, outcome: 'skipped' });
    r.held.clear();
    r.paused = undefined;
    // ... and time passes until a closed window opens (the fan-out's timer for it).
    const state = windowState(WINDOWS, r.now);
    if (!state.open && r.queue.some((q) => r.windowed.has(q.cluster))) r.now = state.opensAt;
    r.round();
    r.settleRun();
  }
  // The upgrade ended, with every cluster named: ended, or left when it was cancelled or stopped.
  const end = r.ended;
  expect(end, 'the upgrade never ended').toBeDefined();
  if (!end) return;
  expect(r.running.size).toBe(0);
  expect(r.names.filter((n) => !r.done.has(n)).sort()).toEqual([...end.left].sort());
  // Continue-as-new never loses a result, nor runs more often than its share of starts needs.
  expect(r.runs).toBeLessThanOrEqual(Math.max(1, Math.ceil(r.starts.length / fleet.perRun)) + 1);
  if (end.how === 'done') expect(end.left).toEqual([]);
  // A cluster a person was told "will start again" is never left not-started by a stop.
  if (end.how === 'halted') {
    expect(r.halt()).toBeDefined();
    for (const n of end.left) expect(r.promised.has(n), `retried ${n} left not-started`).toBe(false);
  }
}

const seed = Number(process.env.SKOALA_FC_SEED ?? Date.now() % 2 ** 31);

describe('the rollout model, property-based', () => {
  it('random event sequences keep every invariant (seed printed)', () => {
    console.log(`rollout model: fast-check seed ${seed} (replay: SKOALA_FC_SEED=${seed})`);
    fc.assert(
      fc.property(fleetArb, fc.array(eventArb, { maxLength: 40 }), (fleet, events) => check(fleet, events)),
      {
        seed,
        numRuns: Number(process.env.SKOALA_FC_RUNS ?? 400),
        // Found counterexamples, kept as fixed cases.
        examples: [
          // A failed canary under --on-failure pause, skipped by a person: the others go on (issue 19).
          [
            {
              workers: 2,
              canaries: 1,
              maxParallel: 1,
              maxFailures: undefined,
              batches: undefined,
              soak: false,
              planSkipped: [],
              pauseOnFailure: true,
              perRun: 1_000,
              windowed: [],
              startMinute: 0,
            },
            [
              { kind: 'end', pick: 0, outcome: 'failed' },
              { kind: 'skip', pick: 0 },
            ],
          ],
          // A retry when the run had used its share of starts, then another failure spends the budget:
          // the retried cluster was left not-started at the stop although told it would start (issue 19).
          [
            {
              workers: 6,
              canaries: 0,
              maxParallel: 2,
              maxFailures: 0,
              batches: undefined,
              soak: false,
              planSkipped: [],
              pauseOnFailure: false,
              perRun: 2,
              windowed: [],
              startMinute: 0,
            },
            [
              { kind: 'end', pick: 0, outcome: 'rolled-back' },
              { kind: 'retry', pick: 0 },
              { kind: 'end', pick: 0, outcome: 'rolled-back' },
            ],
          ],
          // The same under a person's pause: the retried cluster waits for the resume; a stop meanwhile
          // must not end the upgrade with it not-started (issue 19).
          [
            {
              workers: 7,
              canaries: 0,
              maxParallel: 2,
              maxFailures: 0,
              batches: undefined,
              soak: false,
              planSkipped: [],
              pauseOnFailure: false,
              perRun: 1_000,
              windowed: [],
              startMinute: 0,
            },
            [
              { kind: 'pause' },
              { kind: 'end', pick: 0, outcome: 'failed' },
              { kind: 'retry', pick: 0 },
              { kind: 'end', pick: 0, outcome: 'rolled-back' },
            ],
          ],
        ],
      }
    );
  });

  it('a skipped canary does not stop the rollout; a failed one does', () => {
    const canaries = new Set(['w1']);
    expect(
      haltReason(undefined, canaries, new Map([['w1', { cluster: 'w1', outcome: 'skipped' as const }]]))
    ).toBeUndefined();
    expect(haltReason(undefined, canaries, new Map([['w1', { cluster: 'w1', outcome: 'failed' as const }]]))).toEqual({
      reason: 'canary w1 ended failed',
    });
    // Replaying an upgrade started before the rule: the patch says no, and the old rule holds.
    expect(
      haltReason(undefined, canaries, new Map([['w1', { cluster: 'w1', outcome: 'skipped' as const }]]), () => false)
    ).toEqual({ reason: 'canary w1 ended skipped' });
  });
});
