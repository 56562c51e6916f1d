/**
 * Activity doubles for workflow tests: they keep an in-memory fleet, record every execution with
 * timestamps, and inject faults on request. The end-to-end suite runs the real activities.
 */
import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import { createHash } from 'node:crypto';
import type { Activities } from '../../activities';
import { crdPreviewDigest, summarizeCrdPreview, type CrdChange } from '../../activities/crd-preview';
import { notifyActivities } from '../../activities/notify';
import { decideRules } from '../../runbook/rules';
import type { CrdRecord, ReleaseFacts, RollbackRecord } from '../../runbook/types';

const realNotify = notifyActivities({ env: process.env }).notify;

export interface Call {
  activity: keyof Activities;
  cluster?: string;
  attempt: number;
  start: number;
  end?: number;
  failed?: boolean;
}

/** `valuesChanged`: upgradeRelease's own refusal, before helm runs. */
export type Fault = 'retryable' | 'nonRetryable' | 'valuesChanged';

export interface FakeFleetOptions {
  clusters: Record<string, ReleaseFacts & { kubeVersion?: string; crds?: CrdRecord; rolledBack?: RollbackRecord }>;
  chartVersions?: string[];
  /** Images the registry lacks: checkImages reports them for every target. */
  missingImages?: string[];
  /** Milliseconds each upgradeRelease takes: long enough to observe overlap. */
  upgradeMs?: number;
}

/** The digest the fake repository's archive of a chart has. */
export const fakeChartSha256 = (chart: string, version: string): string =>
  createHash('sha256').update(`${chart}-${version}.tgz`).digest('hex');

export class FakeFleet {
  readonly calls: Call[] = [];
  /** What the chart steps were given (add/update, upgrade, CRD re-apply), in order. */
  readonly chartInputs: { activity: keyof Activities; input: unknown }[] = [];
  /** Faults to throw, consumed in order, per `activity:cluster`. */
  readonly faults = new Map<string, Fault[]>();
  /** Blocks `activity:cluster` until the returned function is called. */
  private readonly latches = new Map<string, Promise<void>>();
  readonly clusters: FakeFleetOptions['clusters'];
  /** The version each cluster had before its last upgrade: what a rollback brings back. */
  private readonly previous = new Map<string, string | undefined>();
  /** Chart versions the fake repository has. */
  readonly chartVersions: string[];
  /** What the CRD preview of a cluster finds (default: nothing to change); tests change it to move the digest. */
  readonly crdChanges = new Map<string, CrdChange[]>();

  constructor(private readonly opts: FakeFleetOptions) {
    this.clusters = structuredClone(opts.clusters);
    this.chartVersions = [...(opts.chartVersions ?? ['0.18.0', '0.19.2'])];
  }

  hold(activity: keyof Activities, cluster: string): () => void {
    let release = () => {};
    this.latches.set(`${activity}:${cluster}`, new Promise<void>((r) => (release = r)));
    return release;
  }

  count(activity: keyof Activities, cluster?: string): number {
    return this.calls.filter(
      (c) => c.activity === activity && (cluster === undefined || c.cluster === cluster) && !c.failed
    ).length;
  }

  private async record<T>(
    activity: keyof Activities,
    cluster: string | undefined,
    body: () => Promise<T> | T
  ): Promise<T> {
    const ctx = Context.current();
    const call: Call = { activity, cluster, attempt: ctx.info.attempt, start: Date.now() };
    this.calls.push(call);
    // Like the real runner: heartbeat while working, so a held step outlives the heartbeat timeout.
    const beat = setInterval(() => ctx.heartbeat(), 1000);
    try {
      await this.latches.get(`${activity}:${cluster}`);
      const fault = this.faults.get(`${activity}:${cluster}`)?.shift();
      if (fault === 'valuesChanged')
        throw ApplicationFailure.nonRetryable(
          `values changed since the plan: re-run plan (injected on ${cluster})`,
          'ValuesChanged'
        );
      if (fault)
        throw ApplicationFailure.create({
          message: `injected ${fault} failure in ${activity} on ${cluster}`,
          type: 'Injected',
          nonRetryable: fault === 'nonRetryable',
        });
      return await body();
    } catch (err) {
      call.failed = true;
      throw err;
    } finally {
      clearInterval(beat);
      call.end = Date.now();
    }
  }

  activities(): Activities {
    const versions = this.chartVersions;
    return {
      // The real webhook activity: tests point the fleet's hook at a loopback receiver.
      notify: (i) => this.record('notify', i.event.cluster, () => realNotify(i)),
      checkImages: (i) =>
        this.record('checkImages', i.targets[0]?.cluster.name, () => ({
          checked: i.targets.length,
          missing: (this.opts.missingImages ?? []).map((image) => ({
            image,
            clusters: i.targets.slice(0, 3).map((t) => t.cluster.name),
            reason: 'not found',
          })),
        })),
      checkChartVersion: (i) =>
        this.record('checkChartVersion', undefined, () => {
          if (!versions.includes(i.version))
            throw ApplicationFailure.nonRetryable(
              `chart ${i.chart} ${i.version} is not in repository`,
              'ChartVersionNotFound'
            );
          return { version: i.version, sha256: fakeChartSha256(i.chart, i.version) };
        }),
      preflightCluster: (i) =>
        this.record('preflightCluster', i.cluster.name, () => {
          const c = this.clusters[i.cluster.name];
          if (!c) throw ApplicationFailure.nonRetryable(`unknown cluster ${i.cluster.name}`);
          const { kubeVersion = '1.33.0', crds, rolledBack, ...release } = c;
          return {
            cluster: i.cluster.name,
            kubeVersion,
            release,
            ...(crds ? { crds } : {}),
            ...(rolledBack ? { rolledBack } : {}),
          };
        }),
      runDbMigrationJob: (i) =>
        this.record('runDbMigrationJob', i.cluster.name, () => ({ job: 'job.batch/skoala-db-upgrade' })),
      backupValues: (i) =>
        this.record('backupValues', i.cluster.name, () => ({
          ref: `${i.upgradeId}/${i.cluster.name}/${i.release}.yaml`,
          sha256: 'f'.repeat(64),
          reused: false,
        })),
      addChartRepo: (i) =>
        this.record('addChartRepo', undefined, () => {
          this.chartInputs.push({ activity: 'addChartRepo', input: i });
        }),
      updateChartRepo: (i) =>
        this.record('updateChartRepo', undefined, () => {
          this.chartInputs.push({ activity: 'updateChartRepo', input: i });
        }),
      deleteAdmissionJobs: (i) => this.record('deleteAdmissionJobs', i.cluster.name, () => ({ deleted: [] })),
      upgradeRelease: (i) =>
        this.record('upgradeRelease', i.cluster.name, async () => {
          this.chartInputs.push({ activity: 'upgradeRelease', input: i });
          await new Promise((r) => setTimeout(r, this.opts.upgradeMs ?? 0));
          const c = this.clusters[i.cluster.name] as ReleaseFacts;
          this.previous.set(i.cluster.name, c.chartVersion);
          Object.assign(c, {
            installed: true,
            chartVersion: i.step.version,
            status: 'deployed',
            revision: (c.revision ?? 0) + 1,
            ours: true,
          });
          return { revision: c.revision ?? 1, alreadyDone: false };
        }),
      reapplyCrds: (i) =>
        this.record('reapplyCrds', i.cluster.name, () => {
          this.chartInputs.push({ activity: 'reapplyCrds', input: i });
          const c = this.clusters[i.cluster.name];
          if (c) c.crds = { version: i.step.version, upgradeId: i.upgradeId, at: new Date().toISOString() };
          return { applied: ['httpproxies.projectcontour.io'] };
        }),
      previewCrdChanges: (i) =>
        this.record('previewCrdChanges', i.cluster.name, () => {
          const changes = this.crdChanges.get(i.cluster.name) ?? [];
          return { summary: summarizeCrdPreview(changes), digest: crdPreviewDigest(i.step, changes) };
        }),
      // No workflow calls it yet (the plan command does): an empty diff keeps the type complete.
      releaseChangeLines: (i) =>
        this.record('releaseChangeLines', i.cluster.name, () => [
          `manifest diff (${i.release} ${i.from ?? '(not installed)'} -> ${i.to}, revision ${i.fromRevision} -> now): 1 changed, 0 added, 0 removed, 0 unchanged`,
        ]),
      previewManifestDiff: (i) =>
        this.record('previewManifestDiff', i.cluster.name, () => ({
          cluster: i.cluster.name,
          release: i.step.release,
          to: i.step.version,
          resources: [],
          unchanged: 0,
          values: [],
          redacted: 0,
        })),
      rollbackRelease: (i) => this.record('rollbackRelease', i.cluster.name, () => ({ rolledBack: true })),
      verifyWorkloads: (i) => this.record('verifyWorkloads', i.cluster.name, () => ({ workloads: [] })),
      rollbackToRevision: (i) =>
        this.record('rollbackToRevision', i.cluster.name, () => {
          const c = this.clusters[i.cluster.name] as ReleaseFacts & { rolledBack?: RollbackRecord };
          // Like helm: a release still at the revision to go back to was never changed by the upgrade.
          if (c.revision === i.revision) return { rolledBack: false, untouched: true as const };
          Object.assign(c, { status: 'deployed', revision: (c.revision ?? 0) + 1, ours: false });
          // The version before the upgrade comes back, as with helm.
          Object.assign(c, { chartVersion: this.previous.get(i.cluster.name) ?? c.chartVersion });
          if (i.record) c.rolledBack = { upgradeId: i.upgradeId, ...i.record, at: new Date().toISOString() };
          return { rolledBack: true };
        }),
      decideRules: async (i) => decideRules(i.from, i.to, i),
      verifyRelease: (i) =>
        this.record('verifyRelease', i.cluster.name, () => {
          const c = this.clusters[i.cluster.name];
          if (c?.chartVersion !== i.version)
            throw ApplicationFailure.create({ message: `not at ${i.version}`, type: 'ReleaseNotAtTarget' });
          return { revision: c.revision ?? 0 };
        }),
    };
  }
}
