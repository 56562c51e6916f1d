/** The control plane: the runbook's control-plane steps, verified before any worker cluster is touched. */
import { ApplicationFailure, isCancellation, setCurrentDetails } from '@temporalio/workflow';
import { helmRollback, kubectlTarget } from '../runbook/commands';
import type { ClusterPlan, ClusterResult, StepKind, UpgradeRequest } from '../runbook/types';
import type { Proxies } from './activities';
import { errorMessage } from './errors';
import type { FleetStatus } from './fleet-status';
import { fromRevisionOf, runSteps } from './run-steps';

/** What a person does instead of an automatic rollback once the DB-migration Job moved the schema. */
function manualRollbackSteps(plan: ClusterPlan): string {
  const c = plan.cluster;
  const revision = fromRevisionOf(plan);
  return [
    'NOT rolled back automatically: the DB-migration Job already moved the database schema. To go back by hand:',
    '(1) restore the skoala database from the backup taken before the upgrade;',
    `(2) helm ${helmRollback(c, 'skoala', revision ?? 0).join(' ')};`,
    `(3) kubectl ${[...kubectlTarget(c), '-n', c.namespace, 'rollout', 'status', 'deployment/hive', 'deployment/sesame'].join(' ')}`,
  ].join(' ');
}

export async function upgradeControlPlane(
  plan: ClusterPlan,
  request: UpgradeRequest,
  acts: Proxies,
  status: FleetStatus
): Promise<ClusterResult> {
  status.enter('control-plane');
  if (plan.skipped) return skippedResult(plan);
  const startedAt = new Date().toISOString();
  status.running(plan);
  // After a DB-migration Job the schema moved: an automatic helm rollback would not bring it back.
  const ranDbJob = plan.steps.some((s) => s.kind === 'runDbMigrationJob');
  const rollback = request.options.onFailure === 'rollback';
  let step: StepKind | undefined;
  try {
    const outcome = await runSteps(plan, acts, {
      upgradeId: request.upgradeId,
      rollbackOnFailure: rollback && !ranDbJob,
      onStep: (kind) => {
        step = kind;
        setCurrentDetails(`control plane ${plan.cluster.name}: ${kind}`);
        status.update(plan.cluster.name, { step: kind });
      },
    });
    if (outcome.rolledBack) {
      const why = `${outcome.rolledBack.cause}; rolled back to revision ${outcome.rolledBack.toRevision}`;
      status.enter('failed');
      status.update(plan.cluster.name, { state: 'rolled-back', error: why });
      throw ApplicationFailure.nonRetryable(
        `control plane ${plan.cluster.name} failed and was rolled back, no worker cluster was touched: ${why}`,
        'ControlPlaneRolledBack'
      );
    }
    return {
      cluster: plan.cluster.name,
      role: 'control-plane',
      outcome: 'upgraded',
      from: plan.from,
      to: plan.to,
      backup: outcome.backup,
      fromRevision: fromRevisionOf(plan),
      ...(step ? { step } : {}),
      startedAt,
      finishedAt: new Date().toISOString(),
    };
  } catch (err) {
    if (isCancellation(err)) throw err; // the upgrade names every cluster's state when it ends cancelled
    if (err instanceof ApplicationFailure && err.type === 'ControlPlaneRolledBack') throw err;
    status.enter('failed');
    const manual = rollback && ranDbJob ? `; ${manualRollbackSteps(plan)}` : '';
    status.update(plan.cluster.name, { state: 'failed', error: errorMessage(err) });
    throw ApplicationFailure.nonRetryable(
      `control plane ${plan.cluster.name} failed, no worker cluster was touched: ${errorMessage(err)}${manual}`,
      'ControlPlaneFailed'
    );
  }
}

export const skippedResult = (p: ClusterPlan): ClusterResult => ({
  cluster: p.cluster.name,
  role: p.role,
  outcome: p.skipOutcome ?? 'already-at-target',
  from: p.from,
  to: p.to,
  ...(p.skipOutcome === 'not-started' ? { error: p.skipped } : {}),
});
