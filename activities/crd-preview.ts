/**
 * Read-only look at what the CRD step would do on a cluster: for each CRD in the manifests,
 * whether a server-side dry-run apply creates it, changes it or leaves it as is, and how many
 * custom resources of that kind exist (what a CRD delete would have destroyed).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import path from 'node:path';
import * as cmd from '../runbook/commands';
import type { ClusterRef, Step } from '../runbook/types';
import type { CommandRunner } from './exec';

export interface CrdChange {
  cluster: string;
  crd: string;
  action: 'create' | 'change' | 'unchanged';
  customResources: number;
}

interface Crd {
  metadata: { name: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  spec: { group: string; names: { plural: string } };
}

/** Key-order-independent JSON of what an apply can change: labels, annotations, spec. */
function content(crd: Crd): string {
  const sorted = (v: unknown): unknown =>
    Array.isArray(v)
      ? v.map(sorted)
      : v && typeof v === 'object'
        ? Object.fromEntries(
            Object.entries(v)
              .sort(([a], [b]) => a.localeCompare(b))
              .map(([k, x]) => [k, sorted(x)])
          )
        : v;
  return JSON.stringify(
    sorted({ labels: crd.metadata.labels ?? {}, annotations: crd.metadata.annotations ?? {}, spec: crd.spec })
  );
}

const items = (stdout: string): Crd[] => {
  const doc = JSON.parse(stdout) as Crd & { kind?: string; items?: Crd[] };
  return doc.kind === 'List' ? (doc.items ?? []) : [doc];
};

export async function previewCrds(
  run: CommandRunner,
  workDir: string,
  cluster: ClusterRef,
  step: Step & { kind: 'reapplyCrds' }
): Promise<CrdChange[]> {
  const tmp = await mkdtemp(path.join(workDir, 'preview-'));
  try {
    await run('helm', cmd.helmPullChart(step.repo, step.chart, step.version, tmp));
    const files = [...step.chartFiles.map((f) => path.join(tmp, step.chart, f)), ...step.extraFiles];
    const out: CrdChange[] = [];
    for (const file of files) {
      for (const crd of items((await run('kubectl', cmd.kubectlApplyCrd(cluster, file, true))).stdout)) {
        const name = crd.metadata.name;
        const existing = (
          await run('kubectl', [...cmd.kubectlTarget(cluster), 'get', 'crd', name, '--ignore-not-found', '-o', 'json'])
        ).stdout.trim();
        let action: CrdChange['action'] = 'create';
        let customResources = 0;
        if (existing) {
          // The dry run returns the object as it would be stored: compare it with what is stored now.
          action = content(JSON.parse(existing) as Crd) === content(crd) ? 'unchanged' : 'change';
          const list = await run('kubectl', [
            ...cmd.kubectlTarget(cluster),
            'get',
            `${crd.spec.names.plural}.${crd.spec.group}`,
            '-A',
            '-o',
            'name',
          ]);
          customResources = list.stdout.split('\n').filter(Boolean).length;
        }
        out.push({ cluster: cluster.name, crd: name, action, customResources });
      }
    }
    return out;
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}
