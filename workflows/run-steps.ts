/**
 * Executes one cluster's plan, step by step, exactly as planUpgrade ordered it. Shared by the
 * parent (control plane) and the child (worker cluster).
 */
import { ActivityFailure, ApplicationFailure, CancellationScope, CancelledFailure } from '@temporalio/workflow';
import type { Approval, BackupRef, ClusterPlan, Step, StepKind } from '../runbook/types';
import type { Proxies } from './activities';

export interface StepHooks {
  upgradeId: string;
  /** Called before each step: progress reporting. */
  onStep(kind: StepKind): void;
  /** The approval gate; only worker plans have one. */
  awaitApproval?(step: Step & { kind: 'awaitCrdApproval' }): Promise<Approval>;
}

export interface StepsOutcome {
  backup?: BackupRef;
  approval?: Approval;
  rejected: boolean;
  crdsReapplied?: number;
}

const failureType = (err: unknown): string | undefined =>
  err instanceof ActivityFailure && err.cause instanceof ApplicationFailure ? (err.cause.type ?? undefined) : undefined;

const arrow = (plan: ClusterPlan) => `${plan.from ?? 'none'} -> ${plan.to}`;

export async function runSteps(plan: ClusterPlan, acts: Proxies, hooks: StepHooks): Promise<StepsOutcome> {
  const cluster = plan.cluster;
  const outcome: StepsOutcome = { rejected: false };
  // A cluster on a per-site task queue runs every activity there, the control plane included.
  const site = plan.cluster.taskQueue ? { taskQueue: plan.cluster.taskQueue } : {};
  const options = {
    quick: { ...acts.options.quick, ...site },
    helm: { ...acts.options.helm, ...site },
    job: { ...acts.options.job, ...site },
  };
  for (const step of plan.steps) {
    // A cancel that came in during the last step stops here, before the next one starts.
    if (CancellationScope.current().consideredCancelled) throw new CancelledFailure('the upgrade was cancelled');
    hooks.onStep(step.kind);
    switch (step.kind) {
      case 'runDbMigrationJob':
        await acts.job.runDbMigrationJob.executeWithOptions(
          { ...options.job, summary: `DB-migration Job on ${cluster.name}` },
          [{ upgradeId: hooks.upgradeId, cluster, manifest: step.manifest }]
        );
        break;
      case 'backupValues':
        outcome.backup = await acts.quick.backupValues.executeWithOptions(
          {
            ...options.quick,
            summary: `back up ${step.release} values on ${cluster.name} (revision ${step.revision})`,
          },
          [{ upgradeId: hooks.upgradeId, cluster, release: step.release, revision: step.revision }]
        );
        break;
      case 'addChartRepo':
        await acts.quick.addChartRepo.executeWithOptions(
          { ...options.quick, summary: `helm repo add ${step.repo.name}` },
          [{ repo: step.repo }]
        );
        break;
      case 'updateChartRepo':
        await acts.quick.updateChartRepo.executeWithOptions(
          { ...options.quick, summary: `helm repo update ${step.repo.name}` },
          [{ repo: step.repo }]
        );
        break;
      case 'deleteAdmissionJobs':
        await acts.quick.deleteAdmissionJobs.executeWithOptions(
          { ...options.quick, summary: `delete admission Jobs on ${cluster.name}` },
          [{ cluster, jobs: step.jobs }]
        );
        break;
      case 'upgradeRelease': {
        const input = { upgradeId: hooks.upgradeId, cluster, step, backup: outcome.backup };
        // A cancel lets a running helm finish (never leaves a release pending by us); the cancel
        // takes effect at the next step.
        const upgrade = () =>
          CancellationScope.nonCancellable(() =>
            acts.helm.upgradeRelease.executeWithOptions(
              { ...options.helm, summary: `helm upgrade ${step.release} on ${cluster.name} ${arrow(plan)}` },
              [input]
            )
          );
        try {
          await upgrade();
        } catch (err) {
          if (failureType(err) !== 'PendingRollbackNeeded' || step.fromRevision === undefined) throw err;
          // Our earlier helm died mid-upgrade: roll its pending revision back (its own activity), then upgrade.
          await CancellationScope.nonCancellable(() =>
            acts.helm.rollbackRelease.executeWithOptions(
              { ...options.helm, summary: `helm rollback ${step.release} on ${cluster.name} to ${step.fromRevision}` },
              [{ upgradeId: hooks.upgradeId, cluster, release: step.release, revision: step.fromRevision as number }]
            )
          );
          await upgrade();
        }
        break;
      }
      case 'awaitCrdApproval':
        if (!hooks.awaitApproval)
          throw ApplicationFailure.nonRetryable(`plan for ${cluster.name} has a gate but no approver`);
        outcome.approval = await hooks.awaitApproval(step);
        if (!outcome.approval.approved) {
          outcome.rejected = true;
          return outcome; // a reject skips the CRD step and what follows
        }
        break;
      case 'reapplyCrds':
        // A count, not the names: the result of a 1,000-cluster upgrade must stay well under the payload limit.
        outcome.crdsReapplied = (
          await acts.helm.reapplyCrds.executeWithOptions(
            { ...options.helm, summary: `re-apply CRDs of ${step.chart} ${step.version} on ${cluster.name}` },
            [{ upgradeId: hooks.upgradeId, cluster, step }]
          )
        ).applied.length;
        break;
      case 'verifyRelease':
        await acts.quick.verifyRelease.executeWithOptions(
          { ...options.quick, summary: `verify ${step.release} ${step.version} on ${cluster.name}` },
          [{ cluster, release: step.release, version: step.version }]
        );
        break;
      default: {
        const unknown: never = step;
        throw ApplicationFailure.nonRetryable(`unknown step ${JSON.stringify(unknown)}`);
      }
    }
  }
  return outcome;
}
