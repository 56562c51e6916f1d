/**
 * Every side effect of the upgrade, as Temporal activities built by a factory: the worker entry
 * point passes the real dependencies, tests pass their own.
 */
import { ApplicationFailure } from '@temporalio/common';
import { access, constants } from 'node:fs/promises';
import path from 'node:path';
import * as cmd from '../runbook/commands';
import { decideRules, type RuleDecisions } from '../runbook/rules';
import { parseKubeVersion } from '../runbook/version';
import type {
  BackupRef,
  ChartRepo,
  ClusterFacts,
  ClusterRef,
  DbMigrationMode,
  ReleaseName,
  Version,
} from '../runbook/types';
import { BackupStore } from './backup-store';
import { chartRepoSession } from './chart-repo';
import { ClusterBackupStore } from './cluster-backup-store';
import { readRollbackRecord } from './cluster-records';
import { crdActivities, readCrdRecord } from './crds';
import { healthActivities } from './health';
import { manifestDiffActivities } from './manifest-diff';
import { imageActivities } from './images';
import { notifyActivities } from './notify';
import { releaseActivities } from './helm-release';
import { runDbMigrationJob, type DbMigrationJobInput, type DbMigrationJobResult } from './db-migration-job';
import { createRunner, type CommandRunner } from './exec';
import { defaultHolder, releaseLeases } from './release-lease';

export interface ActivityDeps {
  helm: string;
  kubectl: string;
  /** Environment for helm/kubectl (HELM_*_HOME, proxies). */
  env?: NodeJS.ProcessEnv;
  /** Where values backups are kept (owner-only). */
  backupDir: string;
  /** Scratch space, and this host's chart cache (`charts/`). */
  workDir: string;
  /** Replaces the real process runner: unit tests check the exact argument arrays with it. */
  run?: CommandRunner;
  jobPollMs?: number;
  /** Time between two reads of a release's workloads in verifyWorkloads (default 2 s). */
  healthPollMs?: number;
  /** helm's own `--timeout` for upgrade and rollback (default 10 minutes). */
  helmTimeoutMs?: number;
  /** How old a pending revision of ours with no lease must be before it is rolled back (default helm timeout + 2 minutes). */
  pendingGraceMs?: number;
  /**
   * Hold a Lease per release while helm changes it (default true): a pending revision of ours whose
   * lease lapsed is rolled back at once. Unit tests of other paths turn it off to keep their argv lists.
   */
  releaseLeases?: boolean;
}

/** A file the fleet names, checked on the worker host that will use it. */
export interface NeededFile {
  field: string;
  path: string;
}

/** What checkChartVersion recorded: `sha256` of the chart archive is absent in histories recorded before it was. */
export interface ChartVersionCheck {
  version: Version;
  sha256?: string;
}

export function createActivities(deps: ActivityDeps) {
  const run = deps.run ?? createRunner({ helm: deps.helm, kubectl: deps.kubectl, env: deps.env });
  const store = new BackupStore(deps.backupDir);
  const clusterStore = new ClusterBackupStore(run, deps.workDir);
  // One session per worker process: the repository and the chart archives are set up once per host.
  const repos = chartRepoSession(run, { ...process.env, ...deps.env }, path.join(deps.workDir, 'charts'));
  const { charts } = repos;
  const helmTimeoutMs = deps.helmTimeoutMs ?? 10 * 60_000;
  const releases = releaseActivities({
    run,
    charts,
    clusterStore,
    store,
    helmTimeoutMs,
    pendingGraceMs: deps.pendingGraceMs ?? helmTimeoutMs + 2 * 60_000,
    workDir: deps.workDir,
    ...(deps.releaseLeases === false
      ? {}
      : { leases: releaseLeases({ run, workDir: deps.workDir, holder: defaultHolder }) }),
  });
  const { readState, ...releaseSteps } = releases;

  return {
    ...releaseSteps,
    ...crdActivities({ run, repos, workDir: deps.workDir }),
    ...imageActivities({ run, repos, workDir: deps.workDir, env: { ...process.env, ...deps.env } }),
    ...healthActivities({ run, pollMs: deps.healthPollMs ?? 2_000 }),
    ...manifestDiffActivities({ run, repos, workDir: deps.workDir }),
    ...notifyActivities({ env: { ...process.env, ...deps.env } }),

    /**
     * What the version rules say for this upgrade. Run once as a local activity, so the decision is
     * recorded in history and an edit of runbook/rules.ts never changes a running upgrade's plan.
     */
    async decideRules(input: {
      from?: Version;
      to: Version;
      dbMigration: DbMigrationMode;
      uiVersion?: Version;
    }): Promise<RuleDecisions> {
      return decideRules(input.from, input.to, input);
    },

    /**
     * The target chart version must exist before anything changes. Its archive is pulled into this
     * host's cache now, and its sha256 returned: the plan pins every cluster's step to it.
     */
    async checkChartVersion(input: {
      repo: ChartRepo;
      chart: ReleaseName;
      version: Version;
    }): Promise<ChartVersionCheck> {
      const pull = () => charts.pull({ repo: input.repo, chart: input.chart, version: input.version });
      try {
        const { sha256 } = await pull().catch(async (err: unknown) => {
          // The index this host fetched earlier may predate the version: fetch it once more.
          if (!(err instanceof ApplicationFailure && err.type === 'ChartVersionNotFound')) throw err;
          await repos.update(input.repo);
          return pull();
        });
        return { version: input.version, sha256 };
      } catch (err) {
        if (err instanceof ApplicationFailure && err.type === 'ChartVersionNotFound') {
          throw ApplicationFailure.nonRetryable(
            `chart ${input.chart} ${input.version} is not in repository ${input.repo.name} (${input.repo.url})`,
            'ChartVersionNotFound'
          );
        }
        throw err;
      }
    },

    /**
     * Read-only: Kubernetes version, the release's history (and which revisions are ours), the CRD
     * record of a worker, and the fleet's files as this worker host sees them (it is the host that
     * will use them: preflight runs on the cluster's own task queue).
     */
    async preflightCluster(input: {
      upgradeId: string;
      cluster: ClusterRef;
      release: ReleaseName;
      files?: NeededFile[];
    }): Promise<ClusterFacts> {
      const { cluster } = input;
      for (const f of input.files ?? []) {
        await access(f.path, constants.R_OK).catch(() => {
          throw ApplicationFailure.nonRetryable(
            `${f.field}: ${f.path} does not exist or cannot be read on this worker host`,
            'FileNotFound'
          );
        });
      }
      const { stdout } = await run('kubectl', cmd.kubectlServerVersion(cluster));
      const gitVersion =
        (JSON.parse(stdout) as { serverVersion?: { gitVersion?: string } }).serverVersion?.gitVersion ?? '';
      const kubeVersion = parseKubeVersion(gitVersion);
      if (!kubeVersion)
        throw ApplicationFailure.nonRetryable(`${cluster.name}: cannot read the Kubernetes version ("${gitVersion}")`);
      const { facts } = await readState(cluster, input.release, input.upgradeId);
      const crds = input.release === 'skoala-init' ? await readCrdRecord(run, cluster) : undefined;
      const rolledBack = await readRollbackRecord(run, cluster);
      return {
        cluster: cluster.name,
        kubeVersion,
        release: facts,
        ...(crds ? { crds } : {}),
        ...(rolledBack ? { rolledBack } : {}),
      };
    },

    /** Applies this upgrade's migration Job (replacing a finished one of another upgrade) and waits for it. */
    async runDbMigrationJob(input: DbMigrationJobInput): Promise<DbMigrationJobResult> {
      return runDbMigrationJob({ run, pollMs: deps.jobPollMs ?? 5_000, workDir: deps.workDir }, input);
    },

    /**
     * Saves the values of the pre-upgrade revision, once per (upgrade, cluster, release, revision): a
     * retry reuses the saved copy, and a backup of another revision is never mistaken for this one.
     */
    async backupValues(input: {
      upgradeId: string;
      cluster: ClusterRef;
      release: ReleaseName;
      revision: number;
      /** 'cluster': a Secret in the cluster (fleet backupStore); absent: a file on this worker host. */
      store?: 'cluster';
    }): Promise<BackupRef> {
      const key = {
        upgradeId: input.upgradeId,
        cluster: input.cluster.name,
        release: input.release,
        revision: input.revision,
      };
      const inCluster = input.store === 'cluster';
      const existing = inCluster ? await clusterStore.find(input.cluster, key) : await store.find(key);
      if (existing) return existing;
      const { stdout } = await run('helm', cmd.helmGetValues(input.cluster, input.release, input.revision), {
        cluster: input.cluster.name,
      });
      // No user values prints `null`, which is not a values file helm accepts back.
      const text = stdout.trim() === 'null' ? '{}\n' : stdout;
      return inCluster ? clusterStore.save(input.cluster, key, text) : store.save(key, text);
    },

    /**
     * `helm repo add` with the site's credentials (or `helm registry login` for OCI), on this host:
     * once per upgrade (`upgradeId`; absent in old histories: every time) for the same settings.
     */
    async addChartRepo(input: { repo: ChartRepo; upgradeId?: string }): Promise<void> {
      await repos.add(input.repo, {}, input.upgradeId);
    },

    /** `helm repo update`, once per upgrade on this host, as addChartRepo. */
    async updateChartRepo(input: { repo: ChartRepo; upgradeId?: string }): Promise<void> {
      await repos.update(input.repo, {}, input.upgradeId);
    },

    /** Absent Jobs are fine (`--ignore-not-found`). */
    async deleteAdmissionJobs(input: { cluster: ClusterRef; jobs: string[] }): Promise<{ deleted: string[] }> {
      const { stdout } = await run('kubectl', cmd.kubectlDeleteJobs(input.cluster, input.jobs));
      return { deleted: stdout.split('\n').filter((l) => l.includes('deleted')) };
    },
  };
}

export type Activities = ReturnType<typeof createActivities>;
