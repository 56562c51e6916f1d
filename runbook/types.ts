/**
 * The data that flows between the CLI, the workflows and the activities. Pure types only: this
 * module is imported by workflow code, so it must stay free of I/O.
 */
import type { Version } from './version';

export type { Version } from './version';

export type ReleaseName = 'skoala' | 'skoala-init';
export type ClusterRole = 'control-plane' | 'worker';

/** How to reach one cluster: a kubeconfig path and/or a context, plus the engine's namespace. */
export interface ClusterRef {
  name: string;
  kubeconfig?: string;
  context?: string;
  namespace: string;
  /** Per-site task queue: the cluster's child workflow and its activities run on workers polling it. */
  taskQueue?: string;
  /** Labels from the fleet file (`site`, `region`, `tier`, ...): what `--select` and ahead approvals match. */
  labels?: Record<string, string>;
}

/**
 * A secret named, never given: an environment variable of the worker process, or a file on the
 * worker host. Only the reference travels through workflow history; the activity that needs the
 * value reads it on the host that runs it.
 */
export type SecretRef = { env: string } | { file: string };

/** TLS towards a registry: the site's CA, a client certificate, or an explicit opt-out. Paths on the worker host. */
export interface RegistryTls {
  caFile?: string;
  certFile?: string;
  keyFile?: string;
  /** Opt-in only: `plan` prints it as a warning. */
  insecureSkipTlsVerify?: boolean;
}

/** Credentials for a registry, by reference (both or neither). */
export interface RegistryAuth {
  username?: SecretRef;
  password?: SecretRef;
}

/**
 * Where the charts come from: an HTTP(S) chart repository (added once with `helm repo add`, charts
 * used as `<name>/<chart>`) or an OCI registry (`oci://host/path`, `helm registry login`, charts
 * used as `oci://host/path/<chart>`).
 */
export interface ChartRepo extends RegistryTls, RegistryAuth {
  name: string;
  url: string;
}

/** An image registry the preflight image check talks to, when it is not the chart repository's host. */
export interface ImageRegistry extends RegistryTls, RegistryAuth {
  /** `host[:port]`, as image references name it. */
  host: string;
}

/** The fleet file, validated (see fleet.ts). Paths are absolute once loaded. */
export interface Fleet {
  name: string;
  chartRepo: ChartRepo;
  // The next three are optional because upgrades started before they existed carry fleets without them.
  /** Credentials and TLS for image registries (by host), for the preflight image check. */
  registries?: ImageRegistry[];
  /** Preflight checks that every image of the target charts exists (absent: true). */
  checkImages?: boolean;
  /** Where values backups live: files on the worker host (absent: 'dir'), or an owner-only Secret in the cluster. */
  backupStore?: 'dir' | 'cluster';
  controlPlane: ClusterRef;
  workers: ClusterRef[];
  /** Extra values files passed after the values backup (`-f`), per release. */
  valuesFiles: { skoala: string[]; skoalaInit: string[] };
  /** The DB-migration Job manifest the operator supplies (the runbook's job.yaml). */
  dbMigrationJob?: string;
  /** Extra CRD manifests re-applied on every worker after the chart's own. */
  extraCrds: string[];
  /** Air-gapped sites: sets `global.imageRegistry` on both releases. */
  imageRegistry?: string;
  /** When worker clusters may start (absent or empty: any time). A cluster covered by none starts any time. */
  windows?: MaintenanceWindow[];
  /** Who may approve CRD steps, how many must, and what happens when nobody does. */
  approvals?: ApprovalPolicy;
  /** A webhook told about gates, failures, waves and the end of the upgrade. */
  notify?: NotifyHook;
}

export type Weekday = 'Mon' | 'Tue' | 'Wed' | 'Thu' | 'Fri' | 'Sat' | 'Sun';

/**
 * A recurring maintenance window: on each of `days`, from `start` (local time in `timeZone`) for
 * `durationMs`. A window may run past midnight; it belongs to the day it starts on.
 */
export interface MaintenanceWindow {
  /** Which worker clusters it covers: names, a label selector, or (neither) every worker. */
  clusters?: string[];
  select?: string;
  days: Weekday[];
  /** `HH:MM`, 24-hour, local time. */
  start: string;
  durationMs: number;
  /** IANA time zone, e.g. `Europe/Berlin`. */
  timeZone: string;
}

/** N distinct approvers for the clusters a selector matches. */
export interface ApprovalRule {
  select: string;
  distinct: number;
}

export interface ApprovalPolicy {
  /** Only these people may approve or reject (absent: anyone who says who they are). */
  approvers?: string[];
  /** The person who started the upgrade may not approve it. */
  notStarter?: boolean;
  /** Clusters matching a rule's selector need that many distinct approvers (the highest matching rule wins). */
  rules?: ApprovalRule[];
  /** How long a gate may wait for a decision; then `onDeadline` (never an approval). */
  deadlineMs?: number;
  onDeadline?: 'reject' | 'fail';
  /** How often a waiting gate reminds (log and webhook); absent: the tuning's reminder, else 30 minutes. */
  remindEveryMs?: number;
}

/** The webhook: a URL and, optionally, one header whose value is read from the worker's environment. */
export interface NotifyHook {
  url: string;
  header?: { name: string; env: string };
}

/** What the webhook receives (JSON). Small on purpose: it names things; the details are in `status`. */
export interface NotificationEvent {
  event:
    | 'gate-opened'
    | 'gate-reminder'
    | 'gate-deadline'
    | 'cluster-failed'
    | 'cluster-rolled-back'
    | 'wave-ended'
    | 'upgrade-ended';
  upgradeId: string;
  fleet: string;
  version: Version;
  /** ISO time (workflow time) the event happened. */
  at: string;
  cluster?: string;
  /** One line: what happened, what to do. */
  message: string;
  /** The digest of what the gate asks to approve (gate events). */
  digest?: string;
  wave?: number;
  waves?: number;
  /** The upgrade's end phase (`upgrade-ended`). */
  phase?: Phase;
  counts?: Partial<Record<ClusterOutcome, number>>;
}

export type DbMigrationMode = 'auto' | 'always' | 'never';

export interface UpgradeOptions {
  targetVersion: Version;
  allowDowngrade: boolean;
  /** A cluster without its release gets a fresh install instead of being refused. */
  allowInstall?: boolean;
  dbMigration: DbMigrationMode;
  /** `ui.image.tag` is not the engine version: it is set only when the operator names one. */
  uiVersion?: Version;
  forceCrdReapply: boolean;
  maxParallel: number;
  /** How long a release's workloads may take to roll out after its upgrade (default 10 minutes). */
  healthTimeoutMs?: number;
  /** What a failed cluster gets: put back to its pre-upgrade revision (the CLI's default), or left as it failed (unset: stop). */
  onFailure?: FailurePolicy;
  /** Worker clusters that go first, all the way; the others start only when every canary upgraded. */
  canaries?: string[];
  /** Failed (or rolled-back) worker clusters tolerated before no new cluster starts; unset: no limit. */
  maxFailures?: number;
  /** Try again clusters that an earlier run of this upgrade rolled back (they are left alone otherwise). */
  retryFailed?: boolean;
  /** `--select`: the label selector that chose the worker clusters of this upgrade (the fleet holds only those). */
  select?: string;
  /** `--batches`: the size of each wave of worker clusters, in fleet order; each wave finishes before the next. */
  batches?: number[];
  /** `--soak`: a durable wait between two waves. */
  soakMs?: number;
  /** Who started the upgrade (`--by`, else the OS user): the approver policy's `notStarter` compares against it. */
  startedBy?: string;
}

export type FailurePolicy = 'stop' | 'rollback' | 'pause';

/** Knobs that tests and very large fleets turn; production uses the defaults. */
export interface Tuning {
  /** First retry interval of every activity, e.g. '2s'. */
  retryInitialInterval?: string;
  retryMaximumAttempts?: number;
  /** How often a waiting approval gate logs a reminder, e.g. '30 minutes'. */
  approvalReminder?: string;
  /** The parent continues-as-new after this many children finished, to keep its history small. */
  childrenPerRun?: number;
}

export interface UpgradeRequest {
  upgradeId: string;
  fleet: Fleet;
  options: UpgradeOptions;
  tuning?: Tuning;
}

/** What preflight read from one cluster (read-only). */
export interface ReleaseFacts {
  installed: boolean;
  /** Chart version, revision and status of the newest revision (whatever its status). */
  chartVersion?: Version;
  revision?: number;
  status?: string;
  /** helm's description of the newest revision: ours carry the upgrade ID. */
  description?: string;
  /** The newest revision as `helm history` prints it, for messages that must say why. */
  historyLine?: string;
  /** The newest revision was made by this upgrade (helm labels it, see activities/releases.ts). */
  ours?: boolean;
  /** When the newest revision was written (helm's clock, RFC 3339). */
  updated?: string;
  /** The last revision that was `deployed` (or superseded): what an upgrade starts from. */
  lastDeployed?: { revision: number; chartVersion: Version };
}

/** What the product wrote on a worker cluster when its CRD step completed. */
export interface CrdRecord {
  version: Version;
  upgradeId: string;
  at: string;
}

/** What the product wrote on a cluster when it rolled a failed upgrade back there. */
export interface RollbackRecord {
  upgradeId: string;
  /** The version that failed and was rolled back. */
  version: Version;
  at: string;
  cause: string;
}

export interface ClusterFacts {
  cluster: string;
  kubeVersion: Version;
  release: ReleaseFacts;
  /** Worker clusters only: the last CRD step this product completed there. */
  crds?: CrdRecord;
  /** The last rollback this product did there. */
  rolledBack?: RollbackRecord;
}

export interface FleetFacts {
  controlPlane: ClusterFacts;
  workers: ClusterFacts[];
  /** sha256 (hex) of each target chart archive, as preflight pulled it; absent in upgrades recorded before. */
  chartSha256?: Partial<Record<ReleaseName, string>>;
}

/** One step of a cluster's plan. The workflow maps each kind to one activity (or to the gate). */
export type Step =
  | { kind: 'runDbMigrationJob'; manifest: string }
  | {
      kind: 'backupValues';
      release: ReleaseName;
      revision: number;
      /** Kept as a Secret in the cluster itself (fleet `backupStore: cluster`); absent: a file on the worker host. */
      store?: 'cluster';
    }
  | { kind: 'addChartRepo'; repo: ChartRepo }
  | { kind: 'updateChartRepo'; repo: ChartRepo }
  | { kind: 'deleteAdmissionJobs'; jobs: string[] }
  | {
      kind: 'upgradeRelease';
      release: ReleaseName;
      chart: ReleaseName;
      repo: ChartRepo;
      version: Version;
      /** `--set` pairs, in order. Only image tags and registry: never secrets. */
      set: [string, string][];
      /** Whether the values backup is passed first with `-f`. */
      useBackup: boolean;
      /** Operator's extra values files, passed after the backup. */
      valuesFiles: string[];
      /** Revision before the upgrade (undefined for a fresh install): the retry logic compares against it. */
      fromRevision?: number;
      /** Fresh install (--allow-install): the release does not exist yet. */
      install?: boolean;
      /** sha256 (hex) of the chart archive preflight pulled: every worker host checks its copy against it. */
      chartSha256?: string;
    }
  | { kind: 'awaitCrdApproval'; manifests: string[] }
  | {
      kind: 'reapplyCrds';
      chart: ReleaseName;
      repo: ChartRepo;
      version: Version;
      /** Paths inside the pulled chart. */
      chartFiles: string[];
      /** Operator's extra manifests (absolute paths). */
      extraFiles: string[];
      /** --force-crd-reapply: a CRD whose installed bundle version is newer than the manifest's may go down. */
      allowDowngrade: boolean;
      /** As upgradeRelease's: the chart archive the CRDs come from. */
      chartSha256?: string;
    }
  | { kind: 'verifyRelease'; release: ReleaseName; version: Version }
  | {
      kind: 'verifyWorkloads';
      release: ReleaseName;
      version: Version;
      /** Containers that must run the target tag (the ones the runbook re-tags). */
      containers: string[];
      timeoutMs: number;
    };

/** A plan's step, or the rollback the workflow adds when a cluster fails. */
export type StepKind = Step['kind'] | 'rollbackRelease';

export interface ClusterPlan {
  cluster: ClusterRef;
  role: ClusterRole;
  release: ReleaseName;
  from?: Version;
  to: Version;
  steps: Step[];
  /** Set when nothing is to be done, e.g. 'already at target'. */
  skipped?: string;
  /** How a skipped cluster ends (default `already-at-target`). */
  skipOutcome?: 'already-at-target' | 'not-started';
}

export interface Plan {
  upgradeId: string;
  targetVersion: Version;
  controlPlane: ClusterPlan;
  workers: ClusterPlan[];
  /** Human notes on why rules applied (DB migration, CRD step...). */
  notes: string[];
}

export interface Approval {
  approved: boolean;
  /** Who decided; with several approvers, all of them (comma-separated), as `approvers` lists. */
  by: string;
  reason?: string;
  /** ISO timestamp (workflow time). */
  at: string;
  /** The digest of the CRD change approved. */
  digest?: string;
  /** When a policy asked for several distinct approvers: each of them. */
  approvers?: string[];
}

export type ClusterOutcome =
  | 'upgraded'
  | 'already-at-target'
  | 'rejected'
  | 'failed'
  | 'rolled-back'
  | 'cancelled'
  | 'not-started'
  /** Left out by an operator (`npm run skip`): never started, or failed and accepted as it is. */
  | 'skipped';

export interface ClusterResult {
  cluster: string;
  role: ClusterRole;
  outcome: ClusterOutcome;
  from?: Version;
  to: Version;
  approval?: Approval;
  error?: string;
  startedAt?: string;
  finishedAt?: string;
  /** Reference and checksum of the values backup; never the values. */
  backup?: BackupRef;
  /** How many CRDs were updated in place (their names are in the reapplyCrds result in history). */
  crdsReapplied?: number;
  /** The revision before this upgrade: what a rollback goes back to. */
  fromRevision?: number;
  /** The last step it reached (where it failed, when it failed): the final table's `step` column. */
  step?: StepKind;
}

export interface UpgradeResult {
  upgradeId: string;
  targetVersion: Version;
  controlPlane: ClusterResult;
  workers: ClusterResult[];
  counts: Record<ClusterOutcome, number>;
}

export interface BackupRef {
  /** Where the backup is: a path in the backup directory, or `<namespace>/<Secret name>` in the cluster; holds no values. */
  ref: string;
  /** 'cluster': a Secret in the cluster it came from; absent: a file on the worker host. */
  store?: 'cluster';
  sha256: string;
  reused: boolean;
}

export type ClusterState = 'pending' | 'running' | 'waiting-approval' | ClusterOutcome;

export interface ClusterStatus {
  cluster: string;
  role: ClusterRole;
  state: ClusterState;
  step?: StepKind;
  from?: Version;
  /** The revision before this upgrade: what `npm run rollback` goes back to. */
  fromRevision?: number;
  to: Version;
  error?: string;
  approval?: Approval;
  /** Waiting at its CRD gate: the digest to approve, since when, approvals so far. */
  gate?: { digest: string; since: string; needs?: number; approvedBy?: string[] };
  /** Not started yet, and why: a hold, a maintenance window. */
  waitingFor?: string;
  /** Running, with an activity retrying: its last failure (read by the CLI from the child's pending activities). */
  retrying?: { activity: string; attempt: number; error: string };
}

export type Phase = 'preflight' | 'control-plane' | 'workers' | 'done' | 'failed' | 'cancelled';

/** How the rollout is paced: waves, the soak between them, a pause. */
export interface RolloutStatus {
  /** 1-based wave now running (or next), of `waves`. */
  wave?: number;
  waves?: number;
  /** ISO time the soak before the next wave ends. */
  soakingUntil?: string;
  paused?: { by: string; reason?: string; at: string };
  /** Approvals given ahead of the gates: by selector, or `all`, naming the fleet CRD digest they approve. */
  aheadApprovals?: { selector: string; by: string; reason?: string; digest?: string }[];
  /** Clusters kept from starting, by selector. */
  holds?: { selector: string; by: string; reason?: string; at: string }[];
  /** The fleet's CRD change digest: what an approval given ahead names. */
  crdDigest?: string;
  /** That change in one line (chart, version, files, clusters). */
  crdChange?: string;
}

export interface UpgradeStatus {
  upgradeId: string;
  targetVersion: Version;
  phase: Phase;
  rollout?: RolloutStatus;
  controlPlane: ClusterStatus;
  workers: ClusterStatus[];
  pendingApprovals: string[];
  failures: { cluster: string; error: string }[];
}
