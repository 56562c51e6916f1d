/**
 * Read-only look at what one cluster's release upgrade would change: the manifest and effective
 * values of the revision the upgrade starts from, against a server-side dry run of the very upgrade
 * the plan holds (same chart, version, values backup, values files and `--set` tags). Only the
 * redacted diff leaves this module: no credential reaches the plan's output or workflow history.
 */
import { ApplicationFailure } from '@temporalio/common';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import * as cmd from '../runbook/commands';
import {
  diffRelease,
  effectiveValues,
  manifestDiffLines,
  splitManifest,
  type ManifestDiff,
} from '../runbook/manifest-diff';
import { collectCredentials, Redactor } from '../runbook/redact';
import type { ClusterRef, Step, Version } from '../runbook/types';
import type { ChartRepoSession } from './chart-repo';
import type { CommandRunner } from './exec';

type UpgradeStep = Step & { kind: 'upgradeRelease' };

export interface ManifestDiffDeps {
  run: CommandRunner;
  repos: ChartRepoSession;
  /** Scratch space: the values backup stand-in (owner-only, removed at once). */
  workDir: string;
}

/** What `helm upgrade --dry-run=server -o json` prints that the diff needs. */
interface DryRunRelease {
  manifest?: string;
  /** The user-supplied values of the would-be revision. */
  config?: unknown;
  chart?: { values?: unknown };
}

/** A dry run may pull the chart first; it renders and validates, it never waits for workloads. */
const DRY_RUN_TIMEOUT_MS = 3 * 60_000;

const messageOf = (err: unknown): string => (err instanceof Error ? err.message : String(err));

/** JSON.parse whose error quotes none of the text (it holds values, credentials among them). */
function parseJson(text: string, what: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw ApplicationFailure.nonRetryable(`${what} printed something that is not JSON`, 'UnexpectedOutput');
  }
}

/**
 * The redacted diff of one cluster's upgrade step. The values backup the real upgrade passes
 * first (`-f`) is stood in for by the same `helm get values --revision N` it is made of.
 */
export async function previewManifestDiff(
  deps: ManifestDiffDeps,
  input: { cluster: ClusterRef; step: UpgradeStep; from?: Version }
): Promise<ManifestDiff> {
  const { run, repos } = deps;
  const { cluster, step } = input;
  const where = { cluster: cluster.name };
  const rev = step.fromRevision;
  const current = { manifest: '', values: {} as unknown };
  let userValues = '{}\n';
  if (rev !== undefined) {
    current.manifest = (await run('helm', cmd.helmGetManifest(cluster, step.release, rev), where)).stdout;
    const values = await run('helm', cmd.helmGetComputedValues(cluster, step.release, rev), where);
    current.values = parseJson(values.stdout || '{}', 'helm get values');
    const { stdout } = await run('helm', cmd.helmGetValues(cluster, step.release, rev), where);
    // No user values prints `null`, which is not a values file helm accepts back (as backupValues does).
    if (stdout.trim() !== 'null') userValues = stdout;
  }
  // Only what is known before the dry run: its failure message must not quote these either.
  const known = new Redactor(
    collectCredentials({ objects: splitManifest(current.manifest).map((r) => r.object), values: [current.values] })
  );
  const tmp = await mkdtemp(path.join(deps.workDir, 'manifest-diff-'));
  let target: DryRunRelease;
  try {
    let backupFile: string | undefined;
    if (step.useBackup) {
      backupFile = path.join(tmp, `${step.release}-values.yaml`);
      await writeFile(backupFile, userValues, { mode: 0o600 });
    }
    // The host's cached archive when there is one: the same chart the upgrade installs, not fetched again.
    const chart = repos.charts ? (await repos.charts.get(step, where)).file : undefined;
    if (!chart) await repos.ensure(step.repo, where);
    const { stdout } = await run(
      'helm',
      cmd.helmUpgradeDryRun(cluster, step, backupFile, chart),
      // A local archive reaches no chart source: any TLS or 401 failure is the cluster's.
      chart
        ? { ...where, timeoutMs: DRY_RUN_TIMEOUT_MS }
        : repos.runOptions(step.repo, { ...where, timeoutMs: DRY_RUN_TIMEOUT_MS })
    );
    target = parseJson(stdout, 'helm upgrade --dry-run=server') as DryRunRelease;
  } catch (err) {
    throw ApplicationFailure.nonRetryable(
      `server-side dry run of the ${step.release} upgrade on ${cluster.name}: ${known.scrub(messageOf(err))}`,
      'ManifestDiffFailed'
    );
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
  const diff = diffRelease(
    current,
    { manifest: target.manifest ?? '', values: effectiveValues(target.chart?.values ?? {}, target.config ?? {}) },
    {
      namespace: cluster.namespace,
      fromHeader: rev === undefined ? 'not installed' : `revision ${rev}`,
      toHeader: `${step.version} (dry run)`,
    }
  );
  return {
    cluster: cluster.name,
    release: step.release,
    ...(input.from ? { from: input.from } : {}),
    to: step.version,
    ...diff,
  };
}

/**
 * At a worker's CRD gate, after its release was upgraded: what the upgrade changed, the revision it
 * started from against the release as it is now. Compact lines, redacted (they go to history).
 */
export async function releaseChangeLines(
  deps: Pick<ManifestDiffDeps, 'run'>,
  input: { cluster: ClusterRef; release: UpgradeStep['release']; fromRevision: number; from?: Version; to: Version }
): Promise<string[]> {
  const { cluster, release, fromRevision } = input;
  const where = { cluster: cluster.name };
  const side = async (revision?: number) => ({
    manifest: (await deps.run('helm', cmd.helmGetManifest(cluster, release, revision), where)).stdout,
    values: parseJson(
      (await deps.run('helm', cmd.helmGetComputedValues(cluster, release, revision), where)).stdout || '{}',
      'helm get values'
    ),
  });
  const [before, now] = [await side(fromRevision), await side()];
  const diff = diffRelease(before, now, { namespace: cluster.namespace });
  return manifestDiffLines(
    { cluster: cluster.name, release, ...(input.from ? { from: input.from } : {}), to: input.to, ...diff },
    { source: `revision ${fromRevision} -> now` }
  );
}

export function manifestDiffActivities(deps: ManifestDiffDeps) {
  return {
    /** Read-only: what this upgrade changed in the release, for its CRD gate (compact, redacted). */
    async releaseChangeLines(input: {
      cluster: ClusterRef;
      release: UpgradeStep['release'];
      fromRevision: number;
      from?: Version;
      to: Version;
    }): Promise<string[]> {
      return releaseChangeLines(deps, input);
    },
    /**
     * Read-only: what the upgrade step would change on this cluster (resources and effective
     * values), redacted. Reads run as the upgrade would, on the cluster's own worker host.
     */
    async previewManifestDiff(input: {
      cluster: ClusterRef;
      step: UpgradeStep;
      from?: Version;
    }): Promise<ManifestDiff> {
      return previewManifestDiff(deps, input);
    },
  };
}
