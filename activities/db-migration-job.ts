/**
 * The DB-migration Job of one upgrade. A Job of the same name left Complete or Failed by an earlier
 * upgrade must not stand in for this upgrade's migration: each Job is stamped with the upgrade it
 * belongs to, and a finished Job of another upgrade is deleted before this one is applied.
 */
import { Context, log } from '@temporalio/activity';
import { ApplicationFailure, CancelledFailure } from '@temporalio/common';
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { parseAllDocuments, stringify } from 'yaml';
import * as cmd from '../runbook/commands';
import { scrubSecrets } from './errors';
import type { ClusterRef } from '../runbook/types';
import type { CommandRunner } from './exec';

export const UPGRADE_LABEL = 'skoala-upgrade.io/upgrade';
export const UPGRADE_ID_ANNOTATION = 'skoala-upgrade.io/upgrade-id';

export interface DbMigrationJobDeps {
  run: CommandRunner;
  pollMs: number;
  workDir: string;
}

export interface DbMigrationJobInput {
  upgradeId: string;
  cluster: ClusterRef;
  manifest: string;
}

export interface DbMigrationJobResult {
  /** As kubectl names it: `job.batch/NAME`. */
  job: string;
  /** The Job's name, when a finished Job of another upgrade was deleted first. */
  replaced?: string;
}

interface JobCondition {
  type: string;
  status: string;
  reason?: string;
  message?: string;
}

interface JobObject {
  metadata?: { name?: string; uid?: string; annotations?: Record<string, string> };
  status?: { conditions?: JobCondition[] };
}

const LABEL_MAX = 63;
const HASH_LEN = 10;

/**
 * A label value for an upgrade ID: lowercase, [a-z0-9-.], alphanumeric at both ends, at most 63
 * characters. A shortened value ends in a sha256 of the full ID, so two long IDs sharing a prefix
 * still get different labels. The annotation keeps the full ID; it is what identifies the Job.
 */
export function upgradeLabelValue(upgradeId: string): string {
  const clean = upgradeId
    .toLowerCase()
    .replace(/[^a-z0-9.-]+/g, '-')
    .replace(/^[^a-z0-9]+|[^a-z0-9]+$/g, '');
  if (clean.length > 0 && clean.length <= LABEL_MAX) return clean;
  const hash = createHash('sha256').update(upgradeId).digest('hex').slice(0, HASH_LEN);
  const prefix = clean.slice(0, LABEL_MAX - HASH_LEN - 1).replace(/[^a-z0-9]+$/, '');
  return prefix ? `${prefix}-${hash}` : hash;
}

const condition = (job: JobObject, type: string): JobCondition | undefined =>
  job.status?.conditions?.find((c) => c.type === type && c.status === 'True');

const isFinished = (job: JobObject): boolean => !!(condition(job, 'Complete') ?? condition(job, 'Failed'));

/** For the operator's copy-paste: the same quoting as `npm run plan`. */
const shellLine = (argv: string[]): string =>
  argv.map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`)).join(' ');

const invalid = (manifest: string, why: string): ApplicationFailure =>
  ApplicationFailure.nonRetryable(`${manifest} is not a single batch/v1 Job manifest: ${why}`, 'InvalidManifest');

/** The one Job in the manifest, stamped with the upgrade. */
async function stampedJob(input: DbMigrationJobInput): Promise<{ name: string; yaml: string }> {
  const text = await readFile(input.manifest, 'utf8').catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT')
      throw ApplicationFailure.nonRetryable(
        `DB-migration Job manifest ${input.manifest} does not exist`,
        'FileNotFound'
      );
    throw err;
  });
  // Empty documents (a trailing `---`, comments only) are skipped by kubectl too.
  const docs = parseAllDocuments(text).filter(
    (d) => 'contents' in d && (d.errors.length > 0 || (d.toJS() as unknown) !== null)
  );
  const first = docs[0];
  if (docs.length !== 1 || !first) throw invalid(input.manifest, `${docs.length} documents`);
  if (first.errors.length > 0) throw invalid(input.manifest, first.errors[0]?.message ?? 'YAML error');
  const obj: unknown = first.toJS();
  if (typeof obj !== 'object' || obj === null || Array.isArray(obj)) throw invalid(input.manifest, 'not an object');
  const job = obj as { apiVersion?: unknown; kind?: unknown; metadata?: unknown };
  if (job.apiVersion !== 'batch/v1' || job.kind !== 'Job')
    throw invalid(input.manifest, `found ${String(job.apiVersion)} ${String(job.kind)}`);
  const meta = (typeof job.metadata === 'object' && job.metadata !== null ? job.metadata : {}) as {
    name?: unknown;
    namespace?: unknown;
    labels?: Record<string, string> | null;
    annotations?: Record<string, string> | null;
  };
  if (typeof meta.name !== 'string' || meta.name === '') throw invalid(input.manifest, 'no metadata.name');
  // Applied with -n: a Job naming another namespace would be refused by kubectl, or checked in the wrong place.
  if (meta.namespace !== undefined && meta.namespace !== input.cluster.namespace)
    throw invalid(input.manifest, `namespace ${String(meta.namespace)} is not ${input.cluster.namespace}`);
  meta.labels = { ...(meta.labels ?? {}), [UPGRADE_LABEL]: upgradeLabelValue(input.upgradeId) };
  meta.annotations = { ...(meta.annotations ?? {}), [UPGRADE_ID_ANNOTATION]: input.upgradeId };
  job.metadata = meta;
  return { name: meta.name, yaml: stringify(job) };
}

export async function runDbMigrationJob(
  deps: DbMigrationJobDeps,
  input: DbMigrationJobInput
): Promise<DbMigrationJobResult> {
  const { run } = deps;
  const { cluster } = input;
  const { name, yaml } = await stampedJob(input);
  const ref = `job.batch/${name}`;
  const read = async (): Promise<JobObject | undefined> => {
    const out = (await run('kubectl', cmd.kubectlGetJobJson(cluster, name))).stdout.trim();
    return out ? (JSON.parse(out) as JobObject) : undefined;
  };
  const pause = async (beat: Record<string, string>): Promise<void> => {
    Context.current().heartbeat(beat);
    await Context.current().sleep(deps.pollMs);
  };
  /** Between two reads of a running Job: watch it (a completion ends the wait at once) rather than sleep. */
  const watch = async (beat: Record<string, string>): Promise<void> => {
    Context.current().heartbeat(beat);
    const seconds = Math.max(1, Math.ceil(deps.pollMs / 1000));
    // A timeout (still running, or failed) or an unreachable cluster: the next read says which.
    await run('kubectl', cmd.kubectlWaitJobComplete(cluster, name, seconds)).catch((err: unknown) => {
      if (err instanceof CancelledFailure) throw err;
    });
  };

  let replaced: string | undefined;
  let existing = await read();
  if (existing && existing.metadata?.annotations?.[UPGRADE_ID_ANNOTATION] !== input.upgradeId) {
    const owner = existing.metadata?.annotations?.[UPGRADE_ID_ANNOTATION];
    const from = owner ? `upgrade ${owner}` : 'an earlier upgrade';
    if (!isFinished(existing)) {
      throw ApplicationFailure.nonRetryable(
        `DB-migration Job ${name} on ${cluster.name} is still running, from ${from}; wait for it to finish, or delete it: ${shellLine(['kubectl', ...cmd.kubectlDeleteJob(cluster, name)])}`,
        'DbMigrationJobBusy'
      );
    }
    log.warn('deleting a finished DB-migration Job of another upgrade before running this one', {
      cluster: cluster.name,
      job: name,
      from,
      state: condition(existing, 'Complete') ? 'Complete' : 'Failed',
    });
    const uid = existing.metadata?.uid;
    await run('kubectl', cmd.kubectlDeleteJobBackground(cluster, name));
    // Gone, or replaced by a new object (another uid): either way the stale Job no longer answers.
    existing = await read();
    while (existing && existing.metadata?.uid === uid) {
      await pause({ deleting: ref });
      existing = await read();
    }
    if (existing)
      throw ApplicationFailure.create({
        message: `DB-migration Job ${name} on ${cluster.name} was re-created by someone else while the stale one was deleted`,
        type: 'DbMigrationJobConflict',
      });
    replaced = name;
  }

  let job = ref;
  if (!existing) {
    // Owner-only scratch under workDir; removed whatever happens.
    await mkdir(deps.workDir, { recursive: true });
    const tmp = await mkdtemp(path.join(deps.workDir, 'db-job-'));
    try {
      const file = path.join(tmp, path.basename(input.manifest));
      await writeFile(file, yaml, { mode: 0o600 });
      job = (await run('kubectl', cmd.kubectlApplyJob(cluster, file))).stdout.trim().split('\n')[0] || ref;
    } finally {
      await rm(tmp, { recursive: true, force: true });
    }
  }
  // else: ours, applied by an earlier attempt of this activity: wait for it, never apply twice.

  for (;;) {
    const current = await read();
    if (!current)
      throw ApplicationFailure.create({
        message: `DB-migration ${job} on ${cluster.name} disappeared while it ran`,
        type: 'DbMigrationJobGone',
      });
    if (condition(current, 'Complete')) return replaced ? { job, replaced } : { job };
    const failed = condition(current, 'Failed');
    if (failed) {
      throw ApplicationFailure.nonRetryable(
        // It stays this upgrade's Job: a rerun would wait on it again, so say how to clear it.
        `DB-migration ${job} failed on ${cluster.name}: ${failed.reason ?? 'Failed'}${failed.message ? `: ${scrubSecrets(failed.message)}` : ''}; read its logs, then delete it to run it again: kubectl ${cmd.kubectlDeleteJob(cluster, name).join(' ')}`,
        'DbMigrationJobFailed'
      );
    }
    await watch({ waitingFor: job });
  }
}
