/** The parent's view of every cluster, fed by child progress signals; answers the `status` query. */
import type { ClusterPlan, ClusterResult, ClusterStatus, Phase, Plan, UpgradeStatus, Version } from '../runbook/types';
import type { ClusterProgress } from './messages';

export class FleetStatus {
  phase: Phase = 'preflight';
  private readonly clusters = new Map<string, ClusterStatus>();
  private readonly lastSeq = new Map<string, number>();

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

  planned(plan: Plan): void {
    for (const p of [plan.controlPlane, ...plan.workers]) this.update(p.cluster.name, { from: p.from });
  }

  update(cluster: string, patch: Partial<ClusterStatus>): void {
    const current = this.clusters.get(cluster);
    if (current) this.clusters.set(cluster, { ...current, ...patch });
  }

  progress(p: ClusterProgress): void {
    const current = this.clusters.get(p.cluster);
    // A late signal must not move a finished cluster back to running.
    if (!current || ['upgraded', 'already-at-target', 'rejected', 'failed'].includes(current.state)) return;
    if ((this.lastSeq.get(p.cluster) ?? 0) >= p.seq) return;
    this.lastSeq.set(p.cluster, p.seq);
    this.update(p.cluster, { state: p.state, step: p.step, error: p.error });
  }

  running(plan: ClusterPlan): void {
    this.update(plan.cluster.name, { state: 'running', step: undefined });
  }

  finished(r: ClusterResult): void {
    this.update(r.cluster, { state: r.outcome, step: undefined, error: r.error, approval: r.approval, from: r.from });
  }

  isWaiting = (cluster: string): boolean => this.clusters.get(cluster)?.state === 'waiting-approval';

  waiting(): string[] {
    return [...this.clusters.values()].filter((c) => c.state === 'waiting-approval').map((c) => c.cluster);
  }

  status(): UpgradeStatus {
    const all = [...this.clusters.values()];
    return {
      upgradeId: this.upgradeId,
      targetVersion: this.targetVersion,
      phase: this.phase,
      controlPlane: this.clusters.get(this.controlPlaneName) as ClusterStatus,
      workers: all.filter((c) => c.role === 'worker'),
      pendingApprovals: this.waiting(),
      failures: all
        .filter((c) => c.state === 'failed')
        .map((c) => ({ cluster: c.cluster, error: c.error ?? 'failed' })),
    };
  }
}
