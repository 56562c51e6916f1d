/**
 * Values backups hold secrets (database passwords), so they never travel through workflow history:
 * they are written here, owner-only, and the workflow only sees a reference and a checksum.
 */
import { ApplicationFailure } from '@temporalio/common';
import { createHash } from 'node:crypto';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { BackupRef, ReleaseName } from '../runbook/types';

export interface BackupKey {
  upgradeId: string;
  cluster: string;
  release: ReleaseName;
  /** The revision whose values the backup holds: a later upgrade's backup never overwrites it. */
  revision: number;
}

export const sha256 = (text: string): string => createHash('sha256').update(text).digest('hex');

export class BackupStore {
  constructor(readonly dir: string) {}

  ref(key: BackupKey): string {
    return path.join(key.upgradeId, key.cluster, `${key.release}-revision-${key.revision}.yaml`);
  }

  pathOf(ref: string): string {
    const full = path.resolve(this.dir, ref);
    // A ref comes back from workflow history: never let it point outside the store.
    if (!full.startsWith(path.resolve(this.dir) + path.sep)) throw new Error(`backup ref escapes the store: ${ref}`);
    return full;
  }

  /** The existing backup for this key, if any: a retry must reuse it, never re-capture. */
  async find(key: BackupKey): Promise<BackupRef | undefined> {
    const ref = this.ref(key);
    try {
      const text = await readFile(this.pathOf(ref), 'utf8');
      return { ref, sha256: sha256(text), reused: true };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
  }

  /** Writes atomically (temp file + rename) so a crash never leaves a half backup that looks complete. */
  async save(key: BackupKey, text: string): Promise<BackupRef> {
    const ref = this.ref(key);
    const file = this.pathOf(ref);
    await mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
    const tmp = `${file}.${process.pid}.tmp`;
    await writeFile(tmp, text, { mode: 0o600 });
    await rename(tmp, file);
    return { ref, sha256: sha256(text), reused: false };
  }

  /** Reads a backup and checks it against the checksum recorded in history. */
  async verified(ref: BackupRef): Promise<string> {
    const file = this.pathOf(ref.ref);
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch {
      // Retryable: with several worker hosts on one queue, another host may hold it (see README).
      throw ApplicationFailure.retryable(
        `values backup ${ref.ref} is not in ${this.dir} on this worker host`,
        'BackupNotFound'
      );
    }
    if (sha256(text) !== ref.sha256) {
      throw ApplicationFailure.nonRetryable(
        `values backup ${file} does not match the checksum recorded when it was taken`,
        'BackupChecksumMismatch'
      );
    }
    return file;
  }
}
