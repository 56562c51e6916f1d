/**
 * planUpgrade: a pure function from (request, facts read by preflight, rule decisions) to the
 * ordered steps of every cluster. `npm run plan` prints it; the workflow executes exactly this
 * object, planned from the facts and rule decisions recorded in its history.
 */
import { chartRepoNotes } from './chart-repo';
import { decideRules, type RuleDecisions } from './rules';
import type {
  ClusterFacts,
  ClusterPlan,
  ClusterRef,
  Fleet,
  FleetFacts,
  Plan,
  ReleaseName,
  Step,
  UpgradeRequest,
} from './types';
import { compareVersions, isBelow } from './version';

/** The upgrade must not start: every problem found, each naming what to fix. */
export class PlanRefused extends Error {
  constructor(readonly problems: string[]) {
    super(problems.join('; '));
    this.name = 'PlanRefused';
  }
}

type UpgradeStep = Step & { kind: 'upgradeRelease' };

/** The version the cluster runs: the last deployed revision's, not a failed or pending one's. */
export const installedVersion = (f: ClusterFacts): string | undefined =>
  f.release.lastDeployed?.chartVersion ?? (f.release.status === 'deployed' ? f.release.chartVersion : undefined);

/** The rules for this request, from the control plane's installed version. */
export const rulesFor = (request: UpgradeRequest, facts: FleetFacts): RuleDecisions =>
  decideRules(installedVersion(facts.controlPlane), request.options.targetVersion, request.options);

export function planUpgrade(
  request: UpgradeRequest,
  facts: FleetFacts,
  rules: RuleDecisions = rulesFor(request, facts)
): Plan {
  const { fleet, options } = request;
  const to = options.targetVersion;
  const problems: string[] = [];
  const notes: string[] = [];

  const all = [
    { ref: fleet.controlPlane, facts: facts.controlPlane, release: 'skoala' },
    ...fleet.workers.map((ref, i) => ({ ref, facts: facts.workers[i], release: 'skoala-init' })),
  ];
  for (const { ref, facts: f, release } of all) {
    if (!f || f.cluster !== ref.name) {
      problems.push(`no preflight facts for cluster ${ref.name}`);
      continue;
    }
    problems.push(...releaseProblems(ref.name, release, f, request));
  }
  for (const [i, ref] of fleet.workers.entries()) {
    const f = facts.workers[i];
    if (f && isBelow(f.kubeVersion, rules.minWorkerKubeVersion)) {
      problems.push(
        `${ref.name}: Kubernetes ${f.kubeVersion} is below ${rules.minWorkerKubeVersion}, which the Gateway-API CRDs need`
      );
    }
  }

  const cpFacts = facts.controlPlane;
  const runDb = rules.runDbMigration;
  if (runDb && fleet.dbMigrationJob === undefined && !isAtTarget(cpFacts, to) && cpFacts.release.installed) {
    problems.push(
      rules.dbMigrationNeed === 'required'
        ? `the DB-migration Job is required from ${installedVersion(cpFacts)} to ${to}: set dbMigrationJob in the fleet file to the Job manifest (or pass --db-migration never if it already ran)`
        : `--db-migration always needs dbMigrationJob in the fleet file`
    );
  }
  if (problems.length > 0) throw new PlanRefused(problems);

  notes.push(...chartRepoNotes(fleet.chartRepo));
  const pins = Object.entries(facts.chartSha256 ?? {});
  if (pins.length > 0)
    notes.push(
      `chart archives pinned by sha256 (${pins.map(([chart, sha]) => `${chart} ${sha.slice(0, 12)}`).join(', ')}): each worker host pulls each once and refuses a copy that differs`
    );
  if (fleet.checkImages === false)
    notes.push('WARNING: checkImages is false: images are not checked in their registries before anything changes');
  notes.push(dbMigrationNote(rules, options.dbMigration, cpFacts.release.installed));
  const installs = all.filter(({ facts: f }) => f && !f.release.installed).map(({ ref }) => ref.name);
  if (installs.length > 0) {
    notes.push(
      `fresh install on ${someOf(installs)} (--allow-install): no values backup; a fresh skoala creates its own database schema, so the DB-migration Job is not run for it`
    );
  }
  if (rules.chartManagesCrds) {
    notes.push(
      options.forceCrdReapply
        ? `${to} updates its own CRDs; re-applying them anyway (--force-crd-reapply)`
        : `${to} updates its own CRDs: no CRD step and no approval gate`
    );
  }
  notes.push(failurePolicyNote(request, rules, cpFacts));
  const workers = fleet.workers.map((ref, i) =>
    planWorker(request, rules, facts, ref, facts.workers[i] as ClusterFacts)
  );
  const finishing = workers.filter((w) => !w.skipped && w.steps[0]?.kind === 'awaitCrdApproval');
  if (finishing.length > 0) {
    notes.push(
      options.forceCrdReapply
        ? `already at ${to}; CRDs re-applied anyway (--force-crd-reapply), after the gate: ${someOf(finishing.map((w) => w.cluster.name))}`
        : `already at ${to} but their CRD step is not recorded as done, so only the gate and the CRD re-apply run: ${someOf(finishing.map((w) => w.cluster.name))}`
    );
  }

  return {
    upgradeId: request.upgradeId,
    targetVersion: to,
    controlPlane: planControlPlane(request, rules, facts),
    workers,
    notes,
  };
}

/** A release we must not touch, or may not install without being asked. */
function releaseProblems(cluster: string, release: string, f: ClusterFacts, request: UpgradeRequest): string[] {
  const { options } = request;
  const r = f.release;
  // The control plane must not be retried silently: the workers follow it, and it failed before.
  if (release === 'skoala' && rolledBackHere(f, request) && !isAtTarget(f, options.targetVersion))
    return [
      `${cluster}: an earlier run of this upgrade rolled ${release} back (${f.rolledBack?.cause}); pass --retry-failed to try it again`,
    ];
  if (!r.installed) {
    return options.allowInstall
      ? []
      : [`${cluster}: ${release} is not installed; pass --allow-install to install it instead of upgrading`];
  }
  const problems: string[] = [];
  // A pending or failed revision that another helm (or person) left: only they know whether it is safe.
  if ((r.status?.startsWith('pending-') || r.status === 'failed') && !r.ours) {
    problems.push(
      `${cluster}: ${release} is ${r.status} and not by this upgrade (helm history: ${r.historyLine ?? `revision ${r.revision}`}); finish or roll it back first`
    );
  }
  const from = installedVersion(f);
  if (from !== undefined && compareVersions(options.targetVersion, from) < 0 && !options.allowDowngrade) {
    problems.push(
      `${cluster}: ${options.targetVersion} is older than the installed ${from}; pass --allow-downgrade to go down`
    );
  }
  return problems;
}

/** This same upgrade (fleet and version) rolled this cluster back in an earlier run. */
const rolledBackHere = (f: ClusterFacts, request: UpgradeRequest): boolean =>
  !request.options.retryFailed &&
  f.rolledBack?.upgradeId === request.upgradeId &&
  f.rolledBack.version === request.options.targetVersion;

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

function upgradeStepFor(
  request: UpgradeRequest,
  facts: FleetFacts,
  f: ClusterFacts,
  release: 'skoala' | 'skoala-init',
  set: [string, string][]
): UpgradeStep {
  const { fleet, options } = request;
  // Upgrade from the last deployed revision: a failed or pending one on top of it is not a base.
  const fromRevision = f.release.installed ? (f.release.lastDeployed?.revision ?? f.release.revision) : undefined;
  return {
    kind: 'upgradeRelease',
    release,
    chart: release,
    repo: fleet.chartRepo,
    version: options.targetVersion,
    set: [...set, ...registryValues(fleet.imageRegistry)],
    useBackup: fromRevision !== undefined,
    valuesFiles: release === 'skoala' ? fleet.valuesFiles.skoala : fleet.valuesFiles.skoalaInit,
    fromRevision,
    ...(f.release.installed ? {} : { install: true }),
    ...pinned(facts, release),
  };
}

/** The chart archive's digest when preflight recorded one (upgrades recorded before it did not). */
function pinned(facts: FleetFacts, chart: ReleaseName): { chartSha256?: string } {
  const sha = facts.chartSha256?.[chart];
  return sha ? { chartSha256: sha } : {};
}

/** The health check after an upgrade, when the recorded rules include it (upgrades recorded before it did not). */
function healthStep(request: UpgradeRequest, rules: RuleDecisions, release: 'skoala' | 'skoala-init'): Step[] {
  const containers = rules.healthContainers?.[release];
  if (!containers) return [];
  const timeoutMs = request.options.healthTimeoutMs ?? DEFAULT_HEALTH_TIMEOUT_MS;
  return [{ kind: 'verifyWorkloads', release, version: request.options.targetVersion, containers, timeoutMs }];
}

export const DEFAULT_HEALTH_TIMEOUT_MS = 10 * 60_000;

function backupStep(upgrade: UpgradeStep, store: Fleet['backupStore']): Step[] {
  // Nothing to back up on a fresh install; the revision pins the backup to the pre-upgrade values.
  return upgrade.fromRevision === undefined
    ? []
    : [
        {
          kind: 'backupValues',
          release: upgrade.release,
          revision: upgrade.fromRevision,
          ...(store === 'cluster' ? { store: 'cluster' as const } : {}),
        },
      ];
}

function planControlPlane(request: UpgradeRequest, rules: RuleDecisions, facts: FleetFacts): ClusterPlan {
  const { fleet, options } = request;
  const f = facts.controlPlane;
  const to = options.targetVersion;
  if (isAtTarget(f, to)) return skippedPlan(fleet.controlPlane, 'control-plane', f, to);
  const upgrade = upgradeStepFor(request, facts, f, 'skoala', rules.skoalaSet);
  const runDb = rules.runDbMigration && fleet.dbMigrationJob !== undefined && f.release.installed;
  const steps: Step[] = [
    ...(runDb ? [{ kind: 'runDbMigrationJob', manifest: fleet.dbMigrationJob as string } as const] : []),
    ...backupStep(upgrade, fleet.backupStore),
    { kind: 'addChartRepo', repo: fleet.chartRepo },
    { kind: 'updateChartRepo', repo: fleet.chartRepo },
    upgrade,
    ...healthStep(request, rules, 'skoala'),
    { kind: 'verifyRelease', release: 'skoala', version: to },
  ];
  return {
    cluster: fleet.controlPlane,
    role: 'control-plane',
    release: 'skoala',
    from: installedVersion(f),
    to,
    steps,
  };
}

function crdSteps(request: UpgradeRequest, rules: RuleDecisions, facts: FleetFacts): Step[] {
  const { fleet, options } = request;
  return [
    { kind: 'awaitCrdApproval', manifests: [...rules.crdFiles, ...fleet.extraCrds] },
    {
      kind: 'reapplyCrds',
      chart: 'skoala-init',
      repo: fleet.chartRepo,
      version: options.targetVersion,
      chartFiles: rules.crdFiles,
      extraFiles: fleet.extraCrds,
      allowDowngrade: options.forceCrdReapply,
      ...pinned(facts, 'skoala-init'),
    },
  ];
}

function planWorker(
  request: UpgradeRequest,
  rules: RuleDecisions,
  facts: FleetFacts,
  ref: ClusterRef,
  f: ClusterFacts
): ClusterPlan {
  const { options } = request;
  const to = options.targetVersion; // skoala-init always follows skoala: no skew, ever
  const wantsCrdStep = !rules.chartManagesCrds || options.forceCrdReapply;
  if (isAtTarget(f, to)) {
    // A rerun finishes what an earlier run left: a CRD step rejected, failed or never reached.
    const crdsDone = f.crds?.version === to && !options.forceCrdReapply;
    if (!wantsCrdStep || crdsDone) return skippedPlan(ref, 'worker', f, to);
    return {
      cluster: ref,
      role: 'worker',
      release: 'skoala-init',
      from: f.release.chartVersion,
      to,
      steps: [...crdSteps(request, rules, facts), { kind: 'verifyRelease', release: 'skoala-init', version: to }],
    };
  }
  if (rolledBackHere(f, request))
    return {
      ...skippedPlan(ref, 'worker', f, to),
      // No cause here: the memo groups clusters by this text and must stay small on large fleets.
      skipped: 'not started: an earlier run of this upgrade rolled it back; pass --retry-failed to try it again',
      skipOutcome: 'not-started',
    };
  const upgrade = upgradeStepFor(request, facts, f, 'skoala-init', rules.skoalaInitSet);
  const steps: Step[] = [
    ...backupStep(upgrade, request.fleet.backupStore),
    { kind: 'addChartRepo', repo: request.fleet.chartRepo },
    { kind: 'updateChartRepo', repo: request.fleet.chartRepo },
    ...(rules.deletesAdmissionJobs && f.release.installed
      ? [{ kind: 'deleteAdmissionJobs', jobs: rules.admissionJobs } as const]
      : []),
    upgrade,
    ...healthStep(request, rules, 'skoala-init'),
    ...(wantsCrdStep ? crdSteps(request, rules, facts) : []),
    { kind: 'verifyRelease', release: 'skoala-init', version: to },
  ];
  return { cluster: ref, role: 'worker', release: 'skoala-init', from: installedVersion(f), to, steps };
}

/** A list of cluster names for a note: the memo that shows notes must stay small on 1,000 clusters. */
const someOf = (names: string[]): string =>
  names.length <= 10 ? names.join(', ') : `${names.slice(0, 10).join(', ')} and ${names.length - 10} more`;

const registryValues = (registry: string | undefined): [string, string][] =>
  registry === undefined ? [] : [['global.imageRegistry', registry]];

function failurePolicyNote(request: UpgradeRequest, rules: RuleDecisions, cp: ClusterFacts): string {
  const { options } = request;
  const health = rules.healthContainers
    ? `each release's workloads must roll out within ${Math.round((options.healthTimeoutMs ?? DEFAULT_HEALTH_TIMEOUT_MS) / 1000)} s, re-tagged containers at v${options.targetVersion}`
    : 'no workload health check';
  const budget =
    options.maxFailures === undefined
      ? 'no failure budget'
      : `at most ${options.maxFailures} failed worker cluster(s), then no new cluster starts`;
  const canaries = options.canaries?.length ? `; canaries first: ${someOf(options.canaries)}` : '';
  if (options.onFailure === 'pause')
    return `On failure: pause (a failed cluster is left as it failed, no new cluster starts, and the upgrade waits until each failed cluster is retried or skipped, or someone resumes); ${health}; ${budget}${canaries}`;
  if (options.onFailure !== 'rollback')
    return `On failure: stop (a failed cluster is left as it failed); ${health}; ${budget}${canaries}`;
  const db =
    rules.runDbMigration &&
    cp.release.installed &&
    !isAtTarget(cp, options.targetVersion) &&
    request.fleet.dbMigrationJob !== undefined
      ? '; the control plane runs a DB-migration Job, so it is NOT rolled back automatically (the schema moved): it stops with the manual steps'
      : '';
  return `On failure: rollback (helm rollback to the pre-upgrade revision, then health-checked again; CRDs are not rolled back: they are updated in place, stay compatible with the older release, and deleting them would delete every custom resource)${db}; ${health}; ${budget}${canaries}`;
}

function dbMigrationNote(rules: RuleDecisions, mode: string, installed: boolean): string {
  if (!installed) return 'DB-migration Job: skipped (a fresh skoala creates its own schema)';
  const why = {
    required: 'required by the runbook for this version range',
    'only-if-release-notes-say-so': 'only needed if the release notes say so (none found that do)',
    'not-needed': 'not needed',
    'engine-migrates-itself': 'not needed: the engine migrates its own tables from 0.22.0',
  }[rules.dbMigrationNeed];
  return `DB-migration Job: ${rules.runDbMigration ? 'runs' : 'skipped'} (${why}${mode === 'auto' ? '' : `; --db-migration ${mode}`})`;
}
