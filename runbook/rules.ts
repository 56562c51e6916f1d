/**
 * The version-dependent rules of the skoala upgrade runbook, one function per row of
 * shared/runbook.md's table. A new engine version with a new rule is one function here and its tests.
 */
import { isAtLeast, isBelow, type Version } from './version';
import type { DbMigrationMode } from './types';

export const ADMISSION_JOBS = ['gateway-api-admission', 'gateway-api-admission-patch'];

const CONTOUR_CRDS = 'charts/contour-provisioner/crds/contour.yaml';
const GATEWAY_API_CRDS = 'charts/contour-provisioner-prereq/crds/gateway-api.yaml';
const HIGRESS_CRDS = 'charts/contour-provisioner/crds/higress.gen.yaml';

/** Gateway-API CRDs of 0.12+ use `x-kubernetes-validations`, which needs Kubernetes 1.25. */
export const MIN_WORKER_KUBE_VERSION = '1.25.0';

export type DbMigrationNeed = 'required' | 'only-if-release-notes-say-so' | 'not-needed' | 'engine-migrates-itself';

/** Whether the control plane needs the DB-migration Job, before any operator override. */
export function dbMigrationNeed(from: Version | undefined, to: Version): DbMigrationNeed {
  // sweet is deprecated in 0.22.0: from there on the engine migrates its own tables.
  if (isAtLeast(to, '0.22.0')) return 'engine-migrates-itself';
  if (from === undefined) return 'not-needed'; // a fresh install creates its schema
  if (isBelow(from, '0.19.0') && isAtLeast(to, '0.19.0')) return 'required';
  if (isAtLeast(from, '0.19.0')) return 'only-if-release-notes-say-so'; // none found that do
  return 'not-needed';
}

/** Applies `--db-migration auto|always|never` to the rule. */
export function runsDbMigration(need: DbMigrationNeed, mode: DbMigrationMode): boolean {
  if (mode === 'always') return true;
  if (mode === 'never') return false;
  return need === 'required';
}

export const imageTag = (version: Version): string => `v${version}`;

/** `--set` pairs for the control-plane release. */
export function skoalaImageValues(to: Version, uiVersion?: Version): [string, string][] {
  const set: [string, string][] = [
    ['hive.image.tag', imageTag(to)],
    ['sesame.image.tag', imageTag(to)],
  ];
  // ui ships on its own version line (ui v0.19.0 with engine 0.28.1): never derive it.
  if (uiVersion !== undefined) set.push(['ui.image.tag', imageTag(uiVersion)]);
  return set;
}

/** `--set` pairs for the worker release. */
export function skoalaInitImageValues(to: Version): [string, string][] {
  const set: [string, string][] = [
    ['nacos-operator.image.tag', imageTag(to)],
    ['skoala-agent.image.tag', imageTag(to)],
    ['sentinel-operator.image.tag', imageTag(to)],
  ];
  if (isAtLeast(to, '0.28.0')) set.push(['seata-operator.image.tag', imageTag(to)]);
  return set;
}

/**
 * The containers whose image tags the `--set` pairs above re-tag: after the upgrade each must run
 * `v<version>`. seata-operator only exists from 0.28.0, so a check skips containers a release lacks.
 */
export function retaggedContainers(release: 'skoala' | 'skoala-init'): string[] {
  return release === 'skoala'
    ? ['hive', 'sesame']
    : ['skoala-agent', 'nacos-operator', 'sentinel-operator', 'seata-operator'];
}

/** The gateway image repository moved after 0.24.2; its old admission Jobs block the upgrade (Job templates are immutable). */
export const deletesAdmissionJobs = (to: Version): boolean => isAtLeast(to, '0.26.2');

/** From 0.53.0 the chart updates its own CRDs. */
export const chartManagesCrds = (to: Version): boolean => isAtLeast(to, '0.53.0');

/** CRD manifests to re-apply, as paths inside the target skoala-init chart. */
export function crdFilesInChart(to: Version): string[] {
  const files = [CONTOUR_CRDS, GATEWAY_API_CRDS];
  // Higress 2.1.9 CRDs arrived with 0.52.1; a forced re-apply on later charts keeps them.
  if (isAtLeast(to, '0.52.1')) files.push(HIGRESS_CRDS);
  return files;
}

export const workerKubeVersionSupported = (kubeVersion: Version): boolean =>
  isAtLeast(kubeVersion, MIN_WORKER_KUBE_VERSION);

/**
 * What the rules say for one upgrade, decided once. The workflow records this (a local activity)
 * and plans from it, so an edit of this file never changes the plan of an upgrade already running.
 */
export interface RuleDecisions {
  dbMigrationNeed: DbMigrationNeed;
  runDbMigration: boolean;
  skoalaSet: [string, string][];
  skoalaInitSet: [string, string][];
  deletesAdmissionJobs: boolean;
  admissionJobs: string[];
  chartManagesCrds: boolean;
  crdFiles: string[];
  minWorkerKubeVersion: Version;
  /** Containers whose tag the health check verifies, per release. Absent in upgrades recorded before it existed. */
  healthContainers?: Record<'skoala' | 'skoala-init', string[]>;
}

/** `from` is the control plane's installed (last deployed) version: only the DB rule depends on it. */
export function decideRules(
  from: Version | undefined,
  to: Version,
  opts: { dbMigration: DbMigrationMode; uiVersion?: Version }
): RuleDecisions {
  const need = dbMigrationNeed(from, to);
  return {
    dbMigrationNeed: need,
    runDbMigration: runsDbMigration(need, opts.dbMigration),
    skoalaSet: skoalaImageValues(to, opts.uiVersion),
    skoalaInitSet: skoalaInitImageValues(to),
    deletesAdmissionJobs: deletesAdmissionJobs(to),
    admissionJobs: ADMISSION_JOBS,
    chartManagesCrds: chartManagesCrds(to),
    crdFiles: crdFilesInChart(to),
    minWorkerKubeVersion: MIN_WORKER_KUBE_VERSION,
    healthContainers: { skoala: retaggedContainers('skoala'), 'skoala-init': retaggedContainers('skoala-init') },
  };
}
