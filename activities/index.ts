/**
 * Every side effect of the upgrade, as Temporal activities built by a factory: the worker entry
 * point passes the real dependencies, tests pass their own.
 */
import { Context, log } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import * as cmd from '../runbook/commands';
import { parseKubeVersion } from '../runbook/version';
import type { BackupRef, ChartRepo, ClusterFacts, ClusterRef, ReleaseName, Step, Version } from '../runbook/types';
import { BackupStore } from './backup-store';
import { createRunner, type CommandRunner } from './exec';
import { alreadyUpgraded, parseHelmList } from './releases';

export interface ActivityDeps {
  helm: string;
  kubectl: string;
  /** Environment for helm/kubectl (HELM_*_HOME, proxies). */
  env?: NodeJS.ProcessEnv;
  /** Where values backups are kept (owner-only). */
  backupDir: string;
  /** Scratch space for pulled charts. */
  workDir: string;
  /** Replaces the real process runner: unit tests check the exact argument arrays with it. */
  run?: CommandRunner;
  jobPollMs?: number;
  helmTimeoutMs?: number;
}

type UpgradeStep = Step & { kind: 'upgradeRelease' };
type CrdStep = Step & { kind: 'reapplyCrds' };

export function createActivities(deps: ActivityDeps) {
  const run = deps.run ?? createRunner({ helm: deps.helm, kubectl: deps.kubectl, env: deps.env });
  const store = new BackupStore(deps.backupDir);
  const helmTimeoutMs = deps.helmTimeoutMs ?? 10 * 60_000;

  const readRelease = async (cluster: ClusterRef, release: ReleaseName) =>
    parseHelmList((await run('helm', cmd.helmListRelease(cluster, release))).stdout, release);

  return {
    /** The target chart version must exist before anything changes. */
    async checkChartVersion(input: {
      repo: ChartRepo;
      chart: ReleaseName;
      version: Version;
    }): Promise<{ version: Version }> {
      try {
        await run('helm', cmd.helmShowChart(input.repo, input.chart, input.version));
      } catch (err) {
        if (err instanceof ApplicationFailure && err.type === 'ChartVersionNotFound') {
          throw ApplicationFailure.nonRetryable(
            `chart ${input.chart} ${input.version} is not in repository ${input.repo.name} (${input.repo.url})`,
            'ChartVersionNotFound'
          );
        }
        throw err;
      }
      return { version: input.version };
    },

    /** Read-only: Kubernetes version and the installed release. Proves helm and kubectl reach the cluster. */
    async preflightCluster(input: { cluster: ClusterRef; release: ReleaseName }): Promise<ClusterFacts> {
      const { stdout } = await run('kubectl', cmd.kubectlServerVersion(input.cluster));
      const gitVersion =
        (JSON.parse(stdout) as { serverVersion?: { gitVersion?: string } }).serverVersion?.gitVersion ?? '';
      const kubeVersion = parseKubeVersion(gitVersion);
      if (!kubeVersion)
        throw ApplicationFailure.nonRetryable(
          `${input.cluster.name}: cannot read the Kubernetes version ("${gitVersion}")`
        );
      return { cluster: input.cluster.name, kubeVersion, release: await readRelease(input.cluster, input.release) };
    },

    /** Applies the operator's migration Job (a no-op if it exists) and waits for it to finish. */
    async runDbMigrationJob(input: { cluster: ClusterRef; manifest: string }): Promise<{ job: string }> {
      const name =
        (await run('kubectl', cmd.kubectlApplyJob(input.cluster, input.manifest))).stdout.trim().split('\n')[0] ?? '';
      if (!name.startsWith('job'))
        throw ApplicationFailure.nonRetryable(
          `${input.manifest} is not a Job manifest (applied ${name || 'nothing'})`,
          'InvalidManifest'
        );
      for (;;) {
        const job = JSON.parse((await run('kubectl', cmd.kubectlGetJson(input.cluster, name))).stdout) as {
          status?: { conditions?: { type: string; status: string; reason?: string; message?: string }[] };
        };
        const cond = (type: string) => job.status?.conditions?.find((c) => c.type === type && c.status === 'True');
        if (cond('Complete')) return { job: name };
        const failed = cond('Failed');
        if (failed) {
          throw ApplicationFailure.nonRetryable(
            `DB-migration ${name} failed on ${input.cluster.name}: ${failed.reason ?? 'Failed'}${failed.message ? `: ${failed.message}` : ''}`,
            'DbMigrationJobFailed'
          );
        }
        Context.current().heartbeat({ waitingFor: name });
        await Context.current().sleep(deps.jobPollMs ?? 5_000);
      }
    },

    /** Saves the pre-upgrade values once per (upgrade, cluster, release); a retry reuses the saved copy. */
    async backupValues(input: {
      upgradeId: string;
      cluster: ClusterRef;
      release: ReleaseName;
      revision: number;
    }): Promise<BackupRef> {
      const key = { upgradeId: input.upgradeId, cluster: input.cluster.name, release: input.release };
      const existing = await store.find(key);
      if (existing) return existing;
      const { stdout } = await run('helm', cmd.helmGetValues(input.cluster, input.release, input.revision));
      // No user values prints `null`, which is not a values file helm accepts back.
      return store.save(key, stdout.trim() === 'null' ? '{}\n' : stdout);
    },

    async addChartRepo(input: { repo: ChartRepo }): Promise<void> {
      await run('helm', cmd.helmRepoAdd(input.repo));
    },

    async updateChartRepo(input: { repo: ChartRepo }): Promise<void> {
      await run('helm', cmd.helmRepoUpdate(input.repo));
    },

    /** Absent Jobs are fine (`--ignore-not-found`). */
    async deleteAdmissionJobs(input: { cluster: ClusterRef; jobs: string[] }): Promise<{ deleted: string[] }> {
      const { stdout } = await run('kubectl', cmd.kubectlDeleteJobs(input.cluster, input.jobs));
      return { deleted: stdout.split('\n').filter((l) => l.includes('deleted')) };
    },

    /**
     * `helm upgrade --install`, at most once per release: a retry finds a release already deployed at
     * the target (after the pre-upgrade revision) and returns; a release left pending by a killed
     * helm is rolled back to the pre-upgrade revision first.
     */
    async upgradeRelease(input: {
      cluster: ClusterRef;
      step: UpgradeStep;
      backup?: BackupRef;
    }): Promise<{ revision: number; alreadyDone: boolean }> {
      const { cluster, step } = input;
      const before = await readRelease(cluster, step.release);
      if (alreadyUpgraded(before, step.version, step.fromRevision))
        return { revision: before.revision ?? 0, alreadyDone: true };
      if (before.status?.startsWith('pending-')) {
        if (before.status === 'pending-install' || step.fromRevision === undefined) {
          throw ApplicationFailure.nonRetryable(
            `${step.release} on ${cluster.name} is stuck ${before.status}; check it with helm history before retrying`,
            'ReleaseStuck'
          );
        }
        log.warn('release left pending by an interrupted helm; rolling back to the pre-upgrade revision', {
          cluster: cluster.name,
          release: step.release,
          status: before.status,
          revision: step.fromRevision,
        });
        await run('helm', cmd.helmRollback(cluster, step.release, step.fromRevision), { timeoutMs: helmTimeoutMs });
      }
      let backupFile: string | undefined;
      if (step.useBackup) {
        if (!input.backup)
          throw ApplicationFailure.nonRetryable(
            `no values backup for ${step.release} on ${cluster.name}`,
            'BackupMissing'
          );
        backupFile = await store.verified(input.backup);
      }
      await run('helm', cmd.helmUpgrade(cluster, step, backupFile), { timeoutMs: helmTimeoutMs });
      const after = await readRelease(cluster, step.release);
      return { revision: after.revision ?? 0, alreadyDone: false };
    },

    /** Updates the CRDs in place from the target chart; never deletes one. */
    async reapplyCrds(input: { cluster: ClusterRef; step: CrdStep }): Promise<{ applied: string[] }> {
      const { cluster, step } = input;
      const tmp = await mkdtemp(path.join(deps.workDir, 'chart-'));
      try {
        await run('helm', cmd.helmPullChart(step.repo, step.chart, step.version, tmp));
        const files = [...step.chartFiles.map((f) => path.join(tmp, step.chart, f)), ...step.extraFiles];
        const applied: string[] = [];
        for (const file of files) {
          await stat(file).catch(() => {
            throw ApplicationFailure.nonRetryable(
              `CRD manifest ${path.relative(tmp, file)} is missing (chart ${step.chart} ${step.version})`,
              'FileNotFound'
            );
          });
          const out = await run('kubectl', cmd.kubectlApplyCrd(cluster, file)).catch((err: unknown) => {
            if (err instanceof ApplicationFailure && err.nonRetryable) {
              throw ApplicationFailure.nonRetryable(
                `the API server refused to update CRDs from ${path.basename(file)} in place on ${cluster.name}: ${err.message}`,
                'CrdRefused'
              );
            }
            throw err;
          });
          applied.push(...appliedNames(out.stdout));
          Context.current().heartbeat({ applied: applied.length });
        }
        return { applied };
      } finally {
        await rm(tmp, { recursive: true, force: true });
      }
    },

    async verifyRelease(input: {
      cluster: ClusterRef;
      release: ReleaseName;
      version: Version;
    }): Promise<{ revision: number }> {
      const facts = await readRelease(input.cluster, input.release);
      if (facts.status !== 'deployed' || facts.chartVersion !== input.version) {
        throw ApplicationFailure.create({
          message: `${input.release} on ${input.cluster.name} is ${facts.installed ? `${facts.status} at ${facts.chartVersion}` : 'not installed'}, expected deployed at ${input.version}`,
          type: 'ReleaseNotAtTarget',
        });
      }
      return { revision: facts.revision ?? 0 };
    },
  };
}

export type Activities = ReturnType<typeof createActivities>;

function appliedNames(stdout: string): string[] {
  const doc = JSON.parse(stdout) as {
    kind?: string;
    metadata?: { name?: string };
    items?: { metadata?: { name?: string } }[];
  };
  const items = doc.kind === 'List' ? (doc.items ?? []) : [doc];
  return items.map((i) => i.metadata?.name ?? '?');
}
