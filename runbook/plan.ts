/**
 * planUpgrade: a pure function from (request, facts read by preflight) to the ordered steps of
 * every cluster. `npm run plan` prints it; the workflow executes exactly this object.
 */
import {
  ADMISSION_JOBS,
  chartManagesCrds,
  crdFilesInChart,
  dbMigrationNeed,
  deletesAdmissionJobs,
  runsDbMigration,
  skoalaImageValues,
  skoalaInitImageValues,
  workerKubeVersionSupported,
  MIN_WORKER_KUBE_VERSION,
} from './rules';
import type { ClusterFacts, ClusterPlan, ClusterRef, FleetFacts, Plan, Step, UpgradeRequest } from './types';
import { compareVersions } from './version';

/** The upgrade must not start: every problem found, each naming what to fix. */
export class PlanRefused extends Error {
  constructor(readonly problems: string[]) {
    super(problems.join('; '));
    this.name = 'PlanRefused';
  }
}

export function planUpgrade(request: UpgradeRequest, facts: FleetFacts): Plan {
  const { fleet, options } = request;
  const to = options.targetVersion;
  const problems: string[] = [];
  const notes: string[] = [];

  const all = [
    { ref: fleet.controlPlane, facts: facts.controlPlane },
    ...fleet.workers.map((ref, i) => ({ ref, facts: facts.workers[i] })),
  ];
  for (const { ref, facts: f } of all) {
    if (!f || f.cluster !== ref.name) {
      problems.push(`no preflight facts for cluster ${ref.name}`);
      continue;
    }
    const from = f.release.chartVersion;
    if (from !== undefined && compareVersions(to, from) < 0 && !options.allowDowngrade) {
      problems.push(`${ref.name}: ${to} is older than the installed ${from}; pass --allow-downgrade to go down`);
    }
  }
  for (const [i, ref] of fleet.workers.entries()) {
    const f = facts.workers[i];
    if (f && !workerKubeVersionSupported(f.kubeVersion)) {
      problems.push(
        `${ref.name}: Kubernetes ${f.kubeVersion} is below ${MIN_WORKER_KUBE_VERSION}, which the Gateway-API CRDs need`
      );
    }
  }

  const cpFacts = facts.controlPlane;
  const need = dbMigrationNeed(cpFacts.release.chartVersion, to);
  const runDb = runsDbMigration(need, options.dbMigration);
  if (runDb && fleet.dbMigrationJob === undefined && !isAtTarget(cpFacts, to)) {
    problems.push(
      need === 'required'
        ? `the DB-migration Job is required from ${cpFacts.release.chartVersion} to ${to}: set dbMigrationJob in the fleet file to the Job manifest (or pass --db-migration never if it already ran)`
        : `--db-migration always needs dbMigrationJob in the fleet file`
    );
  }
  if (problems.length > 0) throw new PlanRefused(problems);

  notes.push(dbMigrationNote(need, runDb, options.dbMigration));
  if (chartManagesCrds(to)) {
    notes.push(
      options.forceCrdReapply
        ? `${to} updates its own CRDs; re-applying them anyway (--force-crd-reapply)`
        : `${to} updates its own CRDs: no CRD step and no approval gate`
    );
  }

  return {
    upgradeId: request.upgradeId,
    targetVersion: to,
    controlPlane: planControlPlane(request, cpFacts, runDb),
    workers: fleet.workers.map((ref, i) => planWorker(request, ref, facts.workers[i] as ClusterFacts)),
    notes,
  };
}

const isAtTarget = (f: ClusterFacts, to: string): boolean =>
  f.release.installed && f.release.chartVersion === to && f.release.status === 'deployed';

function skippedPlan(ref: ClusterRef, role: ClusterPlan['role'], f: ClusterFacts, to: string): ClusterPlan {
  return {
    cluster: ref,
    role,
    release: role === 'control-plane' ? 'skoala' : 'skoala-init',
    from: f.release.chartVersion,
    to,
    steps: [],
    skipped: 'already at target',
  };
}

function backupStep(release: Step & { kind: 'upgradeRelease' }, f: ClusterFacts): Step[] {
  // Nothing to back up on a fresh install; the revision pins the backup to the pre-upgrade values.
  return f.release.revision === undefined
    ? []
    : [{ kind: 'backupValues', release: release.release, revision: f.release.revision }];
}

function planControlPlane(request: UpgradeRequest, f: ClusterFacts, runDb: boolean): ClusterPlan {
  const { fleet, options } = request;
  const to = options.targetVersion;
  if (isAtTarget(f, to)) return skippedPlan(fleet.controlPlane, 'control-plane', f, to);
  const upgrade: Step & { kind: 'upgradeRelease' } = {
    kind: 'upgradeRelease',
    release: 'skoala',
    chart: 'skoala',
    repo: fleet.chartRepo,
    version: to,
    set: [...skoalaImageValues(to, options.uiVersion), ...registryValues(fleet.imageRegistry)],
    useBackup: f.release.revision !== undefined,
    valuesFiles: fleet.valuesFiles.skoala,
    fromRevision: f.release.revision,
  };
  const steps: Step[] = [
    ...(runDb && fleet.dbMigrationJob ? [{ kind: 'runDbMigrationJob', manifest: fleet.dbMigrationJob } as const] : []),
    ...backupStep(upgrade, f),
    { kind: 'addChartRepo', repo: fleet.chartRepo },
    { kind: 'updateChartRepo', repo: fleet.chartRepo },
    upgrade,
    { kind: 'verifyRelease', release: 'skoala', version: to },
  ];
  return {
    cluster: fleet.controlPlane,
    role: 'control-plane',
    release: 'skoala',
    from: f.release.chartVersion,
    to,
    steps,
  };
}

function planWorker(request: UpgradeRequest, ref: ClusterRef, f: ClusterFacts): ClusterPlan {
  const { fleet, options } = request;
  const to = options.targetVersion; // skoala-init always follows skoala: no skew, ever
  if (isAtTarget(f, to)) return skippedPlan(ref, 'worker', f, to);
  const upgrade: Step & { kind: 'upgradeRelease' } = {
    kind: 'upgradeRelease',
    release: 'skoala-init',
    chart: 'skoala-init',
    repo: fleet.chartRepo,
    version: to,
    set: [...skoalaInitImageValues(to), ...registryValues(fleet.imageRegistry)],
    useBackup: f.release.revision !== undefined,
    valuesFiles: fleet.valuesFiles.skoalaInit,
    fromRevision: f.release.revision,
  };
  const steps: Step[] = [
    ...backupStep(upgrade, f),
    { kind: 'addChartRepo', repo: fleet.chartRepo },
    { kind: 'updateChartRepo', repo: fleet.chartRepo },
    ...(deletesAdmissionJobs(to) ? [{ kind: 'deleteAdmissionJobs', jobs: ADMISSION_JOBS } as const] : []),
    upgrade,
  ];
  if (!chartManagesCrds(to) || options.forceCrdReapply) {
    const chartFiles = crdFilesInChart(to);
    steps.push(
      { kind: 'awaitCrdApproval', manifests: [...chartFiles, ...fleet.extraCrds] },
      {
        kind: 'reapplyCrds',
        chart: 'skoala-init',
        repo: fleet.chartRepo,
        version: to,
        chartFiles,
        extraFiles: fleet.extraCrds,
      }
    );
  }
  steps.push({ kind: 'verifyRelease', release: 'skoala-init', version: to });
  return { cluster: ref, role: 'worker', release: 'skoala-init', from: f.release.chartVersion, to, steps };
}

const registryValues = (registry: string | undefined): [string, string][] =>
  registry === undefined ? [] : [['global.imageRegistry', registry]];

function dbMigrationNote(need: ReturnType<typeof dbMigrationNeed>, runs: boolean, mode: string): string {
  const why = {
    required: 'required by the runbook for this version range',
    'only-if-release-notes-say-so': 'only needed if the release notes say so (none found that do)',
    'not-needed': 'not needed',
    'engine-migrates-itself': 'not needed: the engine migrates its own tables from 0.22.0',
  }[need];
  return `DB-migration Job: ${runs ? 'runs' : 'skipped'} (${why}${mode === 'auto' ? '' : `; --db-migration ${mode}`})`;
}
