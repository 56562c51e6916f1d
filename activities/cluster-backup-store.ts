/**
 * `backupStore: cluster`: each values backup is an immutable Secret in the cluster it came from,
 * in the engine's namespace, labelled with the upgrade and the revision. Any worker that can reach
 * the cluster can resume the upgrade; losing a worker host loses no backup. The values reach
 * kubectl on stdin and come back into a temp file (owner-only) only for the helm call that needs
 * them; the workflow sees the Secret's name and a checksum, never the values.
 */
import { ApplicationFailure } from '@temporalio/common';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import * as cmd from '../runbook/commands';
import type { BackupRef, ClusterRef } from '../runbook/types';
import { sha256, type BackupKey } from './backup-store';
import type { CommandRunner } from './exec';

export const BACKUP_LABEL = 'skoala-upgrade.io/values-backup';
const DATA_KEY = 'values.yaml';

/** DNS-1123 name, short enough for any upgrade ID: the upgrade is a hash, its full ID an annotation. */
export const backupSecretName = (key: BackupKey): string =>
  `skoala-upgrade-values-${key.release}-r${key.revision}-${sha256(key.upgradeId).slice(0, 10)}`;

/** What kubectl reads from stdin: the Secret with its labels. Never a file, never argv. */
export function backupSecret(key: BackupKey, namespace: string, text: string): string {
  return JSON.stringify({
    apiVersion: 'v1',
    kind: 'Secret',
    type: 'Opaque',
    // Immutable: nothing can change a backup after it was taken (deleting it stays possible).
    immutable: true,
    metadata: {
      name: backupSecretName(key),
      namespace,
      labels: {
        'app.kubernetes.io/managed-by': 'skoala-upgrade',
        [BACKUP_LABEL]: 'true',
        'skoala-upgrade.io/upgrade': sha256(key.upgradeId).slice(0, 10),
        'skoala-upgrade.io/release': key.release,
        'skoala-upgrade.io/revision': String(key.revision),
      },
      annotations: { 'skoala-upgrade.io/upgrade-id': key.upgradeId },
    },
    data: { [DATA_KEY]: Buffer.from(text).toString('base64') },
  });
}

export class ClusterBackupStore {
  constructor(
    private readonly run: CommandRunner,
    private readonly workDir: string
  ) {}

  private async read(cluster: ClusterRef, name: string, namespace = cluster.namespace): Promise<string | undefined> {
    const { stdout } = await this.run('kubectl', cmd.kubectlGetIfExists({ ...cluster, namespace }, 'secret', name), {
      cluster: cluster.name,
    });
    if (!stdout.trim()) return undefined;
    const secret = JSON.parse(stdout) as { data?: Record<string, string> };
    const data = secret.data?.[DATA_KEY];
    // Ours are immutable and always hold the values: anything else under this name is not a backup.
    if (data === undefined)
      throw ApplicationFailure.nonRetryable(
        `Secret ${namespace}/${name} on ${cluster.name} holds no ${DATA_KEY}: it is not a values backup of this product; remove or rename it`,
        'BackupUnreadable'
      );
    return Buffer.from(data, 'base64').toString('utf8');
  }

  /** The backup already taken for this key, if any: a retry reuses it, never re-captures. */
  async find(cluster: ClusterRef, key: BackupKey): Promise<BackupRef | undefined> {
    const name = backupSecretName(key);
    const text = await this.read(cluster, name);
    return text === undefined
      ? undefined
      : { ref: `${cluster.namespace}/${name}`, sha256: sha256(text), reused: true, store: 'cluster' };
  }

  async save(cluster: ClusterRef, key: BackupKey, text: string): Promise<BackupRef> {
    const name = backupSecretName(key);
    await this.run('kubectl', cmd.kubectlCreateFromStdin(cluster), {
      cluster: cluster.name,
      input: backupSecret(key, cluster.namespace, text),
    });
    return { ref: `${cluster.namespace}/${name}`, sha256: sha256(text), reused: false, store: 'cluster' };
  }

  /**
   * The backup as a file for helm's `-f`, checked against the checksum in history; `remove()`
   * deletes the file (the Secret stays).
   */
  async open(cluster: ClusterRef, ref: BackupRef): Promise<{ file: string; remove(): Promise<void> }> {
    // The ref names where it was written (`namespace/name`), even if the fleet's namespace changed since.
    const [namespace = cluster.namespace, name = ''] = ref.ref.includes('/')
      ? ref.ref.split('/')
      : [undefined, ref.ref];
    const text = await this.read(cluster, name, namespace);
    if (text === undefined)
      throw ApplicationFailure.nonRetryable(
        `values backup Secret ${ref.ref} is missing from ${cluster.name}: restore it or re-run the upgrade from its plan`,
        'BackupNotFound'
      );
    if (sha256(text) !== ref.sha256)
      throw ApplicationFailure.nonRetryable(
        `values backup Secret ${ref.ref} on ${cluster.name} does not match the checksum recorded when it was taken`,
        'BackupChecksumMismatch'
      );
    const dir = await mkdtemp(path.join(this.workDir, 'backup-'));
    const file = path.join(dir, 'values.yaml');
    await writeFile(file, text, { mode: 0o600 });
    return { file, remove: () => rm(dir, { recursive: true, force: true }) };
  }
}
