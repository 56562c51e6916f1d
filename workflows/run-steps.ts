/**
 * Executes one cluster's plan, step by step, exactly as planUpgrade ordered it. Shared by the
 * parent (control plane) and the child (worker cluster).
 */
import {
  ActivityFailure,
  ApplicationFailure,
  CancellationScope,
  CancelledFailure,
  isCancellation,
} from '@temporalio/workflow';
import type { Approval, BackupRef, ClusterPlan, Step, StepKind } from '../runbook/types';
import { errorMessage } from './errors';
import type { Proxies } from './activities';

export interface StepHooks {
  upgradeId: string;
  /** Called before each step: progress reporting. */
  onStep(kind: StepKind): void;
  /** The approval gate; only worker plans have one. */
  awaitApproval?(step: Step & { kind: 'awaitCrdApproval' }): Promise<Approval>;
  /** Put the release back to its pre-upgrade revision when a step after `helm upgrade` began fails. */
  rollbackOnFailure?: boolean;
}

export interface StepsOutcome {
  backup?: BackupRef;
  approval?: Approval;
  rejected: boolean;
  crdsReapplied?: number;
  /** Set when the cluster failed and was rolled back: why, and to which revision. */
  rolledBack?: { cause: string; toRevision: number };
}

/** upgradeRelease's refusals: helm did not run, so the release is not ours to roll back. */
const REFUSED_BEFORE_HELM = new Set([
  'ValuesChanged',
  'ReleaseLocked',
  'ReleaseFailed',
  'ReleaseMissing',
  'ReleaseStuck',
  'BackupMissing',
  'BackupNotFound',
  'BackupChecksumMismatch',
  'ChartDigestMismatch',
]);

const failureType = (err: unknown): string | undefined =>
  err instanceof ActivityFailure && err.cause instanceof ApplicationFailure ? (err.cause.type ?? undefined) : undefined;

/** The revision the plan upgrades from: what a rollback goes back to. */
export function fromRevisionOf(plan: ClusterPlan): number | undefined {
  const upgrade = plan.steps.find((s) => s.kind === 'upgradeRelease');
  return upgrade?.kind === 'upgradeRelease' ? upgrade.fromRevision : undefined;
}

const arrow = (plan: ClusterPlan) => `${plan.from ?? 'none'} -> ${plan.to}`;

/**
 * Runs the plan; when a step fails after `helm upgrade` began and the policy says so, rolls the
 * release back to its pre-upgrade revision (its own activity, not interrupted by a cancel) and
 * checks its workloads again at the old version. CRDs are never rolled back.
 */
export async function runSteps(plan: ClusterPlan, acts: Proxies, hooks: StepHooks): Promise<StepsOutcome> {
  const outcome: StepsOutcome = { rejected: false };
  let upgradeBegan = false;
  try {
    return await executeSteps(plan, acts, hooks, outcome, () => (upgradeBegan = true));
  } catch (err) {
    const upgrade = plan.steps.find((s) => s.kind === 'upgradeRelease');
    if (!hooks.rollbackOnFailure || !upgradeBegan || upgrade?.kind !== 'upgradeRelease') throw err;
    // upgradeRelease refused before helm ran (someone else's work, a missing backup...): nothing of ours to undo.
    if (REFUSED_BEFORE_HELM.has(failureType(err) ?? '')) throw err;
    if (upgrade.fromRevision === undefined || plan.from === undefined) throw err; // a fresh install has nothing to go back to
    if (CancellationScope.current().consideredCancelled) throw err;
    const cause = errorMessage(err);
    const cluster = plan.cluster;
    const site = cluster.taskQueue ? { taskQueue: cluster.taskQueue } : {};
    let untouched = false;
    try {
      hooks.onStep('rollbackRelease');
      // Job templates are immutable: the admission Jobs block a rollback as they block an upgrade.
      const jobs = plan.steps.find((s) => s.kind === 'deleteAdmissionJobs');
      if (jobs?.kind === 'deleteAdmissionJobs')
        await acts.quick.deleteAdmissionJobs.executeWithOptions(
          { ...acts.options.quick, ...site, summary: `delete admission Jobs on ${cluster.name} before the rollback` },
          [{ cluster, jobs: jobs.jobs }]
        );
      const back = await CancellationScope.nonCancellable(() =>
        acts.helm.rollbackToRevision.executeWithOptions(
          {
            ...acts.options.helm,
            ...site,
            summary: `roll back ${upgrade.release} on ${cluster.name} to revision ${upgrade.fromRevision}`,
          },
          [
            {
              upgradeId: hooks.upgradeId,
              cluster,
              release: upgrade.release,
              revision: upgrade.fromRevision as number,
              record: { version: plan.to, cause },
            },
          ]
        )
      );
      // helm never changed the release (e.g. the chart pull failed inside upgradeRelease): nothing
      // was rolled back, and the cluster ends failed with its own cause.
      untouched = back.untouched === true;
      const health = plan.steps.find((s) => s.kind === 'verifyWorkloads');
      if (!untouched && health?.kind === 'verifyWorkloads') {
        hooks.onStep('verifyWorkloads');
        await acts.helm.verifyWorkloads.executeWithOptions(
          {
            ...healthOptions(acts, health.timeoutMs),
            ...site,
            summary: `health of ${upgrade.release} on ${cluster.name} back at ${plan.from}`,
          },
          [
            {
              cluster,
              release: health.release,
              version: plan.from,
              // The restored revision's manifest names the tags it ran before (a site's own hotfix
              // tag included): its workloads must roll out, at whatever tags it pins.
              containers: [],
              timeoutMs: health.timeoutMs,
            },
          ]
        );
      }
    } catch (rollbackErr) {
      if (isCancellation(rollbackErr)) throw rollbackErr;
      // Both causes matter to whoever picks the cluster up.
      throw ApplicationFailure.nonRetryable(
        `${cause}; the rollback to revision ${upgrade.fromRevision} failed too: ${errorMessage(rollbackErr)}`,
        'RollbackFailed'
      );
    }
    if (untouched) {
      hooks.onStep(upgrade.kind); // where it failed: nothing was rolled back
      throw err;
    }
    outcome.rolledBack = { cause, toRevision: upgrade.fromRevision };
    return outcome;
  }
}

/** The health check's attempt outlives its own deadline; it heartbeats every poll. */
const healthOptions = (acts: Proxies, timeoutMs: number) => ({
  ...acts.options.helm,
  startToCloseTimeout: timeoutMs + 2 * 60_000,
});

async function executeSteps(
  plan: ClusterPlan,
  acts: Proxies,
  hooks: StepHooks,
  outcome: StepsOutcome,
  upgradeBegins: () => void
): Promise<StepsOutcome> {
  const cluster = plan.cluster;
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
          [
            {
              upgradeId: hooks.upgradeId,
              cluster,
              release: step.release,
              revision: step.revision,
              ...(step.store ? { store: step.store } : {}),
            },
          ]
        );
        break;
      case 'addChartRepo':
        await acts.quick.addChartRepo.executeWithOptions(
          { ...options.quick, summary: `helm repo add ${step.repo.name}` },
          // The upgrade names the work: each worker host adds the repository once for it, not per cluster.
          [{ repo: step.repo, upgradeId: hooks.upgradeId }]
        );
        break;
      case 'updateChartRepo':
        await acts.quick.updateChartRepo.executeWithOptions(
          { ...options.quick, summary: `helm repo update ${step.repo.name}` },
          [{ repo: step.repo, upgradeId: hooks.upgradeId }]
        );
        break;
      case 'deleteAdmissionJobs':
        await acts.quick.deleteAdmissionJobs.executeWithOptions(
          { ...options.quick, summary: `delete admission Jobs on ${cluster.name}` },
          [{ cluster, jobs: step.jobs }]
        );
        break;
      case 'upgradeRelease': {
        upgradeBegins();
        const input = { upgradeId: hooks.upgradeId, cluster, step, backup: outcome.backup };
        // A cancel lets a running helm finish (never leaves a release pending by us); the cancel
        // takes effect at the next step.
        const upgrade = (extra: { deleteJobs?: string[] } = {}) =>
          CancellationScope.nonCancellable(() =>
            acts.helm.upgradeRelease.executeWithOptions(
              { ...options.helm, summary: `helm upgrade ${step.release} on ${cluster.name} ${arrow(plan)}` },
              [{ ...input, ...extra }]
            )
          );
        try {
          await upgrade();
        } catch (err) {
          if (failureType(err) !== 'PendingRollbackNeeded' || step.fromRevision === undefined) throw err;
          // Our earlier helm died mid-upgrade: roll its pending revision back (its own activity), then
          // upgrade. The admission Jobs block both (immutable templates), and the rollback brings the
          // old ones back: each activity deletes them right before its helm runs.
          const jobs = plan.steps.find((s) => s.kind === 'deleteAdmissionJobs');
          const deleteJobs = jobs?.kind === 'deleteAdmissionJobs' ? { deleteJobs: jobs.jobs } : {};
          await CancellationScope.nonCancellable(() =>
            acts.helm.rollbackRelease.executeWithOptions(
              { ...options.helm, summary: `helm rollback ${step.release} on ${cluster.name} to ${step.fromRevision}` },
              [
                {
                  upgradeId: hooks.upgradeId,
                  cluster,
                  release: step.release,
                  revision: step.fromRevision as number,
                  ...deleteJobs,
                },
              ]
            )
          );
          await upgrade(deleteJobs);
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
      case 'verifyWorkloads':
        await acts.helm.verifyWorkloads.executeWithOptions(
          {
            ...healthOptions(acts, step.timeoutMs),
            ...site,
            summary: `health of ${step.release} on ${cluster.name}: workloads rolled out at ${step.version}`,
          },
          [
            {
              cluster,
              release: step.release,
              version: step.version,
              containers: step.containers,
              timeoutMs: step.timeoutMs,
            },
          ]
        );
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
