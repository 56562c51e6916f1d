/**
 * The parent's view of every cluster: the one owner of the fleet's status. Fed by the phases of the
 * parent and by child progress signals; answers the `status` query.
 */
import type {
  ClusterPlan,
  ClusterResult,
  ClusterState,
  ClusterStatus,
  Phase,
  Plan,
  RolloutStatus,
  UpgradeStatus,
  Version,
} from '../runbook/types';
import type { ClusterProgress } from './messages';
import { fromRevisionOf } from './run-steps';

const FINAL: ClusterState[] = [
  'upgraded',
  'already-at-target',
  'rejected',
  'failed',
  'rolled-back',
  'cancelled',
  'not-started',
  'skipped',
];

export class FleetStatus {
  private currentPhase: Phase = 'preflight';
  /** Called on every change (the UI view coalesces them: see fleet-view.ts). */
  onChange: () => void = () => undefined;
  /** Waves, soak, pause and approvals given ahead: how the rollout is paced and steered. Written only here. */
  private readonly steering: RolloutStatus = {};
  private readonly clusters = new Map<string, ClusterStatus>();
  /** The newest progress signal taken per cluster: from which child run, and its number there. */
  private readonly lastSeq = new Map<string, { run: string; seq: number }>();
  /** Child runs that ended, per cluster: a retry's new run is listened to, a late signal of theirs is not. */
  private readonly endedRuns = new Map<string, Set<string>>();
  private readonly labels = new Map<string, Record<string, string>>();
  /** How each worker cluster ended, for the rules that steer the rollout. Written only by `finished` and `reopened`. */
  private readonly results = new Map<string, ClusterResult>();
  /** Counts pause, resume, hold and release: the fan-out waits for it to move. */
  steers = 0;
  /** Answers of children to approve-all decisions, by request. */
  private readonly acks = new Map<string, Map<string, { decided: boolean; reason?: string }>>();

  constructor(
    private readonly upgradeId: string,
    private readonly targetVersion: Version,
    private readonly controlPlaneName: string,
    workerNames: string[]
  ) {
    this.clusters.set(controlPlaneName, {
      cluster: controlPlaneName,
      role: 'control-plane',
      state: 'pending',
      to: targetVersion,
    });
    for (const name of workerNames)
      this.clusters.set(name, { cluster: name, role: 'worker', state: 'pending', to: targetVersion });
  }

  get phase(): Phase {
    return this.currentPhase;
  }

  /** The upgrade's phase; every change goes through here. */
  enter(p: Phase): void {
    this.currentPhase = p;
    this.onChange();
  }

  /** How the rollout is paced and steered, to read; the methods below change it. */
  get rollout(): Readonly<RolloutStatus> {
    return this.steering;
  }

  /** What a new run of the upgrade carries over (continue-as-new), or the fleet's CRD change. */
  carry(r: Partial<RolloutStatus> | undefined): void {
    Object.assign(this.steering, r);
  }

  pause(paused: NonNullable<RolloutStatus['paused']>): void {
    this.steering.paused = paused;
    this.steered();
  }

  /** Lifts the pause; returns what it was. */
  resume(): RolloutStatus['paused'] {
    const was = this.steering.paused;
    delete this.steering.paused;
    this.steered();
    return was;
  }

  hold(h: NonNullable<RolloutStatus['holds']>[number]): void {
    this.steering.holds = [...(this.steering.holds ?? []), h];
    this.steered();
  }

  /** Lifts the holds `which` picks; returns them. */
  release(which: (h: NonNullable<RolloutStatus['holds']>[number]) => boolean) {
    const lifted = (this.steering.holds ?? []).filter(which);
    this.steering.holds = (this.steering.holds ?? []).filter((h) => !lifted.includes(h));
    if (this.steering.holds.length === 0) delete this.steering.holds;
    this.steered();
    return lifted;
  }

  approvedAhead(a: NonNullable<RolloutStatus['aheadApprovals']>[number]): void {
    this.steering.aheadApprovals = [...(this.steering.aheadApprovals ?? []), a];
  }

  /** The wave running (1-based) of how many, and the end of the soak before it, if one runs. */
  wave(wave: number, waves: number, soakingUntil?: string): void {
    Object.assign(this.steering, { wave, waves });
    if (soakingUntil) this.steering.soakingUntil = soakingUntil;
    else delete this.steering.soakingUntil;
  }

  /** The workers' labels, known from the fleet file before the plan (holds and approvals ahead given during preflight). */
  labelled(workers: { name: string; labels?: Record<string, string> }[]): void {
    for (const w of workers) if (w.labels) this.labels.set(w.name, w.labels);
  }

  planned(plan: Plan): void {
    for (const p of [plan.controlPlane, ...plan.workers]) {
      this.update(p.cluster.name, { from: p.from, fromRevision: fromRevisionOf(p) });
      if (p.cluster.labels) this.labels.set(p.cluster.name, p.cluster.labels);
    }
  }

  update(cluster: string, patch: Partial<ClusterStatus>): void {
    const current = this.clusters.get(cluster);
    if (current) this.clusters.set(cluster, { ...current, ...patch });
    this.onChange();
  }

  progress(p: ClusterProgress): void {
    if (p.ack) this.acks.get(p.ack.requestId)?.set(p.cluster, { decided: p.ack.decided, reason: p.ack.reason });
    const current = this.clusters.get(p.cluster);
    // A late signal must not move a finished cluster back to running.
    if (!current || FINAL.includes(current.state)) return;
    const run = p.run ?? ''; // children started before runs were named share one counter, as then
    if (this.endedRuns.get(p.cluster)?.has(run)) return;
    const last = this.lastSeq.get(p.cluster);
    if (last && last.run === run && last.seq >= p.seq) return;
    this.lastSeq.set(p.cluster, { run, seq: p.seq });
    const atGate = p.state === 'waiting-approval';
    this.update(p.cluster, {
      state: p.state,
      step: atGate ? 'awaitCrdApproval' : undefined,
      gate: atGate ? (p.gate ?? current.gate) : undefined,
    });
  }

  /** The digest each waiting cluster's gate asks to approve. */
  gateDigests(clusters: string[]): Record<string, string> {
    const out: Record<string, string> = {};
    for (const c of clusters) {
      const d = this.clusters.get(c)?.gate?.digest;
      if (d) out[c] = d;
    }
    return out;
  }

  /** Why a cluster not started yet waits (a hold, a window), or undefined to clear it. */
  notStartedBecause(cluster: string, why: string | undefined): void {
    const current = this.clusters.get(cluster);
    if (current && current.waitingFor !== why) this.update(cluster, { waitingFor: why });
  }

  /** Starts collecting the children's answers to one approve-all request. */
  expectAcks(requestId: string): Map<string, { decided: boolean; reason?: string }> {
    const answers = new Map<string, { decided: boolean; reason?: string }>();
    this.acks.set(requestId, answers);
    return answers;
  }

  forgetAcks(requestId: string): void {
    this.acks.delete(requestId);
  }

  running(plan: ClusterPlan): void {
    this.update(plan.cluster.name, { state: 'running', step: undefined, waitingFor: undefined });
  }

  /** Worker clusters that ended, and how: read-only, so the rollout's rules and the result agree with status. */
  get ended(): ReadonlyMap<string, ClusterResult> {
    return this.results;
  }

  /** Results a new run carried over from the run before it: known ended, shown once the fan-out starts. */
  carryResults(results: ClusterResult[]): void {
    for (const r of results) this.results.set(r.cluster, r);
  }

  /** A retried cluster is no longer ended: it waits to start again, saying why. */
  reopened(cluster: string, why: string): ClusterResult | undefined {
    const before = this.results.get(cluster);
    this.results.delete(cluster);
    this.update(cluster, { state: 'pending', error: undefined, step: undefined, waitingFor: why });
    return before;
  }

  finished(r: ClusterResult): void {
    if (r.role === 'worker') this.results.set(r.cluster, r);
    const run = this.lastSeq.get(r.cluster)?.run;
    if (run) this.endedRuns.set(r.cluster, new Set([...(this.endedRuns.get(r.cluster) ?? []), run]));
    this.update(r.cluster, {
      state: r.outcome,
      step: r.step,
      error: r.error,
      approval: r.approval,
      from: r.from,
      gate: undefined,
      waitingFor: undefined,
    });
  }

  /** Every cluster not finished yet ends `cancelled`, naming what it had reached. */
  cancelled(): void {
    this.currentPhase = 'cancelled';
    for (const c of this.clusters.values()) {
      if (FINAL.includes(c.state)) continue;
      const why =
        c.state === 'pending'
          ? 'not started: the upgrade was cancelled'
          : `cancelled${c.step ? ` (last step: ${c.step})` : ''}`;
      this.update(c.cluster, { state: 'cancelled', error: why });
    }
  }

  state(cluster: string): ClusterState | undefined {
    return this.clusters.get(cluster)?.state;
  }

  /** The labels of a worker cluster, as the plan has them (for ahead approvals by selector). */
  labelsOf(cluster: string): Record<string, string> {
    return this.labels.get(cluster) ?? {};
  }

  steered(): void {
    this.steers++;
    this.onChange();
  }

  /** Worker clusters not started yet. */
  notStarted(): string[] {
    return [...this.clusters.values()]
      .filter((c) => c.role === 'worker' && c.state === 'pending')
      .map((c) => c.cluster);
  }

  waiting(): string[] {
    return [...this.clusters.values()].filter((c) => c.state === 'waiting-approval').map((c) => c.cluster);
  }

  status(): UpgradeStatus {
    const all = [...this.clusters.values()];
    return {
      upgradeId: this.upgradeId,
      targetVersion: this.targetVersion,
      phase: this.currentPhase,
      controlPlane: this.clusters.get(this.controlPlaneName) as ClusterStatus,
      workers: all.filter((c) => c.role === 'worker'),
      pendingApprovals: this.waiting(),
      ...(Object.keys(this.steering).length > 0 ? { rollout: { ...this.steering } } : {}),
      failures: all
        .filter((c) => c.state === 'failed' || c.state === 'rolled-back')
        .map((c) => ({ cluster: c.cluster, error: c.error ?? 'failed' })),
    };
  }
}
