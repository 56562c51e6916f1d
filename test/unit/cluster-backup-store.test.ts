/**
 * `backupStore: cluster` (activities/cluster-backup-store.ts): the Secret's name and content, the
 * exact kubectl calls with a recording CommandRunner, the owner-only temp file helm reads, and the
 * same store reached through createActivities (backupValues, upgradeRelease).
 */
import { chartArchive, pullInto } from '../helpers/chart-archive';
import { failureOf, recorder } from '../helpers/recorder';
import { ApplicationFailure } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createActivities } from '../../activities';
import type { BackupKey } from '../../activities/backup-store';
import {
  BACKUP_LABEL,
  backupSecret,
  backupSecretName,
  ClusterBackupStore,
} from '../../activities/cluster-backup-store';
import { commandFailure } from '../../activities/errors';
import type { CommandRunner } from '../../activities/exec';
import type { BackupRef, ClusterRef, Step } from '../../runbook/types';
import { RecordingLogger } from '../helpers/recording-logger';

const NS = 'skoala-system';
const w1: ClusterRef = { name: 'w1', kubeconfig: '/kc/w1.yaml', namespace: NS };
const ctxOnly: ClusterRef = { name: 'w2', context: 'w2-admin', namespace: 'skoala-engine' };
const UID = 'u-1';
const T0 = '2025-01-01T00:00:00Z';
const VALUES = 'hive:\n  configMap:\n    data:\n      database:\n        password: hunter2\n';
const KEY: BackupKey = { upgradeId: UID, cluster: 'w1', release: 'skoala-init', revision: 3 };

const sha = (text: string): string => createHash('sha256').update(text).digest('hex');
const b64 = (text: string): string => Buffer.from(text).toString('base64');

/** A Secret name Kubernetes accepts: a DNS-1123 subdomain of at most 253 characters. */
const DNS_1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
/** A label value Kubernetes accepts (at most 63 characters). */
const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;

const getSecretArgv = (c: ClusterRef, name: string): string[] => [
  'kubectl',
  ...(c.kubeconfig ? ['--kubeconfig', c.kubeconfig] : []),
  ...(c.context ? ['--context', c.context] : []),
  'get',
  'secret',
  name,
  '-n',
  c.namespace,
  '--ignore-not-found',
  '-o',
  'json',
];

const createArgv = (c: ClusterRef): string[] => [
  'kubectl',
  ...(c.kubeconfig ? ['--kubeconfig', c.kubeconfig] : []),
  ...(c.context ? ['--context', c.context] : []),
  'create',
  '-n',
  c.namespace,
  '-f',
  '-',
  '-o',
  'name',
];

/** What `kubectl get secret -o json` prints for a backup Secret the API server stored. */
const storedSecret = (key: BackupKey, namespace: string, text: string): string => {
  const secret = JSON.parse(backupSecret(key, namespace, text)) as { metadata: Record<string, unknown> };
  return `${JSON.stringify(
    { ...secret, metadata: { ...secret.metadata, uid: 'abc', resourceVersion: '1', creationTimestamp: T0 } },
    null,
    4
  )}\n`;
};

let dir: string;
let backupDir: string;
let workDir: string;
let env: MockActivityEnvironment;
beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'skoala-cluster-backup-'));
  backupDir = path.join(dir, 'backups');
  workDir = path.join(dir, 'work');
  await mkdir(workDir);
  env = new MockActivityEnvironment(undefined, { logger: new RecordingLogger() });
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('backupSecretName', () => {
  it('is a valid Secret name (DNS-1123, at most 253 characters) for any upgrade ID', () => {
    const ids = [
      UID,
      'Upgrade/With Spaces_and.UPPER:case',
      'x'.repeat(1000),
      '升级-1',
      '',
      'skoala-upgrade-sandbox-0.19.2-2025-01-01T00:00:00.000Z',
    ];
    for (const upgradeId of ids)
      for (const release of ['skoala', 'skoala-init'] as const)
        for (const revision of [1, 3, 123456789]) {
          const name = backupSecretName({ upgradeId, cluster: 'w1', release, revision });
          expect(name, `${upgradeId} ${release} ${revision}`).toMatch(DNS_1123_SUBDOMAIN);
          expect(name.length).toBeLessThanOrEqual(253);
        }
  });

  it('is stable: the same key gives the same name (a retry finds its backup)', () => {
    expect(backupSecretName({ ...KEY })).toBe(backupSecretName(KEY));
    expect(backupSecretName(KEY)).toBe(backupSecretName({ ...KEY, upgradeId: ['u', '1'].join('-') }));
  });

  it('differs per upgrade ID, release and revision', () => {
    const names = [
      backupSecretName(KEY),
      backupSecretName({ ...KEY, upgradeId: 'u-2' }),
      backupSecretName({ ...KEY, upgradeId: `${'x'.repeat(300)}a` }),
      backupSecretName({ ...KEY, upgradeId: `${'x'.repeat(300)}b` }),
      backupSecretName({ ...KEY, release: 'skoala' }),
      backupSecretName({ ...KEY, revision: 4 }),
      backupSecretName({ ...KEY, revision: 33 }),
    ];
    expect(new Set(names).size).toBe(names.length);
  });

  it('names the release and the revision, not the upgrade ID itself', () => {
    const name = backupSecretName({ ...KEY, upgradeId: 'My-Upgrade', revision: 12 });
    expect(name).toContain('skoala-init');
    expect(name).toContain('r12');
    expect(name.toLowerCase()).not.toContain('my-upgrade');
  });
});

describe('backupSecret', () => {
  const secret = () =>
    JSON.parse(backupSecret(KEY, NS, VALUES)) as {
      apiVersion: string;
      kind: string;
      type: string;
      immutable: boolean;
      metadata: {
        name: string;
        namespace: string;
        labels: Record<string, string>;
        annotations: Record<string, string>;
      };
      data: Record<string, string>;
    };

  it('is an immutable v1 Secret named by backupSecretName, in the given namespace', () => {
    const s = secret();
    expect(s).toMatchObject({ apiVersion: 'v1', kind: 'Secret', type: 'Opaque', immutable: true });
    expect(s.metadata.name).toBe(backupSecretName(KEY));
    expect(s.metadata.namespace).toBe(NS);
    expect(JSON.parse(backupSecret(KEY, 'other-ns', VALUES))).toMatchObject({ metadata: { namespace: 'other-ns' } });
  });

  it('is labelled as a values backup of this release and revision, with valid label values', () => {
    const { labels } = secret().metadata;
    // The label e2e tests and operators select backups by.
    expect(BACKUP_LABEL).toBe('skoala-upgrade.io/values-backup');
    expect(labels).toMatchObject({
      'skoala-upgrade.io/values-backup': 'true',
      'skoala-upgrade.io/release': 'skoala-init',
      'skoala-upgrade.io/revision': '3',
      'app.kubernetes.io/managed-by': 'skoala-upgrade',
    });
    for (const upgradeId of [UID, 'x'.repeat(500), 'Upgrade/With Spaces']) {
      const all = (JSON.parse(backupSecret({ ...KEY, upgradeId }, NS, VALUES)) as ReturnType<typeof secret>).metadata
        .labels;
      for (const [k, v] of Object.entries(all)) {
        expect(v, k).toMatch(LABEL_VALUE);
        expect(v.length, k).toBeLessThanOrEqual(63);
      }
    }
  });

  it('carries the full upgrade ID as an annotation', () => {
    const long = `upgrade ${'x'.repeat(400)} end`;
    const s = JSON.parse(backupSecret({ ...KEY, upgradeId: long }, NS, VALUES)) as ReturnType<typeof secret>;
    expect(s.metadata.annotations['skoala-upgrade.io/upgrade-id']).toBe(long);
    expect(secret().metadata.annotations['skoala-upgrade.io/upgrade-id']).toBe(UID);
  });

  it('holds exactly the values text, base64 under values.yaml (UTF-8 too), never in clear', () => {
    const s = secret();
    expect(Object.keys(s.data)).toEqual(['values.yaml']);
    expect(s.data['values.yaml']).toBe(b64(VALUES));
    expect(Buffer.from(s.data['values.yaml'] as string, 'base64').toString('utf8')).toBe(VALUES);
    expect(backupSecret(KEY, NS, VALUES)).not.toContain('hunter2');
    const unicode = 'banner: "升级中 ✓"\n';
    const u = JSON.parse(backupSecret(KEY, NS, unicode)) as ReturnType<typeof secret>;
    expect(Buffer.from(u.data['values.yaml'] as string, 'base64').toString('utf8')).toBe(unicode);
  });
});

describe('ClusterBackupStore', () => {
  const name = backupSecretName(KEY);
  const ref: BackupRef = { ref: `${NS}/${name}`, sha256: sha(VALUES), reused: false, store: 'cluster' };

  describe('save', () => {
    it('creates the Secret with kubectl create -f -: the Secret on stdin, the values never in argv', async () => {
      const r = recorder(`secret/${name}\n`);
      const saved = await new ClusterBackupStore(r.run, workDir).save(w1, KEY, VALUES);
      expect(r.argvs()).toEqual([createArgv(w1)]);
      expect(r.calls[0]?.opts).toEqual({ cluster: 'w1', input: backupSecret(KEY, NS, VALUES) });
      const argv = r.calls[0]?.argv.join(' ') ?? '';
      expect(argv).not.toContain('hunter2');
      expect(argv).not.toContain(b64(VALUES));
      expect(saved).toEqual({ ref: `${NS}/${name}`, sha256: sha(VALUES), reused: false, store: 'cluster' });
      expect(JSON.stringify(saved)).not.toContain('hunter2');
      // nothing is written on the worker host
      expect(await readdir(workDir)).toEqual([]);
      expect(existsSync(backupDir)).toBe(false);
    });

    it("targets the cluster's context and namespace", async () => {
      const r = recorder('');
      const saved = await new ClusterBackupStore(r.run, workDir).save(ctxOnly, KEY, VALUES);
      expect(r.argvs()).toEqual([createArgv(ctxOnly)]);
      expect(r.calls[0]?.opts).toEqual({ cluster: 'w2', input: backupSecret(KEY, 'skoala-engine', VALUES) });
      expect(saved.ref).toBe(`skoala-engine/${name}`);
    });

    it('a kubectl failure is passed on (nothing is claimed as saved)', async () => {
      const failure = commandFailure({
        tool: 'kubectl',
        argv: createArgv(w1).slice(1),
        exitCode: 1,
        stderr: 'Error from server (Forbidden): secrets is forbidden: User "x" cannot create resource "secrets"',
        cluster: 'w1',
      });
      const r = recorder(failure);
      const err = await failureOf(new ClusterBackupStore(r.run, workDir).save(w1, KEY, VALUES));
      expect(err).toBe(failure);
    });
  });

  describe('find', () => {
    it('empty output (--ignore-not-found): undefined', async () => {
      for (const out of ['', '\n', '  \n']) {
        const r = recorder(out);
        expect(await new ClusterBackupStore(r.run, workDir).find(w1, KEY)).toBeUndefined();
        expect(r.argvs()).toEqual([getSecretArgv(w1, name)]);
        expect(r.calls[0]?.opts).toEqual({ cluster: 'w1' });
      }
    });

    it('present: a reused reference with the checksum of its values', async () => {
      const r = recorder(storedSecret(KEY, NS, VALUES));
      const found = await new ClusterBackupStore(r.run, workDir).find(w1, KEY);
      expect(found).toEqual({ ref: `${NS}/${name}`, sha256: sha(VALUES), reused: true, store: 'cluster' });
      expect(r.argvs()).toEqual([getSecretArgv(w1, name)]);
    });

    it("looks up this key's Secret in the cluster's namespace", async () => {
      const key = { ...KEY, upgradeId: 'u-9', release: 'skoala' as const, revision: 8 };
      const r = recorder(storedSecret(key, 'skoala-engine', 'a: 1\n'));
      const found = await new ClusterBackupStore(r.run, workDir).find(ctxOnly, key);
      expect(r.argvs()).toEqual([getSecretArgv(ctxOnly, backupSecretName(key))]);
      expect(found).toEqual({
        ref: `skoala-engine/${backupSecretName(key)}`,
        sha256: sha('a: 1\n'),
        reused: true,
        store: 'cluster',
      });
    });
  });

  describe('open', () => {
    it('writes the values to an owner-only temp file under workDir; remove() deletes it', async () => {
      const r = recorder(storedSecret(KEY, NS, VALUES));
      const opened = await new ClusterBackupStore(r.run, workDir).open(w1, ref);
      expect(r.argvs()).toEqual([getSecretArgv(w1, name)]);
      expect(r.calls[0]?.opts).toEqual({ cluster: 'w1' });
      expect(path.relative(workDir, opened.file).startsWith('..')).toBe(false);
      expect(path.isAbsolute(path.relative(workDir, opened.file))).toBe(false);
      expect(await readFile(opened.file, 'utf8')).toBe(VALUES);
      expect((await stat(opened.file)).mode & 0o777).toBe(0o600);
      expect((await stat(path.dirname(opened.file))).mode & 0o077).toBe(0);
      await opened.remove();
      expect(existsSync(opened.file)).toBe(false);
      expect(await readdir(workDir)).toEqual([]);
    });

    it('two opens are two files: removing one leaves the other', async () => {
      const r = recorder(storedSecret(KEY, NS, VALUES), storedSecret(KEY, NS, VALUES));
      const store = new ClusterBackupStore(r.run, workDir);
      const a = await store.open(w1, ref);
      const b = await store.open(w1, ref);
      expect(a.file).not.toBe(b.file);
      await a.remove();
      expect(existsSync(a.file)).toBe(false);
      expect(await readFile(b.file, 'utf8')).toBe(VALUES);
      await b.remove();
      expect(await readdir(workDir)).toEqual([]);
    });

    it('a Secret whose values do not match the recorded checksum: BackupChecksumMismatch, non-retryable, no file', async () => {
      const r = recorder(storedSecret(KEY, NS, 'hive: {}\n'));
      const err = await failureOf(new ClusterBackupStore(r.run, workDir).open(w1, ref));
      expect(err).toMatchObject({ type: 'BackupChecksumMismatch', nonRetryable: true });
      expect(err.message).toContain(`${NS}/${name}`);
      expect(err.message).toContain('w1');
      expect(err.message).not.toContain('hunter2');
      expect(await readdir(workDir)).toEqual([]);
    });

    it('a missing Secret: BackupNotFound, non-retryable, naming the ref and the cluster', async () => {
      const r = recorder('');
      const err = await failureOf(new ClusterBackupStore(r.run, workDir).open(w1, ref));
      expect(err).toMatchObject({ type: 'BackupNotFound', nonRetryable: true });
      expect(err.message).toContain(`${NS}/${name}`);
      expect(err.message).toMatch(/\bw1\b/);
      expect(r.argvs()).toEqual([getSecretArgv(w1, name)]);
      expect(await readdir(workDir)).toEqual([]);
    });
  });
});

describe('through createActivities', () => {
  /** Runs an activity in the mock environment, keeping its argument and result types. */
  function act<A extends unknown[], R>(fn: (...args: A) => Promise<R>, ...args: NoInfer<A>): Promise<R> {
    return env.run<A, R, (...args: A) => Promise<R>>(fn, ...args);
  }
  const activitiesWith = (run: CommandRunner) =>
    // The release lease's kubectl calls are covered in activities.test.ts; here the backup's path only.
    createActivities({ helm: 'helm', kubectl: 'kubectl', backupDir, workDir, run, jobPollMs: 5, releaseLeases: false });

  const GET_VALUES_W1 = [
    'helm',
    '--kubeconfig',
    '/kc/w1.yaml',
    'get',
    'values',
    'skoala-init',
    '-n',
    NS,
    '--revision',
    '3',
    '-o',
    'yaml',
  ];
  const name = backupSecretName(KEY);

  describe('backupValues with store: cluster', () => {
    const input = {
      upgradeId: UID,
      cluster: w1,
      release: 'skoala-init' as const,
      revision: 3,
      store: 'cluster' as const,
    };

    it('reads helm get values, then creates the Secret; a second call finds it and runs no helm', async () => {
      const r = recorder('', VALUES, `secret/${name}\n`, () => storedSecret(KEY, NS, VALUES));
      const acts = activitiesWith(r.run);
      const first = await act(acts.backupValues, input);
      expect(r.argvs()).toEqual([getSecretArgv(w1, name), GET_VALUES_W1, createArgv(w1)]);
      expect(r.calls[2]?.opts).toEqual({ cluster: 'w1', input: backupSecret(KEY, NS, VALUES) });
      expect(first).toEqual({ ref: `${NS}/${name}`, sha256: sha(VALUES), reused: false, store: 'cluster' });
      expect(JSON.stringify(first)).not.toContain('hunter2');

      const second = await act(acts.backupValues, input);
      expect(second).toEqual({ ...first, reused: true });
      expect(r.argvs()).toEqual([getSecretArgv(w1, name), GET_VALUES_W1, createArgv(w1), getSecretArgv(w1, name)]);
      expect(r.argvs().filter((a) => a[0] === 'helm')).toHaveLength(1);
      // no file on the worker host
      expect(existsSync(backupDir)).toBe(false);
      expect(await readdir(workDir)).toEqual([]);
    });

    it('`null` (no user values) is kept as an empty mapping', async () => {
      const r = recorder('', 'null\n', '');
      const ref = await act(activitiesWith(r.run).backupValues, input);
      expect(r.calls[2]?.opts?.input).toBe(backupSecret(KEY, NS, '{}\n'));
      expect(ref.sha256).toBe(sha('{}\n'));
    });

    it('without store the backup is a file on the host and no Secret is read or made', async () => {
      const onHost = { upgradeId: UID, cluster: w1, release: 'skoala-init' as const, revision: 3 };
      const r = recorder(VALUES);
      const ref = await act(activitiesWith(r.run).backupValues, onHost);
      expect(r.argvs()).toEqual([GET_VALUES_W1]);
      expect(ref.store).toBeUndefined();
      expect(await readFile(path.join(backupDir, ref.ref), 'utf8')).toBe(VALUES);
    });
  });

  describe('upgradeRelease with a backup kept in the cluster', () => {
    const REPO = { name: 'skoala', url: 'https://release.daocloud.io/chartrepo/skoala' };
    const REPO_ADD = ['helm', 'repo', 'add', 'skoala', REPO.url, '--force-update'];
    /** `helm pull` of the chart into this host's chart cache (kept there: only the temp files must go). */
    let pull: (argv: string[]) => Promise<string>;
    beforeAll(async () => {
      pull = pullInto(await chartArchive('skoala-init', '0.28.1'));
    });
    const step: Step & { kind: 'upgradeRelease' } = {
      kind: 'upgradeRelease',
      release: 'skoala-init',
      chart: 'skoala-init',
      repo: REPO,
      version: '0.28.1',
      set: [['nacos-operator.image.tag', 'v0.28.1']],
      useBackup: true,
      valuesFiles: ['/v/site.yaml'],
      fromRevision: 3,
    };
    const mark = (revision: number): string => `${sha(UID).slice(0, 20)}.r${revision}`;
    const history = (revs: { revision: number; status: string; version: string; label?: string }[]) => [
      JSON.stringify(
        revs.map((x) => ({
          revision: x.revision,
          updated: T0,
          status: x.status,
          chart: `skoala-init-${x.version}`,
          app_version: x.version,
          description: 'Upgrade complete',
        }))
      ),
      revs
        .map(
          (x) =>
            `${JSON.stringify({
              name: 'skoala-init',
              owner: 'helm',
              status: x.status,
              version: String(x.revision),
              ...(x.label ? { 'skoala-upgrade.io/revision': x.label } : {}),
            })}\n`
        )
        .join(''),
    ];
    const before = history([{ revision: 3, status: 'deployed', version: '0.27.2' }]);
    const after = history([
      { revision: 3, status: 'superseded', version: '0.27.2' },
      { revision: 4, status: 'deployed', version: '0.28.1', label: mark(4) },
    ]);
    const backup: BackupRef = { ref: `${NS}/${name}`, sha256: sha(VALUES), reused: false, store: 'cluster' };

    /** The helm upgrade's answer: checks the -f file while helm "runs", then answers `then`. */
    function helmUpgrade(seen: { file?: string }, then: () => string) {
      return async (argv: string[]): Promise<string> => {
        const file = argv[argv.indexOf('-f') + 1] as string;
        seen.file = file;
        expect(await readFile(file, 'utf8')).toBe(VALUES);
        expect((await stat(file)).mode & 0o777).toBe(0o600);
        return then();
      };
    }

    it('passes -f <temp file under workDir> first, then the site values; the file is gone afterwards', async () => {
      const seen: { file?: string } = {};
      const r = recorder(
        ...before,
        storedSecret(KEY, NS, VALUES),
        '',
        pull,
        helmUpgrade(seen, () => ''),
        ...after
      );
      const out = await act(activitiesWith(r.run).upgradeRelease, { upgradeId: UID, cluster: w1, step, backup });
      expect(out).toEqual({ revision: 4, alreadyDone: false });
      const argvs = r.argvs();
      expect(argvs[2]).toEqual(getSecretArgv(w1, name));
      expect(argvs[3]).toEqual(REPO_ADD);
      expect(argvs[4]?.slice(0, 3)).toEqual(['helm', 'pull', 'skoala/skoala-init']);
      const upgrade = argvs[5] as string[];
      expect(upgrade.slice(0, 4)).toEqual(['helm', '--kubeconfig', '/kc/w1.yaml', 'upgrade']);
      const files = upgrade.flatMap((a, i) => (upgrade[i - 1] === '-f' ? [a] : []));
      expect(files).toEqual([seen.file, '/v/site.yaml']);
      expect(path.relative(workDir, seen.file as string).startsWith('..')).toBe(false);
      expect(upgrade.join(' ')).not.toContain('hunter2');
      expect(existsSync(seen.file as string)).toBe(false);
      expect(await readdir(workDir)).toEqual(['charts']);
      expect(argvs).toHaveLength(8);
    });

    it('helm fails: the failure is passed on and the temp file is gone', async () => {
      const seen: { file?: string } = {};
      const failure = commandFailure({
        tool: 'helm',
        argv: ['upgrade'],
        exitCode: 1,
        stderr: 'Error: UPGRADE FAILED: context deadline exceeded',
        cluster: 'w1',
      });
      const r = recorder(
        ...before,
        storedSecret(KEY, NS, VALUES),
        '',
        pull,
        helmUpgrade(seen, () => {
          throw failure;
        })
      );
      const err = await failureOf(
        act(activitiesWith(r.run).upgradeRelease, { upgradeId: UID, cluster: w1, step, backup })
      );
      expect(err).toBe(failure);
      expect(seen.file).toBeDefined();
      expect(existsSync(seen.file as string)).toBe(false);
      expect(await readdir(workDir)).toEqual(['charts']);
    });

    it('the chart repository cannot be added: no helm upgrade, no temp file left', async () => {
      const failure = commandFailure({ tool: 'helm', argv: REPO_ADD.slice(1), exitCode: 1, stderr: 'Error: 503' });
      const r = recorder(...before, storedSecret(KEY, NS, VALUES), failure);
      await expect(
        act(activitiesWith(r.run).upgradeRelease, { upgradeId: UID, cluster: w1, step, backup })
      ).rejects.toBeInstanceOf(ApplicationFailure);
      expect(r.argvs().some((a) => a.includes('upgrade'))).toBe(false);
      // The chart cache, empty: no archive, no pull's temp dir.
      expect(await readdir(workDir)).toEqual(['charts']);
      expect(await readdir(path.join(workDir, 'charts'))).toEqual([]);
    });

    it('the Secret is gone: BackupNotFound, non-retryable, and helm upgrade never runs', async () => {
      const r = recorder(...before, '');
      const err = await failureOf(
        act(activitiesWith(r.run).upgradeRelease, { upgradeId: UID, cluster: w1, step, backup })
      );
      expect(err).toMatchObject({ type: 'BackupNotFound', nonRetryable: true });
      expect(err.message).toContain(`${NS}/${name}`);
      expect(r.argvs().some((a) => a.includes('upgrade'))).toBe(false);
      expect(await readdir(workDir)).toEqual([]);
    });

    it('the Secret holds other values than were backed up: BackupChecksumMismatch, no helm upgrade', async () => {
      const r = recorder(...before, storedSecret(KEY, NS, 'hive: {}\n'));
      const err = await failureOf(
        act(activitiesWith(r.run).upgradeRelease, { upgradeId: UID, cluster: w1, step, backup })
      );
      expect(err).toMatchObject({ type: 'BackupChecksumMismatch', nonRetryable: true });
      expect(r.argvs().some((a) => a.includes('upgrade'))).toBe(false);
      expect(await readdir(workDir)).toEqual([]);
    });
  });
});
