/**
 * Small records the product keeps on a cluster (ConfigMaps in the engine's namespace), so that a
 * later run, a fresh workflow with no history of this one, sees what was done there.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { stringify } from 'yaml';
import * as cmd from '../runbook/commands';
import type { ClusterRef, RollbackRecord } from '../runbook/types';
import type { CommandRunner } from './exec';

export async function readRecord(
  run: CommandRunner,
  cluster: ClusterRef,
  name: string
): Promise<Record<string, string> | undefined> {
  const out = (await run('kubectl', cmd.kubectlGetConfigMap(cluster, name))).stdout.trim();
  if (!out) return undefined;
  return (JSON.parse(out) as { data?: Record<string, string> }).data ?? {};
}

export async function writeRecord(
  run: CommandRunner,
  cluster: ClusterRef,
  name: string,
  data: Record<string, string>,
  workDir: string
): Promise<void> {
  const dir = await mkdtemp(path.join(workDir, 'record-'));
  try {
    const file = path.join(dir, `${name}.yaml`);
    await writeFile(
      file,
      stringify({
        apiVersion: 'v1',
        kind: 'ConfigMap',
        metadata: { name, labels: { 'app.kubernetes.io/managed-by': 'skoala-upgrade' } },
        data,
      })
    );
    await run('kubectl', cmd.kubectlApplyFile(cluster, file));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** The last rollback the product did on this cluster (see rollbackToRevision). */
export async function readRollbackRecord(run: CommandRunner, cluster: ClusterRef): Promise<RollbackRecord | undefined> {
  const data = await readRecord(run, cluster, cmd.ROLLBACK_RECORD);
  if (!data?.upgradeId || !data.version) return undefined;
  return { upgradeId: data.upgradeId, version: data.version, at: data.at ?? '', cause: data.cause ?? '' };
}
