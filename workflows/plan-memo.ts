/** The plan as stored in the parent's memo, for the Temporal UI. */
import type { ClusterPlan, Plan } from '../runbook/types';

/**
 * The plan as the Temporal UI shows it. The server refuses memos over 32 KiB, so workers are
 * grouped by (installed version, steps); each child's input holds its cluster's full plan.
 */
export function memoOf(plan: Plan): PlanMemo {
  const kinds = (p: ClusterPlan) => p.steps.map((s) => s.kind);
  const groups = new Map<string, PlanMemo['workerGroups'][number]>();
  for (const w of plan.workers) {
    const key = JSON.stringify([w.from, w.skipped, kinds(w)]);
    const g = groups.get(key) ?? { from: w.from, skipped: w.skipped, steps: kinds(w), count: 0, clusters: [] };
    g.count++;
    if (g.clusters.length < 10) g.clusters.push(w.cluster.name);
    groups.set(key, g);
  }
  return {
    targetVersion: plan.targetVersion,
    notes: plan.notes,
    controlPlane: {
      cluster: plan.controlPlane.cluster.name,
      from: plan.controlPlane.from,
      skipped: plan.controlPlane.skipped,
      steps: kinds(plan.controlPlane),
    },
    workerGroups: [...groups.values()],
  };
}

export interface PlanMemo {
  targetVersion: string;
  notes: string[];
  controlPlane: { cluster: string; from?: string; skipped?: string; steps: string[] };
  /** `clusters` names the first ten of `count`. */
  workerGroups: { from?: string; skipped?: string; steps: string[]; count: number; clusters: string[] }[];
}
