/**
 * The CRD step: update CRDs in place from the target chart (never delete one), then record on the
 * cluster that this version's CRD step is done, so a later run (a fresh workflow) can see it.
 */
import { pullChart, type ChartRepoSession } from './chart-repo';
import { Context, log } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import * as cmd from '../runbook/commands';
import type { ClusterRef, CrdRecord, Step } from '../runbook/types';
import {
  crdDowngrade,
  crdName,
  crdPreviewDigest,
  installedCrds,
  manifestDocs,
  previewCrds,
  summarizeCrdPreview,
} from './crd-preview';
import { readRecord, writeRecord } from './cluster-records';
import type { CommandRunner } from './exec';

type CrdStep = Step & { kind: 'reapplyCrds' };

export interface CrdDeps {
  run: CommandRunner;
  repos: ChartRepoSession;
  workDir: string;
}

/** The CRD record a worker cluster holds, if the product ever completed a CRD step there. */
export async function readCrdRecord(run: CommandRunner, cluster: ClusterRef): Promise<CrdRecord | undefined> {
  const data = await readRecord(run, cluster, cmd.CRD_RECORD);
  return data?.version ? { version: data.version, upgradeId: data.upgradeId ?? '', at: data.at ?? '' } : undefined;
}

export function crdActivities(deps: CrdDeps) {
  const { run } = deps;

  /**
   * Before anything is applied: a CRD whose installed bundle is newer than the manifest's would go
   * down (and lose what the newer bundle serves), so it is refused unless the step allows it. One
   * lookup for the CRDs of every file.
   */
  async function checkDowngrades(
    cluster: ClusterRef,
    step: CrdStep,
    files: { file: string; inChart: boolean }[]
  ): Promise<void> {
    const docs = await Promise.all(
      files.map(async ({ file, inChart }) => ({
        file,
        inChart,
        docs: manifestDocs(await readFile(file, 'utf8'), file),
      }))
    );
    // Unnamed documents are kubectl's to refuse; only CRDs that name themselves can be looked up.
    const names = docs.flatMap((d) => d.docs.map(crdName)).filter((x): x is string => x !== undefined);
    const installed = await installedCrds(run, cluster, [...new Set(names)]);
    for (const { file, inChart, docs: fileDocs } of docs) {
      for (const doc of fileDocs) {
        const name = crdName(doc);
        const down = name ? crdDowngrade(installed.get(name), doc.object) : undefined;
        if (!name || !down) continue;
        const source = inChart ? `chart ${step.chart} ${step.version}` : `${path.basename(file)} (extraCrds)`;
        if (!step.allowDowngrade) {
          throw ApplicationFailure.nonRetryable(
            `${cluster.name}: CRD ${name} is installed at ${down.installed}, newer than ${down.chart} in ${source}: refusing to downgrade it; pass --force-crd-reapply to go down`,
            'CrdDowngrade'
          );
        }
        log.warn('downgrading a CRD (--force-crd-reapply)', { cluster: cluster.name, crd: name, ...down });
      }
    }
  }

  return {
    /** Read-only: what the CRD step would do here (changes, conflicts, downgrades), for the approver. */
    async previewCrdChanges(input: {
      cluster: ClusterRef;
      step: CrdStep;
    }): Promise<{ summary: ReturnType<typeof summarizeCrdPreview>; digest: string }> {
      const changes = await previewCrds(run, deps.repos, deps.workDir, input.cluster, input.step);
      return {
        summary: summarizeCrdPreview(changes, { allowDowngrade: input.step.allowDowngrade }),
        digest: crdPreviewDigest(input.step, changes),
      };
    },

    /** Updates the CRDs in place from the target chart, then records the step as done on the cluster. */
    async reapplyCrds(input: {
      upgradeId: string;
      cluster: ClusterRef;
      step: CrdStep;
    }): Promise<{ applied: string[] }> {
      const { cluster, step } = input;
      const tmp = await mkdtemp(path.join(deps.workDir, 'chart-'));
      try {
        await pullChart(run, deps.repos, step, tmp, { cluster: cluster.name });
        const chartFiles = step.chartFiles.map((f) => path.join(tmp, step.chart, f));
        const files = [...chartFiles, ...step.extraFiles];
        // Every file is checked before anything is applied: a refusal leaves the CRDs as they were.
        for (const file of files) {
          await stat(file).catch(() => {
            throw ApplicationFailure.nonRetryable(
              `CRD manifest ${path.relative(tmp, file)} is missing (chart ${step.chart} ${step.version})`,
              'FileNotFound'
            );
          });
        }
        await checkDowngrades(
          cluster,
          step,
          files.map((file) => ({ file, inChart: chartFiles.includes(file) }))
        );
        // One server-side apply of every file (one kubectl process, not one per file); a refused
        // object fails the step, and its retry applies again (idempotent).
        const out = await run('kubectl', cmd.kubectlApplyCrd(cluster, files)).catch((err: unknown) => {
          if (err instanceof ApplicationFailure && err.nonRetryable) {
            throw ApplicationFailure.nonRetryable(
              `the API server refused to update CRDs from ${files.map((f) => path.basename(f)).join(', ')} in place on ${cluster.name}: ${err.message}`,
              'CrdRefused'
            );
          }
          throw err;
        });
        const applied = appliedNames(out.stdout);
        Context.current().heartbeat({ applied: applied.length });
        const record: CrdRecord = { version: step.version, upgradeId: input.upgradeId, at: new Date().toISOString() };
        await writeRecord(run, cluster, cmd.CRD_RECORD, { ...record }, tmp);
        return { applied };
      } finally {
        await rm(tmp, { recursive: true, force: true });
      }
    },
  };
}

function appliedNames(stdout: string): string[] {
  const doc = JSON.parse(stdout) as {
    kind?: string;
    metadata?: { name?: string };
    items?: { metadata?: { name?: string } }[];
  };
  const items = doc.kind === 'List' ? (doc.items ?? []) : [doc];
  return items.map((i) => i.metadata?.name ?? '?');
}
