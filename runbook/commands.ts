/**
 * The exact helm and kubectl argument arrays, built in one place: the activities execute them and
 * `npm run plan` prints them, so what is shown is what runs.
 */
import {
  cachedChartPlaceholder,
  chartRef,
  chartTlsFlags,
  helmRepoUpdate,
  isOciRepo,
  repoSetupCommands,
  untarChart,
} from './chart-repo';
import type { ClusterRef, ReleaseName, Step } from './types';

export type Argv = string[];
// Chart sources have their own module; re-exported so `cmd.*` stays the one place for argv.
export {
  cachedChartName,
  chartRef,
  helmPullChart,
  helmPullChartArchive,
  helmRegistryLogin,
  helmRepoAdd,
  helmRepoUpdate,
  helmShowChart,
  helmTlsFlags,
  untarChart,
} from './chart-repo';

export const helmTarget = (c: ClusterRef): Argv => [
  ...(c.kubeconfig ? ['--kubeconfig', c.kubeconfig] : []),
  ...(c.context ? ['--kube-context', c.context] : []),
];

export const kubectlTarget = (c: ClusterRef): Argv => [
  ...(c.kubeconfig ? ['--kubeconfig', c.kubeconfig] : []),
  ...(c.context ? ['--context', c.context] : []),
];

export const kubectlServerVersion = (c: ClusterRef): Argv => [...kubectlTarget(c), 'version', '-o', 'json'];

/** `-a` lists pending and failed releases too: a stuck release must be seen, not missed. */
export const helmListRelease = (c: ClusterRef, release: ReleaseName): Argv => [
  ...helmTarget(c),
  'list',
  '-n',
  c.namespace,
  '-a',
  '--filter',
  `^${release}$`,
  '-o',
  'json',
];

/** The newest revisions, whatever their status: enough to find the last deployed one (we keep 10). */
export const helmHistory = (c: ClusterRef, release: ReleaseName): Argv => [
  ...helmTarget(c),
  'history',
  release,
  '-n',
  c.namespace,
  '--max',
  '20',
  '-o',
  'json',
];

/** Only the labels of the release Secrets (never their data, which holds the values). */
export const kubectlReleaseLabels = (c: ClusterRef, release: ReleaseName): Argv => [
  ...kubectlTarget(c),
  'get',
  'secrets',
  '-n',
  c.namespace,
  '-l',
  `owner=helm,name=${release}`,
  '-o',
  'jsonpath={range .items[*]}{.metadata.labels}{"\\n"}{end}',
];

/** Where the product records a completed CRD step on a worker cluster, so a later run can see it. */
export const CRD_RECORD = 'skoala-upgrade-crds';

/** Where a rollback by an upgrade is recorded, so a rerun of that upgrade leaves the cluster alone. */
export const ROLLBACK_RECORD = 'skoala-upgrade-rollback';

/** One object by kind and name, as JSON; prints nothing (exit 0) when it does not exist. */
export const kubectlGetIfExists = (c: ClusterRef, kind: string, name: string): Argv => [
  ...kubectlTarget(c),
  'get',
  kind,
  name,
  '-n',
  c.namespace,
  '--ignore-not-found',
  '-o',
  'json',
];

/** `kubectl create -f -`: the object comes on stdin (a Secret's data never touches argv or disk). */
export const kubectlCreateFromStdin = (c: ClusterRef): Argv => [
  ...kubectlTarget(c),
  'create',
  '-n',
  c.namespace,
  '-f',
  '-',
  '-o',
  'name',
];

export const kubectlGetConfigMap = (c: ClusterRef, name: string): Argv => kubectlGetIfExists(c, 'configmap', name);

export const kubectlGetCrdRecord = (c: ClusterRef): Argv => kubectlGetConfigMap(c, CRD_RECORD);

export const kubectlApplyFile = (c: ClusterRef, file: string): Argv => [
  ...kubectlTarget(c),
  'apply',
  '--server-side',
  '--field-manager',
  'skoala-upgrade',
  '--force-conflicts',
  '-n',
  c.namespace,
  '-f',
  file,
  '-o',
  'name',
];

/** Pinned to the pre-upgrade revision, so a late or repeated backup still captures the old values. */
export const helmGetValues = (c: ClusterRef, release: ReleaseName, revision: number): Argv =>
  getValuesOf(c, release, revision, ['-o', 'yaml']);

const getValuesOf = (c: ClusterRef, release: ReleaseName, revision: number | undefined, output: string[]): Argv => [
  ...helmTarget(c),
  'get',
  'values',
  release,
  '-n',
  c.namespace,
  ...(revision === undefined ? [] : ['--revision', String(revision)]),
  ...output,
];

export const kubectlApplyJob = (c: ClusterRef, manifest: string): Argv => [
  ...kubectlTarget(c),
  'apply',
  '-n',
  c.namespace,
  '-f',
  manifest,
  '-o',
  'name',
];

export const kubectlDeleteJobs = (c: ClusterRef, jobs: string[]): Argv => [
  ...kubectlTarget(c),
  'delete',
  'jobs',
  '-n',
  c.namespace,
  ...jobs,
  '--ignore-not-found',
];

export const kubectlGetJobJson = (c: ClusterRef, name: string): Argv => kubectlGetIfExists(c, 'job', name);

/**
 * Watches the Job until it completes or `seconds` pass (exit 1 then): what the runbook's operator
 * does instead of polling. Failure is a condition this cannot wait for at the same time; the read
 * after it tells.
 */
export const kubectlWaitJobComplete = (c: ClusterRef, name: string, seconds: number): Argv => [
  ...kubectlTarget(c),
  'wait',
  '-n',
  c.namespace,
  '--for=condition=complete',
  `job/${name}`,
  `--timeout=${seconds}s`,
];

/** The plain delete, as an operator would type it. */
export const kubectlDeleteJob = (c: ClusterRef, name: string): Argv => [
  ...kubectlTarget(c),
  '-n',
  c.namespace,
  'delete',
  'job',
  name,
];

/**
 * Background propagation: the Job object goes at once and the garbage collector removes its Pods
 * later. Foreground would keep the Job (finalizer) until its Pods are gone, i.e. forever where no
 * garbage collector runs. No --wait: the activity polls for the Job to be gone, heartbeating.
 */
export const kubectlDeleteJobBackground = (c: ClusterRef, name: string): Argv => [
  ...kubectlDeleteJob(c, name),
  '--cascade=background',
  '--wait=false',
  '--ignore-not-found',
];

/** How the product marks and bounds a helm upgrade it runs. */
export interface HelmRunMarks {
  /** `helm history` shows it for the revision: who made it. */
  description: string;
  /** Release labels (`--labels`): how a pending revision is recognised as ours. */
  labels: Record<string, string>;
  /** helm's own `--timeout`, e.g. '10m0s'. */
  timeout: string;
}

/**
 * The chart: the archive `chartFile` on the worker host (pulled once per host and checked against
 * the plan's digest; nothing to fetch, so no version or TLS flags), or else as the runbook names it
 * (`<repo>/<chart> --version V`, or `oci://.../<chart>`). Values: the backup first, then the
 * operator's files, then the image tags.
 */
export function helmUpgrade(
  c: ClusterRef,
  step: Step & { kind: 'upgradeRelease' },
  backupFile?: string,
  marks?: HelmRunMarks,
  chartFile?: string
): Argv {
  return [
    ...helmTarget(c),
    'upgrade',
    '--install',
    '--create-namespace',
    '-n',
    c.namespace,
    step.release,
    ...(chartFile
      ? [chartFile]
      : [chartRef(step.repo, step.chart), '--version', step.version, ...chartTlsFlags(step.repo)]),
    ...(backupFile ? ['-f', backupFile] : []),
    ...step.valuesFiles.flatMap((f) => ['-f', f]),
    ...step.set.flatMap(([k, v]) => ['--set', `${k}=${v}`]),
    // Release Secrets over 1 MiB are refused by the API server: keep history short.
    '--history-max',
    '10',
    ...(marks
      ? [
          '--description',
          marks.description,
          '--labels',
          Object.entries(marks.labels)
            .map(([k, v]) => `${k}=${v}`)
            .join(','),
          '--timeout',
          marks.timeout,
        ]
      : []),
  ];
}

/** The description helm records for every revision this upgrade makes. */
export const upgradeDescription = (upgradeId: string): string => `skoala-upgrade ${upgradeId}`;

export const helmRollback = (c: ClusterRef, release: ReleaseName, revision: number, timeout = '5m0s'): Argv => [
  ...helmTarget(c),
  'rollback',
  release,
  String(revision),
  '-n',
  c.namespace,
  '--timeout',
  timeout,
];

/** The field manager of everything the product applies: its ownership shows in managedFields. */
export const FIELD_MANAGER = 'skoala-upgrade';

export interface CrdApplyOptions {
  /** `--dry-run=server`: the API server runs the whole apply (validation, conflicts) and stores nothing. */
  dryRun?: boolean;
  /**
   * Default true: the real apply, run after approval, takes over fields other managers own. The
   * preview's dry run passes false so that the API server names those managers instead.
   */
  forceConflicts?: boolean;
  /** Keep managedFields in the printed object (kubectl drops them by default). */
  showManagedFields?: boolean;
}

/**
 * Server-side apply updates a CRD in place: no delete (which would delete every custom resource), no 256 KiB annotation.
 * Several files are one kubectl run: each object applied on its own, in file order.
 * A boolean third argument is the older form of `{ dryRun }`.
 */
export const kubectlApplyCrd = (
  c: ClusterRef,
  files: string | string[],
  opts: boolean | CrdApplyOptions = {}
): Argv => {
  const {
    dryRun = false,
    forceConflicts = true,
    showManagedFields = false,
  } = typeof opts === 'boolean' ? { dryRun: opts } : opts;
  return [
    ...kubectlTarget(c),
    'apply',
    '--server-side',
    ...(forceConflicts ? ['--force-conflicts'] : []),
    '--field-manager',
    FIELD_MANAGER,
    ...(dryRun ? ['--dry-run=server'] : []),
    ...(showManagedFields ? ['--show-managed-fields'] : []),
    ...(typeof files === 'string' ? [files] : files).flatMap((f) => ['-f', f]),
    '-o',
    'json',
  ];
};

/** Installed CRDs by name: one object for one name, a List for several; absent ones print nothing (exit 0). */
export const kubectlGetCrd = (
  c: ClusterRef,
  names: string | string[],
  opts: { showManagedFields?: boolean } = {}
): Argv => [
  ...kubectlTarget(c),
  'get',
  'crd',
  ...(typeof names === 'string' ? [names] : names),
  '-o',
  'json',
  '--ignore-not-found',
  ...(opts.showManagedFields ? ['--show-managed-fields'] : []),
];

/**
 * The custom resources of these CRDs in every namespace, one line each (`<kind>.<group>/<name>`,
 * kind in lower case): how many a CRD delete would destroy.
 */
export const kubectlListCustomResources = (c: ClusterRef, resources: string[]): Argv => [
  ...kubectlTarget(c),
  'get',
  resources.join(','),
  '-A',
  '-o',
  'name',
];

/** The manifest of the release's current revision (or of `revision`): which workloads it owns. */
export const helmGetManifest = (c: ClusterRef, release: ReleaseName, revision?: number): Argv => [
  ...helmTarget(c),
  'get',
  'manifest',
  release,
  '-n',
  c.namespace,
  ...(revision === undefined ? [] : ['--revision', String(revision)]),
];

/** The effective values of a revision (default: the current one; `-a`: chart defaults merged with the user's), as JSON. */
export const helmGetComputedValues = (c: ClusterRef, release: ReleaseName, revision?: number): Argv =>
  getValuesOf(c, release, revision, ['-a', '-o', 'json']);

/**
 * The upgrade exactly as `helmUpgrade` builds it, run by the API server as a dry run: helm prints
 * the release it would store (its `manifest`, `config` and chart) and stores nothing. The run marks
 * (description, owner label, timeout) are left out: they change no rendered object.
 */
export const helmUpgradeDryRun = (
  c: ClusterRef,
  step: Step & { kind: 'upgradeRelease' },
  backupFile?: string,
  chartFile?: string
): Argv => [...helmUpgrade(c, step, backupFile, undefined, chartFile), '--dry-run=server', '-o', 'json'];

/**
 * Several workloads of one namespace in one call (`deployment.apps/hive`, ...): a List, or a single
 * object for one name. Absent ones are left out (exit 0), so one deleted workload hides no others.
 */
export const kubectlGetWorkloads = (c: ClusterRef, refs: string[], namespace = c.namespace): Argv => [
  ...kubectlTarget(c),
  'get',
  ...refs,
  '-n',
  namespace,
  '--ignore-not-found',
  '-o',
  'json',
];

/** A workload's pods by its label selector (`app=hive,tier=x`): why they are not ready. */
export const kubectlGetPods = (c: ClusterRef, selector: string, namespace = c.namespace): Argv => [
  ...kubectlTarget(c),
  'get',
  'pods',
  '-n',
  namespace,
  '-l',
  selector,
  '-o',
  'json',
];

/**
 * The commands of one step, for printing. Placeholders name what is only known when it runs. The
 * chart archive is pulled once per worker host (not per cluster) into its chart cache.
 */
export function commandsOfStep(
  c: ClusterRef,
  step: Step
): { tool: 'helm' | 'kubectl' | 'tar' | 'gate' | 'check'; argv: Argv }[] {
  switch (step.kind) {
    case 'runDbMigrationJob':
      return [{ tool: 'kubectl', argv: kubectlApplyJob(c, step.manifest) }];
    case 'backupValues':
      return [
        { tool: 'helm', argv: helmGetValues(c, step.release, step.revision) },
        ...(step.store === 'cluster'
          ? [{ tool: 'kubectl' as const, argv: [...kubectlCreateFromStdin(c), '<Secret with the values, on stdin>'] }]
          : []),
      ];
    case 'addChartRepo':
      return repoSetupCommands(step.repo).map((argv) => ({ tool: 'helm' as const, argv }));
    case 'updateChartRepo':
      return isOciRepo(step.repo) ? [] : [{ tool: 'helm', argv: helmRepoUpdate(step.repo) }];
    case 'deleteAdmissionJobs':
      return [{ tool: 'kubectl', argv: kubectlDeleteJobs(c, step.jobs) }];
    case 'upgradeRelease':
      return [
        {
          tool: 'helm',
          argv: helmUpgrade(
            c,
            step,
            step.useBackup ? `<values backup of ${step.release}>` : undefined,
            {
              description: '<upgrade ID>',
              labels: { 'skoala-upgrade.io/revision': '<owner mark>' },
              timeout: '600s',
            },
            cachedChartPlaceholder(step)
          ),
        },
      ];
    case 'awaitCrdApproval':
      return [{ tool: 'gate', argv: ['wait for approval of the CRD re-apply'] }];
    case 'reapplyCrds':
      return [
        { tool: 'tar', argv: untarChart(cachedChartPlaceholder(step), '<tmp>') },
        {
          tool: 'kubectl',
          argv: kubectlApplyCrd(c, [...step.chartFiles.map((f) => `<tmp>/${step.chart}/${f}`), ...step.extraFiles]),
        },
        { tool: 'kubectl', argv: kubectlApplyFile(c, `<ConfigMap ${CRD_RECORD}: CRD step done at ${step.version}>`) },
      ];
    case 'verifyRelease':
      return [{ tool: 'helm', argv: helmHistory(c, step.release) }];
    case 'verifyWorkloads':
      return [
        { tool: 'helm', argv: helmGetManifest(c, step.release) },
        {
          tool: 'check',
          argv: [
            `wait until every Deployment/StatefulSet/DaemonSet of ${step.release} rolled out (${step.containers.join(', ')} at v${step.version}), within ${Math.round(step.timeoutMs / 1000)} s`,
          ],
        },
      ];
  }
}
