/**
 * `npm run plan -- --version X [--fleet F]` (and `start-upgrade --dry-run`): reads every cluster
 * (read-only), computes the plan the workflow would execute, and previews the CRD step. Starts
 * nothing, changes nothing.
 */
import type { ImageCheckResult } from '../../runbook/images';
import { chartRepoSession } from '../../activities/chart-repo';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pLimit from 'p-limit';
import { createActivities } from '../../activities';
import { previewCrds, type CrdChange } from '../../activities/crd-preview';
import type { ManifestDiff } from '../../runbook/manifest-diff';
import { createRunner } from '../../activities/exec';
import { upgradeIdFor } from '../../runbook/fleet';
import { PlanRefused, planUpgrade } from '../../runbook/plan';
import type { FleetFacts, Plan, UpgradeRequest } from '../../runbook/types';
import { EXIT, ExitError } from '../lib/errors';
import { loadFleet, upgradeOptions, type UpgradeFlags } from '../lib/inputs';
import { unapprovableBecause } from '../../runbook/approval-policy';
import { rolloutOptions, selectWorkers, startedByOption, type RolloutFlags } from '../lib/rollout-options';
import { workerConfig } from '../../worker/config';

/** Clusters read at once: a fleet of 1,000 must not start 1,000 helm and kubectl processes together. */
const CLUSTERS_AT_ONCE = 16;

export interface PlanResult {
  request: UpgradeRequest;
  plan: Plan;
  crds: CrdChange[];
  /** What the image check found (absent when the fleet turns it off or nothing is upgraded). */
  images?: ImageCheckResult;
  /** Per upgraded cluster, what its upgrade changes (redacted); patches only with `--diff`. */
  diffs: ManifestDiff[];
}

export interface PlanFlags extends UpgradeFlags, RolloutFlags {
  /** Keep every resource's unified diff (the text output prints them in full). */
  diff?: boolean;
}

/** Validates the flags and fleet file into a request; throws ExitError on bad input. */
export async function buildRequest(flags: UpgradeFlags & RolloutFlags): Promise<UpgradeRequest> {
  const base = upgradeOptions(flags); // flag errors first: they need no file
  // Only the selected worker clusters are part of this upgrade (the control plane always is).
  const fleet = selectWorkers(await loadFleet(flags.fleet), flags.select);
  const startedBy = startedByOption(flags.by);
  const unapprovable = unapprovableBecause(fleet.approvals, startedBy);
  if (unapprovable) throw new ExitError(`${flags.fleet}: approvals: ${unapprovable}`);
  const options = { ...base, ...rolloutOptions(flags, fleet), ...(startedBy ? { startedBy } : {}) };
  // Whether `auto` needs the Job depends on installed versions (the workflow's preflight knows);
  // `always` can be refused now.
  if (options.dbMigration === 'always' && fleet.dbMigrationJob === undefined) {
    throw new ExitError(
      `${flags.fleet}: dbMigrationJob: --db-migration always needs the DB-migration Job manifest in the fleet file`
    );
  }
  return { upgradeId: upgradeIdFor(fleet.name, options.targetVersion), fleet, options };
}

export async function plan(flags: PlanFlags, env: NodeJS.ProcessEnv = process.env): Promise<PlanResult> {
  const request = await buildRequest(flags);
  const config = workerConfig(env);
  const workDir = await mkdtemp(path.join(tmpdir(), 'skoala-plan-'));
  try {
    const run = createRunner({ helm: config.helm, kubectl: config.kubectl, env });
    const acts = createActivities({ ...config, backupDir: path.join(workDir, 'unused'), workDir, run });
    // The activities' chart cache: the CRD previews unpack the archives checkChartVersion pulled.
    const repos = chartRepoSession(run, env, path.join(workDir, 'charts'));
    const { fleet, options } = request;
    const failIf =
      (what: string) =>
      (err: unknown): never => {
        throw new ExitError(`${what}: ${(err as Error).message}`, EXIT.upgradeFailed);
      };
    const chartSha256 = Object.fromEntries(
      await Promise.all(
        (['skoala', 'skoala-init'] as const).map(async (chart) => {
          const check = await acts
            .checkChartVersion({ repo: fleet.chartRepo, chart, version: options.targetVersion })
            .catch(failIf(`chart ${chart}`));
          return [chart, check.sha256] as const;
        })
      )
    );
    const limit = pLimit(CLUSTERS_AT_ONCE);
    const bounded = <T>(fn: () => Promise<T>): Promise<T> =>
      limit(fn).catch((err: unknown) => {
        limit.clearQueue(); // the plan fails on the first error: read no more clusters
        throw err;
      });
    const facts: FleetFacts = {
      controlPlane: await acts
        .preflightCluster({ upgradeId: request.upgradeId, cluster: fleet.controlPlane, release: 'skoala' })
        .catch(failIf(fleet.controlPlane.name)),
      workers: await Promise.all(
        fleet.workers.map((cluster) =>
          bounded(() =>
            acts
              .preflightCluster({ upgradeId: request.upgradeId, cluster, release: 'skoala-init' })
              .catch(failIf(cluster.name))
          )
        )
      ),
      chartSha256,
    };
    let result: Plan;
    try {
      result = planUpgrade(request, facts);
    } catch (err) {
      if (err instanceof PlanRefused) throw new ExitError(`upgrade refused: ${err.message}`);
      throw err;
    }
    // Each preview pulls into its own temp dir and only reads the cluster, so they can overlap; order is kept.
    const previews = await Promise.all(
      result.workers.map((w) => {
        const step = w.steps.find((s) => s.kind === 'reapplyCrds');
        if (step?.kind !== 'reapplyCrds') return [];
        return bounded(() =>
          previewCrds(run, repos, workDir, w.cluster, step).catch(failIf(`CRD preview on ${w.cluster.name}`))
        );
      })
    );
    // The same image check preflight runs, from this host: a missing image shows before any start.
    const targets = [result.controlPlane, ...result.workers].flatMap((p) => {
      const step = p.steps.find((x) => x.kind === 'upgradeRelease');
      const f =
        p.role === 'control-plane' ? facts.controlPlane : facts.workers.find((w) => w.cluster === p.cluster.name);
      return p.skipped || step?.kind !== 'upgradeRelease' || !f
        ? []
        : [{ cluster: p.cluster, kubeVersion: f.kubeVersion, step }];
    });
    const images =
      fleet.checkImages === false || targets.length === 0
        ? undefined
        : await acts
            .checkImages({ targets, chartRepo: fleet.chartRepo, registries: fleet.registries ?? [] })
            .catch(failIf('image check'));
    // Informational: a dry run that fails (a read-only kubeconfig, a pending release) is shown, not fatal.
    const diffs = await Promise.all(
      [result.controlPlane, ...result.workers].flatMap((p) => {
        const step = p.steps.find((x) => x.kind === 'upgradeRelease');
        if (p.skipped || step?.kind !== 'upgradeRelease') return [];
        const input = { cluster: p.cluster, step, ...(p.from ? { from: p.from } : {}) };
        return [
          limit(() =>
            acts.previewManifestDiff(input).catch((err: unknown): ManifestDiff => ({
              cluster: p.cluster.name,
              release: step.release,
              ...(p.from ? { from: p.from } : {}),
              to: step.version,
              resources: [],
              unchanged: 0,
              values: [],
              redacted: 0,
              error: (err as Error).message,
            }))
          ),
        ];
      })
    );
    const shown = flags.diff
      ? diffs
      : diffs.map((d) => ({ ...d, resources: d.resources.map(({ patch: _, ...r }) => r) }));
    return { request, plan: result, crds: previews.flat(), ...(images ? { images } : {}), diffs: shown };
  } finally {
    await rm(workDir, { recursive: true, force: true });
  }
}
