/**
 * rollbackClusters (`npm run rollback`): puts clusters back to the revision they had before an
 * upgrade, durably and visibly like the upgrade itself. Each cluster: `helm rollback` (refused when
 * its release moved since, i.e. the newest revision is not the upgrade's), then the health check at
 * the old version. One cluster failing does not stop the others.
 */
import { log, patched, setCurrentDetails } from '@temporalio/workflow';
import { ADMISSION_JOBS } from '../runbook/rules';
import type { ClusterRef, ReleaseName, Tuning, Version } from '../runbook/types';
import { proxies } from './activities';
import { errorMessage } from './errors';

export interface RollbackTarget {
  cluster: ClusterRef;
  release: ReleaseName;
  /** The revision before the upgrade, and its chart version (the tags the health check expects). */
  revision: number;
  version: Version;
}

export interface RollbackClustersInput {
  /** The upgrade whose revisions are undone: only revisions it made are rolled back. */
  upgradeId: string;
  targets: RollbackTarget[];
  /** The upgrade's target version: a rerun of it leaves these clusters alone (unless --retry-failed). */
  version: Version;
  by: string;
  healthTimeoutMs: number;
  tuning?: Tuning;
}

export interface RollbackOutcome {
  cluster: string;
  /** `unchanged`: the upgrade never changed this release (e.g. cancelled or skipped before it began): nothing done. */
  outcome: 'rolled-back' | 'already-back' | 'unchanged' | 'refused' | 'failed';
  error?: string;
}

export async function rollbackClusters(input: RollbackClustersInput): Promise<RollbackOutcome[]> {
  const acts = proxies(input.tuning);
  log.info('rolling back clusters', { by: input.by, clusters: input.targets.map((t) => t.cluster.name) });
  const results: RollbackOutcome[] = [];
  for (const t of input.targets) {
    const name = t.cluster.name;
    const site = t.cluster.taskQueue ? { taskQueue: t.cluster.taskQueue } : {};
    setCurrentDetails(
      `rolling back ${t.release} on ${name} to revision ${t.revision} (${results.length}/${input.targets.length} done)`
    );
    try {
      // Job templates are immutable: the admission Jobs block a rollback as they block an upgrade.
      // The activity deletes them itself once a rollback is certain (a cluster the upgrade never
      // changed is left as it is); rollbacks started before that did it here first.
      const jobsInActivity = patched('rollback-deletes-jobs-in-activity');
      const jobs = t.release === 'skoala-init' ? ADMISSION_JOBS : [];
      if (!jobsInActivity && jobs.length > 0)
        await acts.quick.deleteAdmissionJobs.executeWithOptions(
          { ...acts.options.quick, ...site, summary: `delete admission Jobs on ${name} before the rollback` },
          [{ cluster: t.cluster, jobs: ADMISSION_JOBS }]
        );
      const { rolledBack, untouched } = await acts.helm.rollbackToRevision.executeWithOptions(
        { ...acts.options.helm, ...site, summary: `helm rollback ${t.release} on ${name} to revision ${t.revision}` },
        [
          {
            upgradeId: input.upgradeId,
            cluster: t.cluster,
            release: t.release,
            revision: t.revision,
            record: { version: input.version, cause: `rolled back by ${input.by} (npm run rollback)` },
            ...(jobsInActivity && jobs.length > 0 ? { deleteJobs: jobs } : {}),
          },
        ]
      );
      if (untouched) {
        results.push({ cluster: name, outcome: 'unchanged' });
        continue;
      }
      await acts.helm.verifyWorkloads.executeWithOptions(
        {
          ...acts.options.helm,
          ...site,
          startToCloseTimeout: input.healthTimeoutMs + 2 * 60_000,
          summary: `health of ${t.release} on ${name} at ${t.version}`,
        },
        [
          {
            cluster: t.cluster,
            release: t.release,
            version: t.version,
            // The restored revision's manifest names the tags it ran before (a site's own hotfix
            // tag included): its workloads must roll out, at whatever tags it pins.
            containers: [],
            timeoutMs: input.healthTimeoutMs,
          },
        ]
      );
      results.push({ cluster: name, outcome: rolledBack ? 'rolled-back' : 'already-back' });
    } catch (err) {
      const message = errorMessage(err);
      results.push({
        cluster: name,
        outcome: /moved since this upgrade/.test(message) ? 'refused' : 'failed',
        error: message,
      });
    }
  }
  setCurrentDetails(results.map((r) => `${r.cluster}: ${r.outcome}`).join('\n'));
  return results;
}
