/**
 * runDbMigrationJob (activities/db-migration-job.ts) in a MockActivityEnvironment, with a recording
 * CommandRunner that answers canned kubectl output per command (get / delete / apply): which Job it
 * applies, what it does with a Job of the same name already in the cluster, and the exact argv.
 */
import { MockActivityEnvironment } from '@temporalio/testing';
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { failureOf } from '../helpers/recorder';
import {
  runDbMigrationJob,
  upgradeLabelValue,
  UPGRADE_ID_ANNOTATION,
  UPGRADE_LABEL,
  type DbMigrationJobInput,
  type DbMigrationJobResult,
} from '../../activities/db-migration-job';
import type { CommandRunner } from '../../activities/exec';
import type { ClusterRef } from '../../runbook/types';
import { RecordingLogger } from '../helpers/recording-logger';

const FIXTURE = fileURLToPath(new URL('../../sandbox/fixtures/db-migration-job.yaml', import.meta.url));
const cluster: ClusterRef = {
  name: 'global',
  kubeconfig: '/kc/global.yaml',
  context: 'admin',
  namespace: 'skoala-system',
};
const TARGET = ['--kubeconfig', '/kc/global.yaml', '--context', 'admin'];
const GET = [
  'kubectl',
  ...TARGET,
  'get',
  'job',
  'skoala-db-upgrade',
  '-n',
  'skoala-system',
  '--ignore-not-found',
  '-o',
  'json',
];
const DELETE = [
  'kubectl',
  ...TARGET,
  '-n',
  'skoala-system',
  'delete',
  'job',
  'skoala-db-upgrade',
  '--cascade=background',
  '--wait=false',
  '--ignore-not-found',
];
/** The watch between two reads of a running Job (pollMs 5 -> at least 1 s). */
const WAIT = [
  'kubectl',
  ...TARGET,
  'wait',
  '-n',
  'skoala-system',
  '--for=condition=complete',
  'job/skoala-db-upgrade',
  '--timeout=1s',
];
const applyOf = (file: string) => ['kubectl', ...TARGET, 'apply', '-n', 'skoala-system', '-f', file, '-o', 'name'];

type Verb = 'get' | 'delete' | 'apply' | 'wait';
type Reply = string | ((argv: string[]) => string | Promise<string>);

/** Records every call; answers each verb from its own queue of canned replies, in order. */
function recorder(replies: Partial<Record<Verb, Reply[]>>): { run: CommandRunner; argvs: string[][] } {
  const argvs: string[][] = [];
  const run: CommandRunner = async (tool, argv) => {
    argvs.push([tool, ...argv]);
    const verb = (['get', 'delete', 'apply', 'wait'] as const).find((v) => argv.includes(v));
    // `kubectl wait` ends (here at once) and the next read tells what happened.
    const reply = verb ? (replies[verb]?.shift() ?? (verb === 'wait' ? '' : undefined)) : undefined;
    if (reply === undefined) throw new Error(`unexpected command: ${tool} ${argv.join(' ')}`);
    return { stdout: typeof reply === 'function' ? await reply(argv) : reply, stderr: '' };
  };
  return { run, argvs };
}

/** `kubectl get job -o json` of skoala-db-upgrade: active when no conditions are given. */
const job = (opts: { uid: string; upgradeId?: string; conditions?: object[] }): string =>
  JSON.stringify({
    apiVersion: 'batch/v1',
    kind: 'Job',
    metadata: {
      name: 'skoala-db-upgrade',
      namespace: 'skoala-system',
      uid: opts.uid,
      ...(opts.upgradeId ? { annotations: { [UPGRADE_ID_ANNOTATION]: opts.upgradeId } } : {}),
    },
    status: opts.conditions ? { conditions: opts.conditions } : { active: 1 },
  });
const COMPLETE = [
  { type: 'SuccessCriteriaMet', status: 'True' },
  { type: 'Complete', status: 'True' },
];
const FAILED = [
  { type: 'FailureTarget', status: 'True', reason: 'BackoffLimitExceeded' },
  {
    type: 'Failed',
    status: 'True',
    reason: 'BackoffLimitExceeded',
    message: 'Job has reached the specified backoff limit',
  },
];

let dir: string;
let workDir: string;
let logger: RecordingLogger;
let env: MockActivityEnvironment;
let beats: unknown[];
beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'skoala-db-job-'));
  workDir = path.join(dir, 'work');
  await mkdir(workDir);
  logger = new RecordingLogger();
  env = new MockActivityEnvironment(undefined, { logger });
  beats = [];
  env.on('heartbeat', (d: unknown) => beats.push(d));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const activity = (run: CommandRunner) => (input: DbMigrationJobInput) =>
  runDbMigrationJob({ run, pollMs: 5, workDir }, input);
const act = (run: CommandRunner, input: DbMigrationJobInput): Promise<DbMigrationJobResult> =>
  env.run(activity(run), input);

interface AppliedJob {
  apiVersion: string;
  kind: string;
  metadata: { name: string; labels: Record<string, string>; annotations: Record<string, string> };
  spec: { template: { spec: { containers: { image: string }[] } } };
}

/** An apply reply that keeps what was applied: the temp file is read while kubectl would read it. */
function applyCapture(into: { file?: string; job?: AppliedJob }): Reply {
  return async (argv) => {
    into.file = argv[argv.indexOf('-f') + 1];
    into.job = parse(await readFile(into.file ?? '', 'utf8')) as AppliedJob;
    return 'job.batch/skoala-db-upgrade\n';
  };
}

const input: DbMigrationJobInput = { upgradeId: 'skoala-upgrade-prod-0.19.2', cluster, manifest: FIXTURE };

describe('runDbMigrationJob', () => {
  it('no Job yet: applies the manifest stamped with this upgrade, waits for Complete, removes the temp file', async () => {
    const applied: { file?: string; job?: AppliedJob } = {};
    const r = recorder({
      get: [
        '',
        job({ uid: 'u1', upgradeId: input.upgradeId }),
        job({ uid: 'u1', upgradeId: input.upgradeId, conditions: COMPLETE }),
      ],
      apply: [applyCapture(applied)],
    });
    await expect(act(r.run, input)).resolves.toEqual({ job: 'job.batch/skoala-db-upgrade' });
    const file = applied.file ?? '';
    expect(path.dirname(path.dirname(file))).toBe(workDir);
    expect(r.argvs).toEqual([GET, applyOf(file), GET, WAIT, GET]);
    expect(applied.job).toMatchObject({
      apiVersion: 'batch/v1',
      kind: 'Job',
      metadata: {
        name: 'skoala-db-upgrade',
        // The manifest's own labels are kept.
        labels: { 'app.kubernetes.io/part-of': 'skoala', [UPGRADE_LABEL]: 'skoala-upgrade-prod-0.19.2' },
        annotations: { [UPGRADE_ID_ANNOTATION]: 'skoala-upgrade-prod-0.19.2' },
      },
      spec: { template: { spec: { containers: [{ image: 'release.daocloud.io/skoala/sweet:v0.19.0' }] } } },
    });
    expect(await readdir(workDir)).toEqual([]);
    expect(beats).toEqual([{ waitingFor: 'job.batch/skoala-db-upgrade' }]);
  });

  it('a Complete Job of an earlier upgrade is deleted (waiting until it is gone), then this one is applied', async () => {
    const applied: { file?: string; job?: AppliedJob } = {};
    const r = recorder({
      get: [
        job({ uid: 'old', conditions: COMPLETE }),
        job({ uid: 'old', conditions: COMPLETE }), // still being deleted
        '',
        job({ uid: 'new', upgradeId: input.upgradeId, conditions: COMPLETE }),
      ],
      delete: ['job.batch "skoala-db-upgrade" deleted\n'],
      apply: [applyCapture(applied)],
    });
    await expect(act(r.run, input)).resolves.toEqual({
      job: 'job.batch/skoala-db-upgrade',
      replaced: 'skoala-db-upgrade',
    });
    expect(r.argvs).toEqual([GET, DELETE, GET, GET, applyOf(applied.file ?? ''), GET]);
    expect(applied.job?.metadata.annotations[UPGRADE_ID_ANNOTATION]).toBe(input.upgradeId);
    expect(beats).toEqual([{ deleting: 'job.batch/skoala-db-upgrade' }]);
    expect(logger.entries).toContainEqual(
      expect.objectContaining({
        level: 'WARN',
        meta: expect.objectContaining({ job: 'skoala-db-upgrade', from: 'an earlier upgrade', state: 'Complete' }),
      })
    );
  });

  it('a Failed Job of another upgrade is stale too: replaced, not taken for this upgrade', async () => {
    const r = recorder({
      get: [
        job({ uid: 'old', upgradeId: 'upgrade-a', conditions: FAILED }),
        '',
        job({ uid: 'new', upgradeId: input.upgradeId, conditions: COMPLETE }),
      ],
      delete: [''],
      apply: ['job.batch/skoala-db-upgrade\n'],
    });
    await expect(act(r.run, input)).resolves.toEqual({
      job: 'job.batch/skoala-db-upgrade',
      replaced: 'skoala-db-upgrade',
    });
    expect(r.argvs.map((a) => a.find((x) => ['get', 'delete', 'apply'].includes(x)))).toEqual([
      'get',
      'delete',
      'get',
      'apply',
      'get',
    ]);
    expect(logger.entries.find((e) => e.level === 'WARN')?.meta).toMatchObject({
      from: 'upgrade upgrade-a',
      state: 'Failed',
    });
  });

  it("this upgrade's own Job (a retried activity) is waited for, never re-applied or deleted", async () => {
    const r = recorder({
      get: [
        job({ uid: 'mine', upgradeId: input.upgradeId }),
        job({ uid: 'mine', upgradeId: input.upgradeId }),
        job({ uid: 'mine', upgradeId: input.upgradeId, conditions: COMPLETE }),
      ],
    });
    await expect(act(r.run, input)).resolves.toEqual({ job: 'job.batch/skoala-db-upgrade' });
    expect(r.argvs).toEqual([GET, GET, WAIT, GET]);
  });

  it("this upgrade's own Job failed: non-retryable with the Job's reason, nothing re-applied", async () => {
    const r = recorder({
      get: [
        job({ uid: 'mine', upgradeId: input.upgradeId, conditions: FAILED }),
        job({ uid: 'mine', upgradeId: input.upgradeId, conditions: FAILED }),
      ],
    });
    const err = await failureOf(act(r.run, input));
    expect(err).toMatchObject({ type: 'DbMigrationJobFailed', nonRetryable: true });
    expect(err.message).toBe(
      'DB-migration job.batch/skoala-db-upgrade failed on global: BackoffLimitExceeded: Job has reached the specified backoff limit; read its logs, then delete it to run it again: kubectl --kubeconfig /kc/global.yaml --context admin -n skoala-system delete job skoala-db-upgrade'
    );
    expect(r.argvs).toEqual([GET, GET]);
  });

  it('a Job of another upgrade still running: non-retryable, with the exact delete command, nothing changed', async () => {
    const r = recorder({ get: [job({ uid: 'theirs', upgradeId: 'upgrade-a' })] });
    const err = await failureOf(act(r.run, input));
    expect(err).toMatchObject({ type: 'DbMigrationJobBusy', nonRetryable: true });
    expect(err.message).toBe(
      'DB-migration Job skoala-db-upgrade on global is still running, from upgrade upgrade-a; wait for it to finish, or delete it: ' +
        'kubectl --kubeconfig /kc/global.yaml --context admin -n skoala-system delete job skoala-db-upgrade'
    );
    expect(r.argvs).toEqual([GET]);
  });

  it('a manifest that is not exactly one batch/v1 Job is refused before kubectl runs', async () => {
    const cases: [string, string][] = [
      ['apiVersion: v1\nkind: ConfigMap\nmetadata: {name: skoala-db}\n', 'found v1 ConfigMap'],
      [
        'apiVersion: batch/v1\nkind: Job\nmetadata: {name: a}\n---\napiVersion: batch/v1\nkind: Job\nmetadata: {name: b}\n',
        '2 documents',
      ],
      ['# nothing\n', '0 documents'],
      ['apiVersion: batch/v1\nkind: Job\nmetadata: {}\n', 'no metadata.name'],
      [
        'apiVersion: batch/v1\nkind: Job\nmetadata: {name: a, namespace: default}\n',
        'namespace default is not skoala-system',
      ],
    ];
    for (const [text, why] of cases) {
      const manifest = path.join(dir, 'job.yaml');
      await writeFile(manifest, text);
      const r = recorder({});
      const err = await failureOf(act(r.run, { ...input, manifest }));
      expect(err).toMatchObject({ type: 'InvalidManifest', nonRetryable: true });
      expect(err.message).toBe(`${manifest} is not a single batch/v1 Job manifest: ${why}`);
      expect(r.argvs).toEqual([]);
    }
    const broken = path.join(dir, 'broken.yaml');
    await writeFile(broken, 'apiVersion: batch/v1\nkind: [Job\n');
    const err = await failureOf(act(recorder({}).run, { ...input, manifest: broken }));
    expect(err).toMatchObject({ type: 'InvalidManifest', nonRetryable: true });
    expect(err.message).toMatch(new RegExp(`^${broken} is not a single batch/v1 Job manifest: .+`));
    // A trailing `---` is not a second document.
    const manifest = path.join(dir, 'trailing.yaml');
    await writeFile(manifest, `${await readFile(FIXTURE, 'utf8')}---\n`);
    const r = recorder({
      get: ['', job({ uid: 'n', upgradeId: input.upgradeId, conditions: COMPLETE })],
      apply: ['job.batch/skoala-db-upgrade\n'],
    });
    await expect(act(r.run, { ...input, manifest })).resolves.toEqual({ job: 'job.batch/skoala-db-upgrade' });
  });

  it('a missing manifest file: non-retryable FileNotFound naming it', async () => {
    const err = await failureOf(act(recorder({}).run, { ...input, manifest: '/nonexistent/job.yaml' }));
    expect(err).toMatchObject({ type: 'FileNotFound', nonRetryable: true });
    expect(err.message).toContain('/nonexistent/job.yaml');
  });

  it('a 100-character upgrade ID: the label is shortened to a prefix and a sha256 suffix, the annotation keeps it whole', async () => {
    const upgradeId = `skoala-upgrade-${'Prod_East.'.repeat(7)}0.19.2`.padEnd(100, 'x');
    expect(upgradeId).toHaveLength(100);
    const applied: { file?: string; job?: AppliedJob } = {};
    const r = recorder({
      get: ['', job({ uid: 'n', upgradeId, conditions: COMPLETE })],
      apply: [applyCapture(applied)],
    });
    await act(r.run, { ...input, upgradeId });
    const label = applied.job?.metadata.labels[UPGRADE_LABEL] ?? '';
    expect(label).toBe(upgradeLabelValue(upgradeId));
    expect(label.length).toBeLessThanOrEqual(63);
    expect(label).toMatch(/^[a-z0-9]([a-z0-9.-]*[a-z0-9])?$/);
    expect(label.startsWith('skoala-upgrade-prod-east.prod-east.')).toBe(true);
    expect(label.endsWith(`-${createHash('sha256').update(upgradeId).digest('hex').slice(0, 10)}`)).toBe(true);
    expect(applied.job?.metadata.annotations[UPGRADE_ID_ANNOTATION]).toBe(upgradeId);
  });
});

describe('upgradeLabelValue', () => {
  it('keeps a valid ID as it is, and makes others valid', () => {
    expect(upgradeLabelValue('skoala-upgrade-prod-east-0.19.2')).toBe('skoala-upgrade-prod-east-0.19.2');
    expect(upgradeLabelValue('Upgrade B/2025_01')).toBe('upgrade-b-2025-01');
    expect(upgradeLabelValue('-x-')).toBe('x');
  });

  it('two long IDs with the same first 63 characters get different labels', () => {
    const a = `${'a'.repeat(70)}-1`;
    const b = `${'a'.repeat(70)}-2`;
    expect(upgradeLabelValue(a)).not.toBe(upgradeLabelValue(b));
    expect(upgradeLabelValue(a)).toHaveLength(63);
  });

  it('an ID with nothing usable is its hash', () => {
    expect(upgradeLabelValue('___')).toBe(createHash('sha256').update('___').digest('hex').slice(0, 10));
  });
});
