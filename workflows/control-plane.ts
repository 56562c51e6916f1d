/** The control plane: the runbook's control-plane steps, verified before any worker cluster is touched. */
import { ApplicationFailure, isCancellation, setCurrentDetails } from '@temporalio/workflow';
import type { ClusterPlan, ClusterResult } from '../runbook/types';
import type { Proxies } from './activities';
import { errorMessage } from './errors';
import type { FleetStatus } from './fleet-status';
import { runSteps } from './run-steps';

export async function upgradeControlPlane(
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
    if (isCancellation(err)) throw err; // the upgrade names every cluster's state when it ends cancelled
    status.phase = 'failed';
    status.update(plan.cluster.name, { state: 'failed', error: errorMessage(err) });
    throw ApplicationFailure.nonRetryable(
      `control plane ${plan.cluster.name} failed, no worker cluster was touched: ${errorMessage(err)}`,
      'ControlPlaneFailed'
    );
  }
}

export const skippedResult = (p: ClusterPlan): ClusterResult => ({
  cluster: p.cluster.name,
  role: p.role,
  outcome: 'already-at-target',
  from: p.from,
  to: p.to,
});
