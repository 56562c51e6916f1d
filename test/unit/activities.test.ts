/**
 * The activities of activities/index.ts in a MockActivityEnvironment, with a recording
 * CommandRunner that returns canned helm/kubectl output: the exact argument arrays each activity
 * runs, and what it makes of the answers. Backups and scratch space are real temp directories.
 */
import { chartArchive, pullInto, sha256Hex } from '../helpers/chart-archive';
import { failureOf, recorder } from '../helpers/recorder';
import { type ApplicationFailure } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parse } from 'yaml';
import { afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { createActivities, type ActivityDeps } from '../../activities';
import { commandFailure } from '../../activities/errors';
import type { CommandRunner } from '../../activities/exec';
import { kubectlDeleteJobs } from '../../runbook/commands';
import { decideRules } from '../../runbook/rules';
import type { BackupRef, ClusterRef, Step } from '../../runbook/types';
import { RecordingLogger } from '../helpers/recording-logger';

const REPO = { name: 'skoala', url: 'https://release.daocloud.io/chartrepo/skoala' };
/** The first chart command of a worker process adds the repository on its host. */
const REPO_ADD = ['helm', 'repo', 'add', 'skoala', REPO.url, '--force-update'];
const REPO_UPDATE = ['helm', 'repo', 'update', 'skoala'];
/** How chart commands name their source to the runner (for telling repo failures from cluster ones). */
const SOURCE = { name: 'skoala', url: REPO.url };
/** `helm pull` of a chart archive into a temp dir of the host's chart cache. */
const PULL = (chart: string, version: string) => [
  'helm',
  'pull',
  `skoala/${chart}`,
  '--version',
  version,
  '--destination',
  expect.stringMatching(/\/charts\/\.pull-[^/]+$/) as unknown as string,
];
const w1: ClusterRef = { name: 'w1', kubeconfig: '/kc/w1.yaml', namespace: 'skoala-system' };
const global: ClusterRef = {
  name: 'global',
  kubeconfig: '/kc/global.yaml',
  context: 'admin',
  namespace: 'skoala-system',
};
const UID = 'u-1';
const T0 = '2025-01-01T00:00:00Z';

const HISTORY_W1 = [
  'helm',
  '--kubeconfig',
  '/kc/w1.yaml',
  'history',
  'skoala-init',
  '-n',
  'skoala-system',
  '--max',
  '20',
  '-o',
  'json',
];
const LABELS_W1 = [
  'kubectl',
  '--kubeconfig',
  '/kc/w1.yaml',
  'get',
  'secrets',
  '-n',
  'skoala-system',
  '-l',
  'owner=helm,name=skoala-init',
  '-o',
  'jsonpath={range .items[*]}{.metadata.labels}{"\\n"}{end}',
];
const CRD_RECORD_W1 = [
  'kubectl',
  '--kubeconfig',
  '/kc/w1.yaml',
  'get',
  'configmap',
  'skoala-upgrade-crds',
  '-n',
  'skoala-system',
  '--ignore-not-found',
  '-o',
  'json',
];

const ROLLBACK_W1 = CRD_RECORD_W1.map((a) => (a === 'skoala-upgrade-crds' ? 'skoala-upgrade-rollback' : a));

/** The label helm stores on the release Secret of each revision the product makes. */
const OWNER = 'skoala-upgrade.io/revision';
/** Its value, from its definition: 20 hex digits of the upgrade ID's sha256, then the revision. */
const mark = (upgradeId: string, revision: number): string =>
  `${createHash('sha256').update(upgradeId).digest('hex').slice(0, 20)}.r${revision}`;

/** One revision of a release, as helm history and its release Secret show it. */
interface Rev {
  revision: number;
  status: string;
  version: string;
  updated?: string;
  description?: string;
  /** The owner label its release Secret carries (helm `--labels`); none when undefined. */
  label?: string;
}

/** `helm history -o json`: oldest first, as helm prints it. */
const history = (revs: Rev[], release = 'skoala-init'): string =>
  JSON.stringify(
    revs.map((r) => ({
      revision: r.revision,
      updated: r.updated ?? T0,
      status: r.status,
      chart: `${release}-${r.version}`,
      app_version: r.version,
      description: r.description ?? 'Upgrade complete',
    }))
  );

/** What `kubectl get secrets -o jsonpath={...labels}` prints: one JSON labels map a line. */
const labels = (revs: Rev[], release = 'skoala-init'): string =>
  revs
    .map(
      (r) =>
        `${JSON.stringify({
          modifiedAt: '1735689600',
          name: release,
          owner: 'helm',
          status: r.status,
          version: String(r.revision),
          ...(r.label ? { [OWNER]: r.label } : {}),
        })}\n`
    )
    .join('');

/** The two answers of one read of a release: its history, then the labels of its Secrets. */
const state = (revs: Rev[], release = 'skoala-init'): [string, string] => [
  history(revs, release),
  labels(revs, release),
];

/** How `helm history` of a release that does not exist fails. */
const notFound = (): ApplicationFailure =>
  commandFailure({ tool: 'helm', argv: HISTORY_W1.slice(1), exitCode: 1, stderr: 'Error: release: not found' });

/** `revision 4 (pending-upgrade, skoala-init-0.28.1, T0): Preparing upgrade`, written out. */
const line = (r: Rev, release = 'skoala-init'): string =>
  `revision ${r.revision} (${r.status}, ${release}-${r.version}, ${r.updated ?? T0}): ${r.description ?? 'Upgrade complete'}`;

let dir: string;
let logger: RecordingLogger;
let backupDir: string;
let workDir: string;
let env: MockActivityEnvironment;
beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'skoala-activities-'));
  backupDir = path.join(dir, 'backups');
  workDir = path.join(dir, 'work');
  await mkdir(workDir);
  logger = new RecordingLogger();
  env = new MockActivityEnvironment(undefined, { logger });
});
afterEach(async () => {
  vi.useRealTimers();
  await rm(dir, { recursive: true, force: true });
});

/** Runs an activity in the mock environment, keeping its argument and result types. */
function act<A extends unknown[], R>(fn: (...args: A) => Promise<R>, ...args: NoInfer<A>): Promise<R> {
  return env.run<A, R, (...args: A) => Promise<R>>(fn, ...args);
}

/** helm's timeout is the production default (10 minutes) unless a test says otherwise. */
const activitiesWith = (run: CommandRunner, over: Partial<ActivityDeps> = {}) =>
  createActivities({
    helm: 'helm',
    kubectl: 'kubectl',
    backupDir,
    workDir,
    run,
    jobPollMs: 5,
    releaseLeases: false,
    ...over,
  });

const VALUES = 'hive:\n  configMap:\n    data:\n      database:\n        password: hunter2\n';
const backupFileOf = (revision: number, upgradeId = UID) =>
  path.join(backupDir, upgradeId, 'w1', `skoala-init-revision-${revision}.yaml`);

describe('backupValues', () => {
  const input = { upgradeId: UID, cluster: w1, release: 'skoala-init' as const, revision: 3 };

  it('writes the values owner-only under backupDir and returns only a reference and a checksum', async () => {
    const r = recorder(VALUES);
    const ref = await act(activitiesWith(r.run).backupValues, input);
    expect(r.argvs()).toEqual([
      [
        'helm',
        '--kubeconfig',
        '/kc/w1.yaml',
        'get',
        'values',
        'skoala-init',
        '-n',
        'skoala-system',
        '--revision',
        '3',
        '-o',
        'yaml',
      ],
    ]);
    expect(ref).toEqual({
      ref: path.join('u-1', 'w1', 'skoala-init-revision-3.yaml'),
      sha256: createHash('sha256').update(VALUES).digest('hex'),
      reused: false,
    });
    expect(JSON.stringify(ref)).not.toContain('hunter2');
    const file = path.join(backupDir, ref.ref);
    expect(await readFile(file, 'utf8')).toBe(VALUES);
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    expect((await stat(path.dirname(file))).mode & 0o077).toBe(0);
    // no temp file left behind
    expect(await readdir(path.dirname(file))).toEqual(['skoala-init-revision-3.yaml']);
  });

  it('a second call (a retry) reuses the saved copy without running helm', async () => {
    const r = recorder(VALUES);
    const acts = activitiesWith(r.run);
    const first = await act(acts.backupValues, input);
    // a retry after the upgrade started must not capture the new values
    const second = await act(acts.backupValues, input);
    expect(r.calls).toHaveLength(1);
    expect(second).toEqual({ ...first, reused: true });
  });

  it('two revisions of the same release are two backups: a later one never overwrites an earlier one', async () => {
    const r = recorder(VALUES, 'later: values\n');
    const acts = activitiesWith(r.run);
    const three = await act(acts.backupValues, input);
    const four = await act(acts.backupValues, { ...input, revision: 4 });
    expect(r.argvs().map((argv) => argv[argv.indexOf('--revision') + 1])).toEqual(['3', '4']);
    expect([three.ref, four.ref]).toEqual([
      path.join('u-1', 'w1', 'skoala-init-revision-3.yaml'),
      path.join('u-1', 'w1', 'skoala-init-revision-4.yaml'),
    ]);
    expect([three.reused, four.reused]).toEqual([false, false]);
    expect((await readdir(path.join(backupDir, 'u-1', 'w1'))).sort()).toEqual([
      'skoala-init-revision-3.yaml',
      'skoala-init-revision-4.yaml',
    ]);
    expect(await readFile(backupFileOf(3), 'utf8')).toBe(VALUES);
    expect(await readFile(backupFileOf(4), 'utf8')).toBe('later: values\n');
  });

  it('the same release on another cluster or in another upgrade is its own backup', async () => {
    const r = recorder(VALUES, 'a: 1\n', 'b: 2\n');
    const acts = activitiesWith(r.run);
    const refs = [
      await act(acts.backupValues, input),
      await act(acts.backupValues, { ...input, cluster: { ...w1, name: 'w2' } }),
      await act(acts.backupValues, { ...input, upgradeId: 'u-2' }),
    ];
    expect(refs.map((x) => x.ref)).toEqual([
      path.join('u-1', 'w1', 'skoala-init-revision-3.yaml'),
      path.join('u-1', 'w2', 'skoala-init-revision-3.yaml'),
      path.join('u-2', 'w1', 'skoala-init-revision-3.yaml'),
    ]);
    expect(refs.every((x) => !x.reused)).toBe(true);
  });

  it('`null` (no user values) is saved as an empty mapping', async () => {
    const r = recorder('null\n');
    const ref = await act(activitiesWith(r.run).backupValues, input);
    expect(await readFile(path.join(backupDir, ref.ref), 'utf8')).toBe('{}\n');
    expect(ref.sha256).toBe(createHash('sha256').update('{}\n').digest('hex'));
  });
});

describe('upgradeRelease', () => {
  const step: Step & { kind: 'upgradeRelease' } = {
    kind: 'upgradeRelease',
    release: 'skoala-init',
    chart: 'skoala-init',
    repo: REPO,
    version: '0.28.1',
    set: [
      ['nacos-operator.image.tag', 'v0.28.1'],
      ['seata-operator.image.tag', 'v0.28.1'],
    ],
    useBackup: true,
    valuesFiles: ['/v/site.yaml'],
    fromRevision: 3,
  };
  /** The exact helm upgrade, marked as revision `revision` of upgrade `upgradeId`. */
  const upgradeArgv = (backupFile: string, revision: number, upgradeId = UID) => [
    'helm',
    '--kubeconfig',
    '/kc/w1.yaml',
    'upgrade',
    '--install',
    '--create-namespace',
    '-n',
    'skoala-system',
    'skoala-init',
    cached(),
    '-f',
    backupFile,
    '-f',
    '/v/site.yaml',
    '--set',
    'nacos-operator.image.tag=v0.28.1',
    '--set',
    'seata-operator.image.tag=v0.28.1',
    '--history-max',
    '10',
    '--description',
    `skoala-upgrade ${upgradeId}`,
    '--labels',
    `skoala-upgrade.io/revision=${mark(upgradeId, revision)}`,
    '--timeout',
    '600s',
  ];

  const r3: Rev = { revision: 3, status: 'deployed', version: '0.27.2' };
  const r3old: Rev = { ...r3, status: 'superseded' };
  /** The target chart as the repository serves it, and where the host's chart cache keeps it. */
  let archive: Buffer;
  let pull: (argv: string[]) => Promise<string>;
  beforeAll(async () => {
    archive = await chartArchive('skoala-init', '0.28.1');
    pull = pullInto(archive);
  });
  const cached = () => path.join(workDir, 'charts', `skoala-init-0.28.1-${sha256Hex(archive)}.tgz`);
  /** Revision 4 at the target, made by this upgrade. */
  const ours4: Rev = { revision: 4, status: 'deployed', version: '0.28.1', label: mark(UID, 4) };

  async function backupFor(upgradeId = UID): Promise<BackupRef> {
    const r = recorder(VALUES);
    return act(activitiesWith(r.run).backupValues, { upgradeId, cluster: w1, release: 'skoala-init', revision: 3 });
  }

  it('reads the release, upgrades with the backup first and its marks, reads it again', async () => {
    const backup = await backupFor();
    const r = recorder(...state([r3]), '', pull, '', ...state([r3old, ours4]));
    const out = await act(activitiesWith(r.run).upgradeRelease, { upgradeId: UID, cluster: w1, step, backup });
    expect(out).toEqual({ revision: 4, alreadyDone: false });
    expect(r.argvs()).toEqual([
      HISTORY_W1,
      LABELS_W1,
      REPO_ADD,
      PULL('skoala-init', '0.28.1'),
      upgradeArgv(backupFileOf(3), 4),
      HISTORY_W1,
      LABELS_W1,
    ]);
    // helm stops itself at --timeout 600s; the process limit is a minute later. The upgrade itself
    // reaches no chart source: it installs the archive on this host.
    expect(r.calls.map((c) => c.opts)).toEqual([
      { cluster: 'w1' },
      { cluster: 'w1' },
      { cluster: 'w1', chartRepo: SOURCE },
      { cluster: 'w1', chartRepo: SOURCE },
      { timeoutMs: 660_000, cluster: 'w1' },
      { cluster: 'w1' },
      { cluster: 'w1' },
    ]);
  });

  it('the owner mark names the revision helm will create: the newest one + 1, whatever its status', async () => {
    const backup = await backupFor();
    const r = recorder(
      ...state([
        { revision: 1, status: 'superseded', version: '0.26.2' },
        { revision: 2, status: 'superseded', version: '0.27.1' },
        r3,
        { revision: 4, status: 'failed', version: '0.28.1', label: mark(UID, 4) },
      ]),
      '',
      pull,
      '',
      ...state([r3, { revision: 5, status: 'deployed', version: '0.28.1', label: mark(UID, 5) }])
    );
    const out = await act(activitiesWith(r.run).upgradeRelease, { upgradeId: UID, cluster: w1, step, backup });
    expect(out).toEqual({ revision: 5, alreadyDone: false });
    expect(r.argvs()[4]).toEqual(upgradeArgv(backupFileOf(3), 5));
  });

  it('helm --timeout follows helmTimeoutMs', async () => {
    const backup = await backupFor();
    const r = recorder(...state([r3]), '', pull, '', ...state([r3old, ours4]));
    await act(activitiesWith(r.run, { helmTimeoutMs: 90_000 }).upgradeRelease, {
      upgradeId: UID,
      cluster: w1,
      step,
      backup,
    });
    expect(r.calls[4]?.argv.slice(-2)).toEqual(['--timeout', '90s']);
    expect(r.calls[4]?.opts).toEqual({ timeoutMs: 150_000, cluster: 'w1' });
  });

  it('our revision already deployed at the target: only the read, no upgrade (alreadyDone)', async () => {
    const backup = await backupFor();
    const r = recorder(...state([r3old, ours4]));
    const out = await act(activitiesWith(r.run).upgradeRelease, { upgradeId: UID, cluster: w1, step, backup });
    expect(out).toEqual({ revision: 4, alreadyDone: true });
    expect(r.argvs()).toEqual([HISTORY_W1, LABELS_W1]);
  });

  it('deployed at the target by someone else is not ours: ValuesChanged, no upgrade', async () => {
    const backup = await backupFor();
    const theirs: Rev = { ...ours4, label: undefined };
    const r = recorder(...state([r3old, theirs]));
    const err = await failureOf(
      act(activitiesWith(r.run).upgradeRelease, { upgradeId: UID, cluster: w1, step, backup })
    );
    expect(err).toMatchObject({ type: 'ValuesChanged', nonRetryable: true });
    expect(err.message).toBe(
      `values changed since the plan: re-run plan (skoala-init on w1 is now at ${line(theirs)}, planned from revision 3)`
    );
    expect(r.argvs()).toEqual([HISTORY_W1, LABELS_W1]);
  });

  it.each([
    ['a label helm copied from our earlier revision', mark(UID, 4)],
    ['the label of another upgrade', mark('u-2', 5)],
  ])('%s does not make a revision ours', async (_, label) => {
    const backup = await backupFor();
    // revision 5: someone's later upgrade (helm copies the release labels to it)
    const theirs: Rev = { revision: 5, status: 'deployed', version: '0.28.1', label };
    const r = recorder(...state([r3old, { ...ours4, status: 'superseded' }, theirs]));
    const err = await failureOf(
      act(activitiesWith(r.run).upgradeRelease, { upgradeId: UID, cluster: w1, step, backup })
    );
    expect(err).toMatchObject({ type: 'ValuesChanged', nonRetryable: true });
    expect(err.message).toBe(
      `values changed since the plan: re-run plan (skoala-init on w1 is now at ${line(theirs)}, planned from revision 3)`
    );
  });

  it('the deployed revision moved since the plan (someone upgraded): ValuesChanged, no upgrade', async () => {
    const backup = await backupFor();
    const moved: Rev = { revision: 4, status: 'deployed', version: '0.27.2', description: 'Upgrade complete' };
    const r = recorder(...state([r3old, moved]));
    const err = await failureOf(
      act(activitiesWith(r.run).upgradeRelease, { upgradeId: UID, cluster: w1, step, backup })
    );
    expect(err).toMatchObject({ type: 'ValuesChanged', nonRetryable: true });
    expect(err.message).toBe(
      `values changed since the plan: re-run plan (skoala-init on w1 is now at ${line(moved)}, planned from revision 3)`
    );
    expect(r.argvs()).toEqual([HISTORY_W1, LABELS_W1]);
  });

  it('a rollback to the planned revision restores its values: the upgrade goes ahead', async () => {
    const backup = await backupFor();
    const rolledBack: Rev = { revision: 5, status: 'deployed', version: '0.27.2', description: 'Rollback to 3' };
    const r = recorder(
      ...state([r3old, { revision: 4, status: 'superseded', version: '0.28.1', label: mark(UID, 4) }, rolledBack]),
      '',
      pull,
      '',
      ...state([r3old, { ...rolledBack, status: 'superseded' }, { ...ours4, revision: 6, label: mark(UID, 6) }])
    );
    const out = await act(activitiesWith(r.run).upgradeRelease, { upgradeId: UID, cluster: w1, step, backup });
    expect(out).toEqual({ revision: 6, alreadyDone: false });
    expect(r.argvs()).toEqual([
      HISTORY_W1,
      LABELS_W1,
      REPO_ADD,
      PULL('skoala-init', '0.28.1'),
      upgradeArgv(backupFileOf(3), 6),
      HISTORY_W1,
      LABELS_W1,
    ]);
  });

  it('a rollback to another revision is not the planned base: ValuesChanged', async () => {
    const backup = await backupFor();
    const rolledBack: Rev = { revision: 5, status: 'deployed', version: '0.27.1', description: 'Rollback to 2' };
    const r = recorder(...state([r3old, { revision: 4, status: 'superseded', version: '0.27.2' }, rolledBack]));
    const err = await failureOf(
      act(activitiesWith(r.run).upgradeRelease, { upgradeId: UID, cluster: w1, step, backup })
    );
    expect(err).toMatchObject({ type: 'ValuesChanged', nonRetryable: true });
    expect(err.message).toBe(
      `values changed since the plan: re-run plan (skoala-init on w1 is now at ${line(rolledBack)}, planned from revision 3)`
    );
    expect(r.calls).toHaveLength(2);
  });

  it('not installed any more (and not a fresh install): ReleaseMissing, nothing but the history read', async () => {
    const backup = await backupFor();
    const r = recorder(notFound());
    const err = await failureOf(
      act(activitiesWith(r.run).upgradeRelease, { upgradeId: UID, cluster: w1, step, backup })
    );
    expect(err).toMatchObject({ type: 'ReleaseMissing', nonRetryable: true });
    expect(err.message).toBe('skoala-init on w1 is not installed any more; re-run plan');
    expect(r.argvs()).toEqual([HISTORY_W1]);
  });

  it('a failed history read other than "not found" is not taken for "not installed"', async () => {
    const down = commandFailure({
      tool: 'helm',
      argv: HISTORY_W1.slice(1),
      exitCode: 1,
      stderr:
        'Error: Kubernetes cluster unreachable: Get "https://10.6.0.1:6443/version": dial tcp: connect: connection refused',
    });
    const r = recorder(down);
    const err = await failureOf(
      act(activitiesWith(r.run).upgradeRelease, { upgradeId: UID, cluster: w1, step: { ...step, install: true } })
    );
    expect(err).toMatchObject({ type: 'ClusterUnreachable', nonRetryable: false });
    expect(r.calls).toHaveLength(1);
  });

  it('a fresh install (--allow-install): no -f for a backup, marked as revision 1', async () => {
    const r = recorder(
      notFound(),
      '',
      pull,
      '',
      ...state([{ revision: 1, status: 'deployed', version: '0.28.1', label: mark(UID, 1) }])
    );
    const fresh = { ...step, useBackup: false, valuesFiles: [], fromRevision: undefined, install: true };
    const out = await act(activitiesWith(r.run).upgradeRelease, { upgradeId: UID, cluster: w1, step: fresh });
    expect(out).toEqual({ revision: 1, alreadyDone: false });
    expect(r.argvs()).toEqual([
      HISTORY_W1,
      REPO_ADD,
      PULL('skoala-init', '0.28.1'),
      [
        'helm',
        '--kubeconfig',
        '/kc/w1.yaml',
        'upgrade',
        '--install',
        '--create-namespace',
        '-n',
        'skoala-system',
        'skoala-init',
        cached(),
        '--set',
        'nacos-operator.image.tag=v0.28.1',
        '--set',
        'seata-operator.image.tag=v0.28.1',
        '--history-max',
        '10',
        '--description',
        'skoala-upgrade u-1',
        '--labels',
        `skoala-upgrade.io/revision=${mark(UID, 1)}`,
        '--timeout',
        '600s',
      ],
      HISTORY_W1,
      LABELS_W1,
    ]);
  });

  it('planned as a fresh install, but someone installed it since: ValuesChanged, no upgrade', async () => {
    const theirs: Rev = { revision: 1, status: 'deployed', version: '0.27.2', description: 'Install complete' };
    const r = recorder(...state([theirs]));
    const fresh = { ...step, useBackup: false, valuesFiles: [], fromRevision: undefined, install: true };
    const err = await failureOf(
      act(activitiesWith(r.run).upgradeRelease, { upgradeId: UID, cluster: w1, step: fresh })
    );
    expect(err).toMatchObject({ type: 'ValuesChanged', nonRetryable: true });
    expect(err.message).toBe(
      `values changed since the plan: re-run plan (skoala-init on w1 was installed since: ${line(theirs)})`
    );
    expect(r.argvs()).toEqual([HISTORY_W1, LABELS_W1]);
  });

  describe('a pending revision', () => {
    const NOW = Date.parse('2025-06-01T12:00:00Z');
    const ago = (ms: number) => new Date(NOW - ms).toISOString().replace('.000Z', 'Z');
    const pending = (updated: string, label?: string, status = 'pending-upgrade'): Rev => ({
      revision: 4,
      status,
      version: '0.28.1',
      updated,
      description: 'Preparing upgrade',
      label,
    });
    beforeEach(() => {
      vi.useFakeTimers({ toFake: ['Date'] });
      vi.setSystemTime(NOW);
    });

    it('not ours (another helm is at work): retryable ReleaseLocked, however old, nothing changed', async () => {
      const backup = await backupFor();
      const theirs = pending(ago(60 * 60_000));
      const r = recorder(...state([r3, theirs]));
      const err = await failureOf(
        act(activitiesWith(r.run, { pendingGraceMs: 60_000 }).upgradeRelease, {
          upgradeId: UID,
          cluster: w1,
          step,
          backup,
        })
      );
      expect(err).toMatchObject({ type: 'ReleaseLocked', nonRetryable: false });
      expect(err.message).toBe(`skoala-init on w1 is held by another helm operation (${line(theirs)})`);
      expect(r.argvs()).toEqual([HISTORY_W1, LABELS_W1]);
    });

    it('ours, younger than pendingGraceMs (our helm may still run): retryable ReleaseLocked, no rollback', async () => {
      const backup = await backupFor();
      const young = pending(ago(60_000), mark(UID, 4));
      const r = recorder(...state([r3, young]));
      const err = await failureOf(
        act(activitiesWith(r.run, { pendingGraceMs: 300_000 }).upgradeRelease, {
          upgradeId: UID,
          cluster: w1,
          step,
          backup,
        })
      );
      expect(err).toMatchObject({ type: 'ReleaseLocked', nonRetryable: false });
      expect(err.message).toBe(
        `skoala-init on w1: our earlier helm may still be running (${line(young)}); waiting 240 s more before rolling it back`
      );
      expect(r.argvs()).toEqual([HISTORY_W1, LABELS_W1]);
    });

    it('ours: the default grace is helm timeout + 2 minutes', async () => {
      const backup = await backupFor();
      const young = pending(ago(11 * 60_000), mark(UID, 4));
      const r = recorder(...state([r3, young]));
      const err = await failureOf(
        act(activitiesWith(r.run).upgradeRelease, { upgradeId: UID, cluster: w1, step, backup })
      );
      expect(err).toMatchObject({ type: 'ReleaseLocked', nonRetryable: false });
      expect(err.message).toBe(
        `skoala-init on w1: our earlier helm may still be running (${line(young)}); waiting 60 s more before rolling it back`
      );
    });

    it('ours, older than pendingGraceMs: non-retryable PendingRollbackNeeded, the rollback left to the workflow', async () => {
      const backup = await backupFor();
      const old = pending(ago(10 * 60_000), mark(UID, 4));
      const r = recorder(...state([r3, old]));
      const err = await failureOf(
        act(activitiesWith(r.run, { pendingGraceMs: 300_000 }).upgradeRelease, {
          upgradeId: UID,
          cluster: w1,
          step,
          backup,
        })
      );
      expect(err).toMatchObject({ type: 'PendingRollbackNeeded', nonRetryable: true });
      expect(err.message).toBe(
        `skoala-init on w1 was left pending by our interrupted helm (${line(old)}): roll back to revision 3 first`
      );
      expect(r.argvs()).toEqual([HISTORY_W1, LABELS_W1]);
    });

    it('our own interrupted rollback (pending-rollback "Rollback to 3" after our 4), 1 h old: PendingRollbackNeeded, not "held by another"', async () => {
      const backup = await backupFor();
      const interrupted: Rev = {
        revision: 5,
        status: 'pending-rollback',
        version: '0.27.2',
        updated: ago(60 * 60_000),
        description: 'Rollback to 3',
      };
      const r = recorder(...state([r3old, { ...ours4, status: 'superseded' }, interrupted]));
      const err = await failureOf(
        act(activitiesWith(r.run).upgradeRelease, { upgradeId: UID, cluster: w1, step, backup })
      );
      expect(err).toMatchObject({ type: 'PendingRollbackNeeded', nonRetryable: true });
      expect(err.message).toBe(
        `skoala-init on w1 was left pending by our interrupted helm (${line(interrupted)}): roll back to revision 3 first`
      );
    });

    it("someone else's rollback pending over ours (to another revision): ReleaseLocked, held by another", async () => {
      const backup = await backupFor();
      const theirs: Rev = {
        revision: 5,
        status: 'pending-rollback',
        version: '0.26.2',
        updated: ago(60 * 60_000),
        description: 'Rollback to 2',
      };
      const r = recorder(...state([r3old, { ...ours4, status: 'superseded' }, theirs]));
      const err = await failureOf(
        act(activitiesWith(r.run).upgradeRelease, { upgradeId: UID, cluster: w1, step, backup })
      );
      expect(err).toMatchObject({ type: 'ReleaseLocked' });
      expect(err.message).toBe(`skoala-init on w1 is held by another helm operation (${line(theirs)})`);
    });

    it('ours, old, pending-install: ReleaseStuck, nothing run but the read', async () => {
      const backup = await backupFor();
      const stuck = { ...pending(ago(60 * 60_000), mark(UID, 1), 'pending-install'), revision: 1 };
      const r = recorder(...state([stuck]));
      const err = await failureOf(
        act(activitiesWith(r.run).upgradeRelease, { upgradeId: UID, cluster: w1, step, backup })
      );
      expect(err).toMatchObject({ type: 'ReleaseStuck', nonRetryable: true });
      expect(err.message).toBe(
        `skoala-init on w1 is stuck pending-install (${line(stuck)}); check it with helm history before retrying`
      );
      expect(r.argvs()).toEqual([HISTORY_W1, LABELS_W1]);
    });

    it('ours, old, on a fresh install: nothing to roll back to, ReleaseStuck', async () => {
      const stuck = pending(ago(60 * 60_000), mark(UID, 4));
      const r = recorder(...state([r3, stuck]));
      const fresh = { ...step, useBackup: false, fromRevision: undefined, install: true };
      const err = await failureOf(
        act(activitiesWith(r.run).upgradeRelease, { upgradeId: UID, cluster: w1, step: fresh })
      );
      expect(err).toMatchObject({ type: 'ReleaseStuck', nonRetryable: true });
      expect(err.message).toBe(
        `skoala-init on w1 is stuck pending-upgrade (${line(stuck)}); check it with helm history before retrying`
      );
      expect(r.calls).toHaveLength(2);
    });
  });

  it('failed by another operation: non-retryable ReleaseFailed, no upgrade', async () => {
    const backup = await backupFor();
    const failed: Rev = {
      revision: 4,
      status: 'failed',
      version: '0.28.1',
      description: 'Upgrade "skoala-init" failed: timed out waiting for the condition',
    };
    const r = recorder(...state([r3, failed]));
    const err = await failureOf(
      act(activitiesWith(r.run).upgradeRelease, { upgradeId: UID, cluster: w1, step, backup })
    );
    expect(err).toMatchObject({ type: 'ReleaseFailed', nonRetryable: true });
    expect(err.message).toBe(`skoala-init on w1 failed by another operation (${line(failed)})`);
    expect(r.argvs()).toEqual([HISTORY_W1, LABELS_W1]);
  });

  it('failed by our own earlier attempt: upgraded again from the planned revision', async () => {
    const backup = await backupFor();
    const ourFailed: Rev = { revision: 4, status: 'failed', version: '0.28.1', label: mark(UID, 4) };
    const r = recorder(
      ...state([r3, ourFailed]),
      '',
      pull,
      '',
      ...state([r3old, ourFailed, { ...ours4, revision: 5, label: mark(UID, 5) }])
    );
    const out = await act(activitiesWith(r.run).upgradeRelease, { upgradeId: UID, cluster: w1, step, backup });
    expect(out).toEqual({ revision: 5, alreadyDone: false });
    expect(r.argvs()[4]).toEqual(upgradeArgv(backupFileOf(3), 5));
  });

  it('our own failed rollback (helm: `Rollback "skoala-init" failed: ...`): upgraded again, not ReleaseFailed', async () => {
    const backup = await backupFor();
    const failedRollback: Rev = {
      revision: 5,
      status: 'failed',
      version: '0.27.2',
      description: 'Rollback "skoala-init" failed: Job.batch "skoala-init-admission" is invalid: field is immutable',
    };
    const before = [r3old, { ...ours4, status: 'superseded' }, failedRollback];
    const r = recorder(
      ...state(before),
      '',
      pull,
      '',
      ...state([...before, { ...ours4, revision: 6, label: mark(UID, 6) }])
    );
    const out = await act(activitiesWith(r.run).upgradeRelease, { upgradeId: UID, cluster: w1, step, backup });
    expect(out).toEqual({ revision: 6, alreadyDone: false });
    expect(r.argvs()[4]).toEqual(upgradeArgv(backupFileOf(3), 6));
  });

  it('one pull per host: the next cluster installs the same archive, with no repo add and no pull', async () => {
    const backup = await backupFor();
    const w2: ClusterRef = { ...w1, name: 'w2', kubeconfig: '/kc/w2.yaml' };
    const onW2 = (argv: string[]) => argv.map((a) => (a === '/kc/w1.yaml' ? '/kc/w2.yaml' : a));
    const r = recorder(
      ...[...state([r3]), '', pull, '', ...state([r3old, ours4])],
      ...[...state([r3]), '', ...state([r3old, ours4])]
    );
    const acts = activitiesWith(r.run);
    await act(acts.upgradeRelease, { upgradeId: UID, cluster: w1, step, backup });
    await act(acts.upgradeRelease, { upgradeId: UID, cluster: w2, step, backup });
    expect(r.argvs()).toEqual([
      HISTORY_W1,
      LABELS_W1,
      REPO_ADD,
      PULL('skoala-init', '0.28.1'),
      upgradeArgv(backupFileOf(3), 4),
      HISTORY_W1,
      LABELS_W1,
      onW2(HISTORY_W1),
      onW2(LABELS_W1),
      onW2(upgradeArgv(backupFileOf(3), 4)),
      onW2(HISTORY_W1),
      onW2(LABELS_W1),
    ]);
    // Only the archive stays in the cache: the pull's temp dir is gone.
    expect(await readdir(path.join(workDir, 'charts'))).toEqual([path.basename(cached())]);
  });

  describe('pinned by the plan (chartSha256)', () => {
    it('a pinned archive this host already holds (an earlier worker process) is installed without a pull', async () => {
      const backup = await backupFor();
      await mkdir(path.join(workDir, 'charts'));
      await writeFile(cached(), archive);
      const r = recorder(...state([r3]), '', ...state([r3old, ours4]));
      const pinned = { ...step, chartSha256: sha256Hex(archive) };
      await act(activitiesWith(r.run).upgradeRelease, { upgradeId: UID, cluster: w1, step: pinned, backup });
      expect(r.argvs()).toEqual([HISTORY_W1, LABELS_W1, upgradeArgv(backupFileOf(3), 4), HISTORY_W1, LABELS_W1]);
    });

    it('a stale copy (not the pinned archive) is pulled once more; the pinned one is installed', async () => {
      const backup = await backupFor();
      const stale = await chartArchive('skoala-init', '0.28.1', { 'values.yaml': 'old: true\n' });
      const r = recorder(...state([r3]), '', pullInto(stale), pull, '', ...state([r3old, ours4]));
      const pinned = { ...step, chartSha256: sha256Hex(archive) };
      await act(activitiesWith(r.run).upgradeRelease, { upgradeId: UID, cluster: w1, step: pinned, backup });
      expect(r.argvs()).toEqual([
        HISTORY_W1,
        LABELS_W1,
        REPO_ADD,
        PULL('skoala-init', '0.28.1'),
        PULL('skoala-init', '0.28.1'),
        upgradeArgv(backupFileOf(3), 4),
        HISTORY_W1,
        LABELS_W1,
      ]);
    });

    it('the repository serves another archive: refused (non-retryable, one line), helm upgrade never runs', async () => {
      const backup = await backupFor();
      const other = await chartArchive('skoala-init', '0.28.1', { 'values.yaml': 'changed: true\n' });
      const r = recorder(...state([r3]), '', pullInto(other), pullInto(other));
      const pinned = { ...step, chartSha256: sha256Hex(archive) };
      const err = await failureOf(
        act(activitiesWith(r.run).upgradeRelease, { upgradeId: UID, cluster: w1, step: pinned, backup })
      );
      expect(err).toMatchObject({ type: 'ChartDigestMismatch', nonRetryable: true });
      expect(err.message).toBe(
        `chart skoala-init 0.28.1 from ${REPO.url} is not the archive the plan pinned: expected sha256 ${sha256Hex(archive)}, got ${sha256Hex(other)}; refusing to use it (re-run plan if the repository changed it)`
      );
      expect(r.argvs()).toEqual([
        HISTORY_W1,
        LABELS_W1,
        REPO_ADD,
        PULL('skoala-init', '0.28.1'),
        PULL('skoala-init', '0.28.1'),
      ]);
    });
  });

  it('a backup that is needed but missing: non-retryable, no upgrade', async () => {
    const r = recorder(...state([r3]));
    const err = await failureOf(act(activitiesWith(r.run).upgradeRelease, { upgradeId: UID, cluster: w1, step }));
    expect(err).toMatchObject({ type: 'BackupMissing', nonRetryable: true });
    expect(err.message).toBe('no values backup for skoala-init on w1');
    expect(r.calls).toHaveLength(2);
  });

  it('a backup changed since it was taken is not used', async () => {
    const backup = await backupFor();
    await writeFile(path.join(backupDir, backup.ref), 'tampered: true\n');
    const r = recorder(...state([r3]));
    const err = await failureOf(
      act(activitiesWith(r.run).upgradeRelease, { upgradeId: UID, cluster: w1, step, backup })
    );
    expect(err).toMatchObject({ type: 'BackupChecksumMismatch', nonRetryable: true });
    expect(err.message).toBe(`values backup ${backupFileOf(3)} does not match the checksum recorded when it was taken`);
    expect(r.calls).toHaveLength(2);
  });

  it('a failed helm upgrade surfaces as the runner classified it', async () => {
    const backup = await backupFor();
    const locked = commandFailure({
      tool: 'helm',
      argv: ['upgrade'],
      exitCode: 1,
      stderr: 'Error: UPGRADE FAILED: another operation (install/upgrade/rollback) is in progress',
    });
    const r = recorder(...state([r3]), '', pull, locked);
    const err = await failureOf(
      act(activitiesWith(r.run).upgradeRelease, { upgradeId: UID, cluster: w1, step, backup })
    );
    expect(err).toMatchObject({ type: 'ReleaseLocked', nonRetryable: false });
    expect(r.argvs()[4]?.[3]).toBe('upgrade');
  });
});

describe('the release lease (coordination.k8s.io/v1 Lease, held while our helm runs)', () => {
  const r3: Rev = { revision: 3, status: 'deployed', version: '0.27.2' };
  const LEASE_GET = [
    'kubectl',
    '--kubeconfig',
    '/kc/w1.yaml',
    'get',
    'lease',
    'skoala-upgrade.skoala-init',
    '-n',
    'skoala-system',
    '--ignore-not-found',
    '-o',
    'json',
  ];
  const lease = (holder: string, renewedMsAgo: number, revision = 4) =>
    JSON.stringify({
      kind: 'Lease',
      metadata: { annotations: { 'skoala-upgrade.io/revision': String(revision) } },
      spec: {
        holderIdentity: holder,
        leaseDurationSeconds: 30,
        renewTime: new Date(Date.now() - renewedMsAgo).toISOString().replace(/\.(\d{3})Z$/, '.$1000Z'),
      },
    });
  let archive: Buffer;
  beforeAll(async () => {
    archive = await chartArchive('skoala-init', '0.28.1');
  });
  const step: Step & { kind: 'upgradeRelease' } = {
    kind: 'upgradeRelease',
    release: 'skoala-init',
    chart: 'skoala-init',
    repo: REPO,
    version: '0.28.1',
    set: [],
    useBackup: false,
    valuesFiles: [],
    fromRevision: 3,
  };
  const young = (label = mark(UID, 4)): Rev => ({
    revision: 4,
    status: 'pending-upgrade',
    version: '0.28.1',
    updated: new Date(Date.now() - 60_000).toISOString().replace('.000Z', 'Z'),
    description: 'Preparing upgrade',
    label,
  });

  it('helm upgrade runs holding it: written before, released after (no holder), the file gone', async () => {
    const leases: { holder: string; renewTime: string }[] = [];
    const readLease = async (argv: string[]) => {
      const doc = parse(await readFile(argv[argv.indexOf('-f') + 1] as string, 'utf8')) as {
        kind: string;
        metadata: { name: string; annotations: Record<string, string> };
        spec: { holderIdentity: string; renewTime: string; leaseDurationSeconds: number };
      };
      // It names the revision its helm creates (4): only that revision is spoken for by it.
      expect(doc).toMatchObject({
        kind: 'Lease',
        metadata: { name: 'skoala-upgrade.skoala-init', annotations: { 'skoala-upgrade.io/revision': '4' } },
      });
      leases.push({ holder: doc.spec.holderIdentity, renewTime: doc.spec.renewTime });
      return 'lease.coordination.k8s.io/skoala-upgrade.skoala-init serverside-applied';
    };
    const r = recorder(
      ...state([r3]),
      '',
      pullInto(archive),
      readLease,
      '',
      readLease,
      ...state([
        { ...r3, status: 'superseded' },
        { revision: 4, status: 'deployed', version: '0.28.1', label: mark(UID, 4) },
      ])
    );
    const acts = activitiesWith(r.run, { releaseLeases: true });
    await expect(act(acts.upgradeRelease, { upgradeId: UID, cluster: w1, step })).resolves.toEqual({
      revision: 4,
      alreadyDone: false,
    });
    const tools = r
      .argvs()
      .map(
        (a) => `${a[0]} ${a[a.findIndex((x) => ['apply', 'upgrade', 'history', 'get', 'repo', 'pull'].includes(x))]}`
      );
    expect(tools).toEqual([
      'helm history',
      'kubectl get',
      'helm repo',
      'helm pull',
      'kubectl apply',
      'helm upgrade',
      'kubectl apply',
      'helm history',
      'kubectl get',
    ]);
    expect(leases.map((l) => l.holder)).toEqual([expect.stringMatching(new RegExp(`^${UID}@`)), '']);
    expect(Date.parse(leases[0]?.renewTime ?? '')).toBeGreaterThan(Date.now() - 60_000);
    expect(leases[0]?.renewTime).toMatch(/\.\d{6}Z$/); // MicroTime
    expect(await readdir(workDir)).not.toContainEqual(expect.stringMatching(/^lease-/));
  });

  it('our pending revision, 1 minute old, its lease lapsed: its helm is gone, rolled back at once (no 12-minute wait)', async () => {
    const r = recorder(...state([r3, young()]), lease(`${UID}@dead-host/1`, 45_000));
    const err = await failureOf(
      act(activitiesWith(r.run, { releaseLeases: true }).upgradeRelease, { upgradeId: UID, cluster: w1, step })
    );
    expect(err).toMatchObject({ type: 'PendingRollbackNeeded', nonRetryable: true });
    expect(r.argvs()).toEqual([HISTORY_W1, LABELS_W1, LEASE_GET]);
  });

  it('its lease held: waits (heartbeating) until released, then reads the release again: done by that helm', async () => {
    const r = recorder(
      ...state([r3, young()]),
      lease(`${UID}@other-host/7`, 29_000), // lapses in about a second
      lease('', 0), // released by its helm
      ...state([
        { ...r3, status: 'superseded' },
        { revision: 4, status: 'deployed', version: '0.28.1', label: mark(UID, 4) },
      ])
    );
    const beats: unknown[] = [];
    env.on('heartbeat', (d: unknown) => beats.push(d));
    await expect(
      act(activitiesWith(r.run, { releaseLeases: true }).upgradeRelease, { upgradeId: UID, cluster: w1, step })
    ).resolves.toEqual({ revision: 4, alreadyDone: true });
    expect(beats).toContainEqual({ waitingForLease: `${UID}@other-host/7` });
  });

  it('a lease for another revision (a helm run by hand made this one): the age rule, young means wait', async () => {
    const r = recorder(...state([r3, young()]), lease(`${UID}@dead-host/1`, 45_000, 3));
    const err = await failureOf(
      act(activitiesWith(r.run, { releaseLeases: true }).upgradeRelease, { upgradeId: UID, cluster: w1, step })
    );
    expect(err).toMatchObject({ type: 'ReleaseLocked', nonRetryable: false });
  });

  it('no lease at all (a revision made before leases): the age rule, young means wait', async () => {
    const r = recorder(...state([r3, young()]), '');
    const err = await failureOf(
      act(activitiesWith(r.run, { releaseLeases: true }).upgradeRelease, { upgradeId: UID, cluster: w1, step })
    );
    expect(err).toMatchObject({ type: 'ReleaseLocked', nonRetryable: false });
  });
});

describe('rollbackRelease', () => {
  const input = { upgradeId: UID, cluster: w1, release: 'skoala-init' as const, revision: 3 };
  const r3: Rev = { revision: 3, status: 'deployed', version: '0.27.2' };
  const ROLLBACK = [
    'helm',
    '--kubeconfig',
    '/kc/w1.yaml',
    'rollback',
    'skoala-init',
    '3',
    '-n',
    'skoala-system',
    '--timeout',
    '600s',
  ];

  it('a pending revision of ours: rolled back to the given revision, with a warning', async () => {
    const ourPending: Rev = {
      revision: 4,
      status: 'pending-upgrade',
      version: '0.28.1',
      description: 'Preparing upgrade',
      label: mark(UID, 4),
    };
    const r = recorder(...state([r3, ourPending]), 'Rollback was a success! Happy Helming!\n');
    await expect(act(activitiesWith(r.run).rollbackRelease, input)).resolves.toEqual({ rolledBack: true });
    expect(r.argvs()).toEqual([HISTORY_W1, LABELS_W1, ROLLBACK]);
    expect(r.calls[2]?.opts).toEqual({ timeoutMs: 660_000, cluster: 'w1' });
    expect(logger.entries.filter((e) => e.level === 'WARN')).toEqual([
      {
        level: 'WARN',
        message: 'rolling back a revision our interrupted helm left pending',
        meta: expect.objectContaining({ cluster: 'w1', release: 'skoala-init', pending: line(ourPending), to: 3 }),
      },
    ]);
  });

  it('our own rollback of it, interrupted (pending-rollback "Rollback to 3", old): rolled back again', async () => {
    const ours4: Rev = { revision: 4, status: 'superseded', version: '0.28.1', label: mark(UID, 4) };
    const interrupted: Rev = {
      revision: 5,
      status: 'pending-rollback',
      version: '0.27.2',
      description: 'Rollback to 3',
    };
    const r = recorder(...state([{ ...r3, status: 'superseded' }, ours4, interrupted]), '');
    await expect(act(activitiesWith(r.run).rollbackRelease, input)).resolves.toEqual({ rolledBack: true });
    expect(r.argvs()).toEqual([HISTORY_W1, LABELS_W1, ROLLBACK]);
  });

  it('deleteJobs: the admission Jobs are deleted right before helm rollback (their template is immutable)', async () => {
    const ours4: Rev = { revision: 4, status: 'pending-upgrade', version: '0.28.1', label: mark(UID, 4) };
    const r = recorder(...state([r3, ours4]), 'job.batch "gateway-api-admission" deleted', '');
    const jobs = ['gateway-api-admission', 'gateway-api-admission-patch'];
    await expect(act(activitiesWith(r.run).rollbackRelease, { ...input, deleteJobs: jobs })).resolves.toEqual({
      rolledBack: true,
    });
    expect(r.argvs()).toEqual([HISTORY_W1, LABELS_W1, ['kubectl', ...kubectlDeleteJobs(w1, jobs)], ROLLBACK]);
  });

  it('our own rollback, pending and young (its helm may still run): retryable ReleaseLocked, nothing run', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(Date.parse(T0) + 60_000);
    const ours4: Rev = { revision: 4, status: 'superseded', version: '0.28.1', label: mark(UID, 4) };
    const young: Rev = { revision: 5, status: 'pending-rollback', version: '0.27.2', description: 'Rollback to 3' };
    const r = recorder(...state([{ ...r3, status: 'superseded' }, ours4, young]));
    const err = await failureOf(act(activitiesWith(r.run).rollbackRelease, input));
    expect(err).toMatchObject({ type: 'ReleaseLocked', nonRetryable: false });
    expect(err.message).toBe(`skoala-init on w1: our helm may still be running (${line(young)})`);
    expect(r.argvs()).toEqual([HISTORY_W1, LABELS_W1]);
  });

  it.each<[string, Rev]>([
    ['pending, but not ours', { revision: 4, status: 'pending-upgrade', version: '0.28.1' }],
    [
      'ours, but deployed (rolled back or finished meanwhile)',
      { revision: 4, status: 'deployed', version: '0.28.1', label: mark(UID, 4) },
    ],
    ['ours, but failed', { revision: 4, status: 'failed', version: '0.28.1', label: mark(UID, 4) }],
    [
      'pending with a label copied from our earlier revision',
      { revision: 5, status: 'pending-upgrade', version: '0.28.1', label: mark(UID, 4) },
    ],
  ])('%s: nothing rolled back', async (_, newest) => {
    const r = recorder(...state([r3, newest]));
    await expect(act(activitiesWith(r.run).rollbackRelease, input)).resolves.toEqual({ rolledBack: false });
    expect(r.argvs()).toEqual([HISTORY_W1, LABELS_W1]);
    expect(logger.entries.filter((e) => e.level === 'WARN')).toEqual([]);
  });
});

describe('rollbackToRevision', () => {
  const input = { upgradeId: UID, cluster: w1, release: 'skoala-init' as const, revision: 3 };
  const r3: Rev = { revision: 3, status: 'deployed', version: '0.27.2' };
  const r3old: Rev = { ...r3, status: 'superseded' };
  /** Revision 4 at the target, made by this upgrade: deployed, but its workloads failed the health check. */
  const ours4: Rev = { revision: 4, status: 'deployed', version: '0.28.1', label: mark(UID, 4) };
  const rollbackArgv = (timeout = '600s') => [
    'helm',
    '--kubeconfig',
    '/kc/w1.yaml',
    'rollback',
    'skoala-init',
    '3',
    '-n',
    'skoala-system',
    '--timeout',
    timeout,
  ];
  /** Our own warnings (the SDK adds an "Activity failed" one when an activity throws). */
  const warnings = () => logger.entries.filter((e) => e.level === 'WARN' && e.message !== 'Activity failed');

  it('the newest revision is ours: helm rollback to the given revision, with a warning', async () => {
    const r = recorder(...state([r3old, ours4]), 'Rollback was a success! Happy Helming!\n');
    await expect(act(activitiesWith(r.run).rollbackToRevision, input)).resolves.toEqual({ rolledBack: true });
    expect(r.argvs()).toEqual([HISTORY_W1, LABELS_W1, rollbackArgv()]);
    // helm stops itself at --timeout 600s; the process limit is a minute later
    expect(r.calls.map((c) => c.opts)).toEqual([
      { cluster: 'w1' },
      { cluster: 'w1' },
      { timeoutMs: 660_000, cluster: 'w1' },
    ]);
    expect(warnings()).toEqual([
      {
        level: 'WARN',
        message: 'rolling back to the pre-upgrade revision',
        meta: expect.objectContaining({ cluster: 'w1', release: 'skoala-init', from: line(ours4), to: 3 }),
      },
    ]);
  });

  it('a failed revision of ours is rolled back too', async () => {
    const failed: Rev = {
      revision: 4,
      status: 'failed',
      version: '0.28.1',
      description: 'Upgrade "skoala-init" failed: timed out waiting for the condition',
      label: mark(UID, 4),
    };
    const r = recorder(...state([r3, failed]), '');
    await expect(act(activitiesWith(r.run).rollbackToRevision, input)).resolves.toEqual({ rolledBack: true });
    expect(r.argvs()).toEqual([HISTORY_W1, LABELS_W1, rollbackArgv()]);
  });

  it.each<[string, Rev]>([
    [
      'our own failed rollback (helm 3.18: `Rollback "skoala-init" failed: ...`)',
      {
        revision: 5,
        status: 'failed',
        version: '0.27.2',
        description: 'Rollback "skoala-init" failed: Job.batch "skoala-init-admission" is invalid: field is immutable',
      },
    ],
    [
      'our own interrupted rollback (pending-rollback, old)',
      { revision: 5, status: 'pending-rollback', version: '0.27.2', description: 'Rollback to 3' },
    ],
  ])('%s: is ours, rolled back again', async (_, rev5) => {
    const r = recorder(...state([r3old, { ...ours4, status: 'superseded' }, rev5]), '');
    await expect(act(activitiesWith(r.run).rollbackToRevision, input)).resolves.toEqual({ rolledBack: true });
    expect(r.argvs()).toEqual([HISTORY_W1, LABELS_W1, rollbackArgv()]);
  });

  it('helm --timeout follows helmTimeoutMs', async () => {
    const r = recorder(...state([r3old, ours4]), '');
    await act(activitiesWith(r.run, { helmTimeoutMs: 90_000 }).rollbackToRevision, input);
    expect(r.argvs()[2]).toEqual(rollbackArgv('90s'));
    expect(r.calls[2]?.opts).toEqual({ timeoutMs: 150_000, cluster: 'w1' });
  });

  it('the control plane: its kubeconfig and context, skoala, the revision it came from', async () => {
    const r = recorder(
      ...state(
        [
          { ...r3old, revision: 6 },
          { ...ours4, revision: 7, label: mark(UID, 7) },
        ],
        'skoala'
      ),
      ''
    );
    await expect(
      act(activitiesWith(r.run).rollbackToRevision, { upgradeId: UID, cluster: global, release: 'skoala', revision: 6 })
    ).resolves.toEqual({ rolledBack: true });
    expect(r.argvs()[0]).toEqual([
      'helm',
      '--kubeconfig',
      '/kc/global.yaml',
      '--kube-context',
      'admin',
      'history',
      'skoala',
      '-n',
      'skoala-system',
      '--max',
      '20',
      '-o',
      'json',
    ]);
    expect(r.argvs()[2]).toEqual([
      'helm',
      '--kubeconfig',
      '/kc/global.yaml',
      '--kube-context',
      'admin',
      'rollback',
      'skoala',
      '6',
      '-n',
      'skoala-system',
      '--timeout',
      '600s',
    ]);
  });

  it.each<[string, Rev[]]>([
    [
      'already rolled back (`Rollback to 3` deployed, a revision helm made, not labelled ours)',
      [
        r3old,
        { ...ours4, status: 'superseded' },
        { revision: 5, status: 'deployed', version: '0.27.2', description: 'Rollback to 3' },
      ],
    ],
  ])('%s: nothing run but the read', async (_, revs) => {
    const r = recorder(...state(revs));
    await expect(act(activitiesWith(r.run).rollbackToRevision, input)).resolves.toEqual({ rolledBack: false });
    expect(r.argvs()).toEqual([HISTORY_W1, LABELS_W1]);
    expect(warnings()).toEqual([]);
  });

  it('the revision itself is the newest, deployed (the upgrade made none): untouched, and no rollback record', async () => {
    const r = recorder(...state([r3]));
    const withRecord = { ...input, record: { version: '0.28.1', cause: 'helm pull: 404 Not Found' } };
    await expect(act(activitiesWith(r.run).rollbackToRevision, withRecord)).resolves.toEqual({
      rolledBack: false,
      untouched: true,
    });
    // Only the reads: no helm rollback, no `kubectl apply` of the skoala-upgrade-rollback record.
    expect(r.argvs()).toEqual([HISTORY_W1, LABELS_W1]);
  });

  it('a rollback that happened writes the record a rerun reads', async () => {
    const r = recorder(...state([r3old, ours4]), '', 'configmap/skoala-upgrade-rollback created');
    const withRecord = { ...input, record: { version: '0.28.1', cause: 'hive never ready' } };
    await expect(act(activitiesWith(r.run).rollbackToRevision, withRecord)).resolves.toEqual({ rolledBack: true });
    expect(r.argvs()).toHaveLength(4);
    expect(r.argvs()[3]?.slice(0, 4)).toEqual(['kubectl', '--kubeconfig', '/kc/w1.yaml', 'apply']);
  });

  it("twice: the second finds the first one's `Rollback to 3` and changes nothing", async () => {
    const back: Rev = { revision: 5, status: 'deployed', version: '0.27.2', description: 'Rollback to 3' };
    const r = recorder(...state([r3old, ours4]), '', ...state([r3old, { ...ours4, status: 'superseded' }, back]));
    const acts = activitiesWith(r.run);
    await expect(act(acts.rollbackToRevision, input)).resolves.toEqual({ rolledBack: true });
    await expect(act(acts.rollbackToRevision, input)).resolves.toEqual({ rolledBack: false });
    expect(r.argvs()).toEqual([HISTORY_W1, LABELS_W1, rollbackArgv(), HISTORY_W1, LABELS_W1]);
  });

  it.each<[string, Rev]>([
    [
      'someone upgraded it since',
      { revision: 5, status: 'deployed', version: '0.28.2', description: 'Upgrade complete' },
    ],
    [
      'someone rolled it back elsewhere',
      { revision: 5, status: 'deployed', version: '0.26.2', description: 'Rollback to 2' },
    ],
    [
      'a newer revision carrying the label helm copied from ours',
      { revision: 5, status: 'deployed', version: '0.28.1', label: mark(UID, 4) },
    ],
    ["someone else's failed upgrade", { revision: 5, status: 'failed', version: '0.28.2', description: 'failed' }],
    [
      'another helm at work',
      { revision: 5, status: 'pending-upgrade', version: '0.28.2', description: 'Preparing upgrade' },
    ],
  ])('the newest revision is not ours (%s): non-retryable ReleaseMoved, nothing rolled back', async (_, theirs) => {
    const r = recorder(...state([r3old, { ...ours4, status: 'superseded' }, theirs]));
    const err = await failureOf(act(activitiesWith(r.run).rollbackToRevision, input));
    expect(err).toMatchObject({ type: 'ReleaseMoved', nonRetryable: true });
    expect(err.message).toBe(
      `skoala-init on w1 moved since this upgrade (${line(theirs)}): not rolling back over someone else's revision`
    );
    expect(r.argvs()).toEqual([HISTORY_W1, LABELS_W1]);
    expect(warnings()).toEqual([]);
  });

  it('not installed: non-retryable ReleaseMissing', async () => {
    const r = recorder(notFound());
    const err = await failureOf(act(activitiesWith(r.run).rollbackToRevision, input));
    expect(err).toMatchObject({ type: 'ReleaseMissing', nonRetryable: true });
    expect(err.message).toBe('skoala-init on w1 is not installed');
    expect(r.argvs()).toEqual([HISTORY_W1]);
  });

  describe('a pending revision of ours', () => {
    const NOW = Date.parse('2025-06-01T12:00:00Z');
    const ago = (ms: number) => new Date(NOW - ms).toISOString().replace('.000Z', 'Z');
    const pending = (updated: string): Rev => ({
      revision: 4,
      status: 'pending-upgrade',
      version: '0.28.1',
      updated,
      description: 'Preparing upgrade',
      label: mark(UID, 4),
    });
    beforeEach(() => {
      vi.useFakeTimers({ toFake: ['Date'] });
      vi.setSystemTime(NOW);
    });

    it('younger than pendingGraceMs (our helm may still run): retryable ReleaseLocked, no rollback', async () => {
      const young = pending(ago(60_000));
      const r = recorder(...state([r3, young]));
      const err = await failureOf(act(activitiesWith(r.run, { pendingGraceMs: 300_000 }).rollbackToRevision, input));
      expect(err).toMatchObject({ type: 'ReleaseLocked', nonRetryable: false });
      expect(err.message).toBe(`skoala-init on w1: our helm may still be running (${line(young)})`);
      expect(r.argvs()).toEqual([HISTORY_W1, LABELS_W1]);
      expect(warnings()).toEqual([]);
    });

    it('the default grace is helm timeout + 2 minutes', async () => {
      const young = pending(ago(11 * 60_000));
      const r = recorder(...state([r3, young]));
      const err = await failureOf(act(activitiesWith(r.run).rollbackToRevision, input));
      expect(err).toMatchObject({ type: 'ReleaseLocked', nonRetryable: false });
    });

    it('older than pendingGraceMs: rolled back', async () => {
      const old = pending(ago(10 * 60_000));
      const r = recorder(...state([r3, old]), '');
      await expect(act(activitiesWith(r.run, { pendingGraceMs: 300_000 }).rollbackToRevision, input)).resolves.toEqual({
        rolledBack: true,
      });
      expect(r.argvs()).toEqual([HISTORY_W1, LABELS_W1, rollbackArgv()]);
    });
  });

  it('a failed helm rollback surfaces as the runner classified it', async () => {
    const locked = commandFailure({
      tool: 'helm',
      argv: ['rollback'],
      exitCode: 1,
      stderr: 'Error: another operation (install/upgrade/rollback) is in progress',
    });
    const r = recorder(...state([r3old, ours4]), locked);
    const err = await failureOf(act(activitiesWith(r.run).rollbackToRevision, input));
    expect(err).toMatchObject({ type: 'ReleaseLocked', nonRetryable: false });
  });
});

describe('checkChartVersion', () => {
  const input = { repo: REPO, chart: 'skoala' as const, version: '9.9.9' };
  let archive: Buffer;
  beforeAll(async () => {
    archive = await chartArchive('skoala', '9.9.9');
  });

  it('pulls the archive into the host cache and returns its sha256 with the version', async () => {
    const r = recorder('', pullInto(archive));
    await expect(act(activitiesWith(r.run).checkChartVersion, input)).resolves.toEqual({
      version: '9.9.9',
      sha256: sha256Hex(archive),
    });
    expect(r.argvs()).toEqual([REPO_ADD, PULL('skoala', '9.9.9')]);
    expect(await readFile(path.join(workDir, 'charts', `skoala-9.9.9-${sha256Hex(archive)}.tgz`))).toEqual(archive);
  });

  it('pulls again each time it is asked (plan time), whatever this host already holds', async () => {
    const r = recorder('', pullInto(archive), pullInto(archive));
    const acts = activitiesWith(r.run);
    await act(acts.checkChartVersion, input);
    await act(acts.checkChartVersion, input);
    expect(r.argvs()).toEqual([REPO_ADD, PULL('skoala', '9.9.9'), PULL('skoala', '9.9.9')]);
  });

  it('a version the repository lacks is a non-retryable ChartVersionNotFound', async () => {
    const notFoundInRepo = commandFailure({
      tool: 'helm',
      argv: ['pull', 'skoala/skoala', '--version', '9.9.9'],
      exitCode: 1,
      stderr: `Error: chart "skoala" version "9.9.9" not found in ${REPO.url} repository`,
    });
    // Not in the index this host fetched: fetched once more (helm repo update), then refused.
    const r = recorder('', notFoundInRepo, '', notFoundInRepo);
    const err = await failureOf(act(activitiesWith(r.run).checkChartVersion, input));
    expect(r.argvs()).toEqual([
      REPO_ADD,
      PULL('skoala', '9.9.9'),
      ['helm', 'repo', 'update', 'skoala'],
      PULL('skoala', '9.9.9'),
    ]);
    expect(err).toMatchObject({ type: 'ChartVersionNotFound', nonRetryable: true });
    expect(err.message).toBe(`chart skoala 9.9.9 is not in repository skoala (${REPO.url})`);
    // Nothing half-pulled is left in the cache.
    expect(await readdir(path.join(workDir, 'charts'))).toEqual([]);
  });

  it('an unreachable repository stays retryable', async () => {
    const down = commandFailure({
      tool: 'helm',
      argv: ['pull', 'skoala/skoala', '--version', '9.9.9'],
      exitCode: 1,
      stderr: `Error: looks like "${REPO.url}" is not a valid chart repository or cannot be reached: Get "${REPO.url}/index.yaml": dial tcp: connect: connection refused`,
    });
    const err = await failureOf(act(activitiesWith(recorder(down).run).checkChartVersion, input));
    expect(err.nonRetryable).toBe(false);
  });
});

describe('verifyRelease', () => {
  const input = { cluster: w1, release: 'skoala-init' as const, version: '0.28.1' };
  const r3: Rev = { revision: 3, status: 'superseded', version: '0.27.2' };

  it('deployed at the target: returns the revision, read from helm history', async () => {
    const r = recorder(history([r3, { revision: 4, status: 'deployed', version: '0.28.1' }]));
    await expect(act(activitiesWith(r.run).verifyRelease, input)).resolves.toEqual({ revision: 4 });
    expect(r.argvs()).toEqual([HISTORY_W1]);
  });

  it.each([
    [history([{ ...r3, status: 'deployed' }]), 'skoala-init on w1 is deployed at 0.27.2, expected deployed at 0.28.1'],
    [
      history([
        { ...r3, status: 'deployed' },
        { revision: 4, status: 'failed', version: '0.28.1' },
      ]),
      'skoala-init on w1 is failed at 0.28.1, expected deployed at 0.28.1',
    ],
    ['[]', 'skoala-init on w1 is not installed, expected deployed at 0.28.1'],
  ])('fails when not deployed at the target (%#)', async (out, message) => {
    const err = await failureOf(act(activitiesWith(recorder(out).run).verifyRelease, input));
    expect(err.type).toBe('ReleaseNotAtTarget');
    expect(err.message).toBe(message);
  });

  it('a release that does not exist: ReleaseNotAtTarget, not installed', async () => {
    const r = recorder(notFound());
    const err = await failureOf(act(activitiesWith(r.run).verifyRelease, input));
    expect(err.type).toBe('ReleaseNotAtTarget');
    expect(err.message).toBe('skoala-init on w1 is not installed, expected deployed at 0.28.1');
    expect(r.argvs()).toEqual([HISTORY_W1]);
    expect(r.calls[0]?.opts).toEqual({ cluster: 'w1' });
  });
});

describe('preflightCluster', () => {
  const VERSION_GLOBAL = ['kubectl', '--kubeconfig', '/kc/global.yaml', '--context', 'admin', 'version', '-o', 'json'];
  const VERSION_W1 = ['kubectl', '--kubeconfig', '/kc/w1.yaml', 'version', '-o', 'json'];
  const serverVersion = (v: string) =>
    JSON.stringify({ clientVersion: { gitVersion: 'v1.33.1' }, serverVersion: { gitVersion: v } });

  it('control plane: Kubernetes version, then the history and the labels of skoala (no CRD record)', async () => {
    const revs: Rev[] = [
      { revision: 2, status: 'superseded', version: '0.27.1' },
      { revision: 3, status: 'deployed', version: '0.27.2' },
    ];
    const r = recorder(serverVersion('v1.24.17-gke.100'), ...state(revs, 'skoala'), '');
    const facts = await act(activitiesWith(r.run).preflightCluster, {
      upgradeId: UID,
      cluster: global,
      release: 'skoala',
    });
    expect(facts).toEqual({
      cluster: 'global',
      kubeVersion: '1.24.17',
      release: {
        installed: true,
        chartVersion: '0.27.2',
        revision: 3,
        status: 'deployed',
        description: 'Upgrade complete',
        historyLine: `revision 3 (deployed, skoala-0.27.2, ${T0}): Upgrade complete`,
        ours: false,
        updated: T0,
        lastDeployed: { revision: 3, chartVersion: '0.27.2' },
      },
    });
    expect(r.argvs()).toEqual([
      VERSION_GLOBAL,
      [
        'helm',
        '--kubeconfig',
        '/kc/global.yaml',
        '--kube-context',
        'admin',
        'history',
        'skoala',
        '-n',
        'skoala-system',
        '--max',
        '20',
        '-o',
        'json',
      ],
      [
        'kubectl',
        '--kubeconfig',
        '/kc/global.yaml',
        '--context',
        'admin',
        'get',
        'secrets',
        '-n',
        'skoala-system',
        '-l',
        'owner=helm,name=skoala',
        '-o',
        'jsonpath={range .items[*]}{.metadata.labels}{"\\n"}{end}',
      ],
      [
        'kubectl',
        '--kubeconfig',
        '/kc/global.yaml',
        '--context',
        'admin',
        'get',
        'configmap',
        'skoala-upgrade-rollback',
        '-n',
        'skoala-system',
        '--ignore-not-found',
        '-o',
        'json',
      ],
    ]);
  });

  it('worker: a pending revision of ours, the last deployed one, and the CRD record', async () => {
    const pendingOurs: Rev = {
      revision: 4,
      status: 'pending-upgrade',
      version: '0.28.1',
      updated: '2025-01-02T03:04:05Z',
      description: 'Preparing upgrade',
      label: mark(UID, 4),
    };
    const record = JSON.stringify({
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: 'skoala-upgrade-crds', namespace: 'skoala-system' },
      data: { version: '0.27.2', upgradeId: 'skoala-upgrade-prod-0.27.2', at: '2024-12-01T00:00:00.000Z' },
    });
    const r = recorder(
      serverVersion('v1.30.2'),
      ...state([{ revision: 3, status: 'deployed', version: '0.27.2' }, pendingOurs]),
      record,
      ''
    );
    const facts = await act(activitiesWith(r.run).preflightCluster, {
      upgradeId: UID,
      cluster: w1,
      release: 'skoala-init',
    });
    expect(facts).toEqual({
      cluster: 'w1',
      kubeVersion: '1.30.2',
      release: {
        installed: true,
        chartVersion: '0.28.1',
        revision: 4,
        status: 'pending-upgrade',
        description: 'Preparing upgrade',
        historyLine: line(pendingOurs),
        ours: true,
        updated: '2025-01-02T03:04:05Z',
        lastDeployed: { revision: 3, chartVersion: '0.27.2' },
      },
      crds: { version: '0.27.2', upgradeId: 'skoala-upgrade-prod-0.27.2', at: '2024-12-01T00:00:00.000Z' },
    });
    expect(r.argvs()).toEqual([VERSION_W1, HISTORY_W1, LABELS_W1, CRD_RECORD_W1, ROLLBACK_W1]);
  });

  it('the same revision in another upgrade is not ours', async () => {
    const revs: Rev[] = [{ revision: 4, status: 'failed', version: '0.28.1', label: mark(UID, 4) }];
    const r = recorder(serverVersion('v1.30.2'), ...state(revs), '', '');
    const facts = await act(activitiesWith(r.run).preflightCluster, {
      upgradeId: 'u-2',
      cluster: w1,
      release: 'skoala-init',
    });
    expect(facts.release.ours).toBe(false);
  });

  it('worker not installed, no CRD record: no labels read, no crds', async () => {
    const r = recorder(serverVersion('v1.30.2'), notFound(), '', '');
    const facts = await act(activitiesWith(r.run).preflightCluster, {
      upgradeId: UID,
      cluster: w1,
      release: 'skoala-init',
    });
    expect(facts).toEqual({ cluster: 'w1', kubeVersion: '1.30.2', release: { installed: false } });
    expect(r.argvs()).toEqual([VERSION_W1, HISTORY_W1, CRD_RECORD_W1, ROLLBACK_W1]);
  });

  it('a rollback this product recorded on the cluster comes back in the facts', async () => {
    const rolledBack = { upgradeId: UID, version: '0.28.2', at: '2026-11-29T00:00:00.000Z', cause: 'hive never ready' };
    const r = recorder(
      serverVersion('v1.30.2'),
      notFound(),
      '',
      JSON.stringify({ kind: 'ConfigMap', data: rolledBack })
    );
    const facts = await act(activitiesWith(r.run).preflightCluster, {
      upgradeId: UID,
      cluster: w1,
      release: 'skoala-init',
    });
    expect(facts.rolledBack).toEqual(rolledBack);
  });

  it("the fleet's files are checked on this host first: a missing one is FileNotFound naming the field", async () => {
    const there = path.join(dir, 'site.yaml');
    await writeFile(there, 'a: 1\n');
    const missing = path.join(dir, 'nope', 'extra-crds.yaml');
    const r = recorder();
    const err = await failureOf(
      act(activitiesWith(r.run).preflightCluster, {
        upgradeId: UID,
        cluster: w1,
        release: 'skoala-init',
        files: [
          { field: 'valuesFiles.skoalaInit[0]', path: there },
          { field: 'extraCrds[0]', path: missing },
        ],
      })
    );
    expect(err).toMatchObject({ type: 'FileNotFound', nonRetryable: true });
    expect(err.message).toBe(`extraCrds[0]: ${missing} does not exist or cannot be read on this worker host`);
    expect(r.calls).toEqual([]);
  });

  it('files that are there: preflight goes on to the cluster', async () => {
    const there = path.join(dir, 'site.yaml');
    await writeFile(there, 'a: 1\n');
    const r = recorder(serverVersion('v1.30.2'), notFound(), '', '');
    await act(activitiesWith(r.run).preflightCluster, {
      upgradeId: UID,
      cluster: w1,
      release: 'skoala-init',
      files: [{ field: 'valuesFiles.skoalaInit[0]', path: there }],
    });
    expect(r.calls).toHaveLength(4);
  });

  it('an unreadable server version is non-retryable', async () => {
    const r = recorder(JSON.stringify({ clientVersion: { gitVersion: 'v1.33.1' } }));
    const err = await failureOf(
      act(activitiesWith(r.run).preflightCluster, { upgradeId: UID, cluster: w1, release: 'skoala-init' })
    );
    expect(err.nonRetryable).toBe(true);
    expect(err.message).toBe('w1: cannot read the Kubernetes version ("")');
  });
});

describe('read-only and small steps', () => {
  it('decideRules: what runbook/rules.ts decides for the upgrade', async () => {
    const input = { from: '0.18.0', to: '0.19.2', dbMigration: 'auto' as const, uiVersion: '0.19.0' };
    const rules = await act(activitiesWith(recorder().run).decideRules, input);
    expect(rules).toEqual(decideRules('0.18.0', '0.19.2', { dbMigration: 'auto', uiVersion: '0.19.0' }));
    expect(rules).toMatchObject({ dbMigrationNeed: 'required', runDbMigration: true, chartManagesCrds: false });
    expect(rules.skoalaSet).toContainEqual(['ui.image.tag', 'v0.19.0']);
  });

  it('addChartRepo and updateChartRepo without an upgrade ID (old histories): every time, as before', async () => {
    const r = recorder('"skoala" has been added\n', 'Update Complete.\n', '', '');
    const acts = activitiesWith(r.run);
    for (let i = 0; i < 2; i++) {
      await act(acts.addChartRepo, { repo: REPO });
      await act(acts.updateChartRepo, { repo: REPO });
    }
    expect(r.argvs()).toEqual([REPO_ADD, REPO_UPDATE, REPO_ADD, REPO_UPDATE]);
  });

  describe('addChartRepo and updateChartRepo: once per upgrade on this host', () => {
    /** One cluster's two steps, as run-steps.ts runs them. */
    const steps = async (acts: ReturnType<typeof activitiesWith>, upgradeId: string, repo = REPO) => {
      await act(acts.addChartRepo, { repo, upgradeId });
      await act(acts.updateChartRepo, { repo, upgradeId });
    };

    it('the next cluster of the same upgrade runs no command; another upgrade runs both again', async () => {
      const r = recorder('', '', '', '');
      const acts = activitiesWith(r.run);
      await steps(acts, 'u-1');
      await steps(acts, 'u-1');
      await steps(acts, 'u-1');
      expect(r.argvs()).toEqual([REPO_ADD, REPO_UPDATE]);
      await steps(acts, 'u-2');
      await steps(acts, 'u-2');
      expect(r.argvs()).toEqual([REPO_ADD, REPO_UPDATE, REPO_ADD, REPO_UPDATE]);
    });

    it('clusters running at once share one add and one update', async () => {
      const r = recorder('', '');
      const acts = activitiesWith(r.run);
      await Promise.all([steps(acts, 'u-1'), steps(acts, 'u-1'), steps(acts, 'u-1')]);
      expect(r.argvs()).toEqual([REPO_ADD, REPO_UPDATE]);
    });

    it('a failed add or update is forgotten: the retry runs it again', async () => {
      const unreachable = () =>
        commandFailure({ tool: 'helm', argv: ['repo'], exitCode: 1, stderr: 'Error: connection refused' });
      const r = recorder(unreachable(), '', unreachable(), '');
      const acts = activitiesWith(r.run);
      await expect(act(acts.addChartRepo, { repo: REPO, upgradeId: 'u-1' })).rejects.toBeInstanceOf(Error);
      await act(acts.addChartRepo, { repo: REPO, upgradeId: 'u-1' });
      await expect(act(acts.updateChartRepo, { repo: REPO, upgradeId: 'u-1' })).rejects.toBeInstanceOf(Error);
      await steps(acts, 'u-1');
      await steps(acts, 'u-1');
      expect(r.argvs()).toEqual([REPO_ADD, REPO_ADD, REPO_UPDATE, REPO_UPDATE]);
    });

    it('other settings for the same repository (a new password, CA, URL) run both again', async () => {
      const r = recorder('', '', '', '', '', '');
      const acts = activitiesWith(r.run);
      const moved = { ...REPO, url: 'https://mirror.example/chartrepo/skoala' };
      await steps(acts, 'u-1');
      await steps(acts, 'u-1', moved);
      // Back to the first settings: helm's entry for `skoala` now points at the mirror.
      await steps(acts, 'u-1');
      expect(r.argvs()).toEqual([
        REPO_ADD,
        REPO_UPDATE,
        ['helm', 'repo', 'add', 'skoala', moved.url, '--force-update'],
        REPO_UPDATE,
        REPO_ADD,
        REPO_UPDATE,
      ]);
    });
  });

  it('deleteAdmissionJobs reports what was deleted; absent Jobs are fine', async () => {
    const r = recorder('job.batch "gateway-api-admission" deleted\n', '');
    const acts = activitiesWith(r.run);
    const jobs = ['gateway-api-admission', 'gateway-api-admission-patch'];
    await expect(act(acts.deleteAdmissionJobs, { cluster: w1, jobs })).resolves.toEqual({
      deleted: ['job.batch "gateway-api-admission" deleted'],
    });
    await expect(act(acts.deleteAdmissionJobs, { cluster: w1, jobs })).resolves.toEqual({ deleted: [] });
    expect(r.argvs()[0]).toEqual([
      'kubectl',
      '--kubeconfig',
      '/kc/w1.yaml',
      'delete',
      'jobs',
      '-n',
      'skoala-system',
      'gateway-api-admission',
      'gateway-api-admission-patch',
      '--ignore-not-found',
    ]);
  });
});

describe('reapplyCrds', () => {
  const CONTOUR = 'charts/contour-provisioner/crds/contour.yaml';
  const GATEWAY_API = 'charts/contour-provisioner-prereq/crds/gateway-api.yaml';
  const step = (extraFiles: string[] = []): Step & { kind: 'reapplyCrds' } => ({
    kind: 'reapplyCrds',
    chart: 'skoala-init',
    repo: REPO,
    version: '0.52.0',
    chartFiles: [CONTOUR, GATEWAY_API],
    extraFiles,
    allowDowngrade: false,
  });

  /** The chart archive holding these CRD files, as `helm pull --destination` leaves it. */
  const crdChart = (files: string[]) =>
    chartArchive(
      'skoala-init',
      '0.52.0',
      Object.fromEntries(files.map((f) => [f, 'kind: CustomResourceDefinition\n']))
    );
  const pull = async (files: string[]) => pullInto(await crdChart(files));
  /** The step's temp dir, from the file its first apply names. */
  const tmpOf = (file: string) => file.slice(0, file.indexOf('/skoala-init/'));
  const applied = (...names: string[]) =>
    JSON.stringify({
      apiVersion: 'v1',
      kind: 'List',
      items: names.map((name) => ({ kind: 'CustomResourceDefinition', metadata: { name } })),
    });
  /** Stands in for the record's `kubectl apply`: keeps what the file held (it is gone afterwards). */
  const recordApply = (into: { text?: string }) => async (argv: string[]) => {
    into.text = await readFile(argv[argv.indexOf('-f') + 1] as string, 'utf8');
    return 'configmap/skoala-upgrade-crds\n';
  };
  const applyRecord = (file: string) => [
    'kubectl',
    '--kubeconfig',
    '/kc/w1.yaml',
    'apply',
    '--server-side',
    '--field-manager',
    'skoala-upgrade',
    '--force-conflicts',
    '-n',
    'skoala-system',
    '-f',
    file,
    '-o',
    'name',
  ];

  it('pulls the target chart, applies every CRD file in one server-side apply (chart files first), records the step, cleans up', async () => {
    const extra = path.join(dir, 'extra.yaml');
    await writeFile(extra, 'kind: CustomResourceDefinition\n');
    const record: { text?: string } = {};
    const r = recorder(
      '',
      await pull([CONTOUR, GATEWAY_API]),
      applied(
        'httpproxies.projectcontour.io',
        'extensionservices.projectcontour.io',
        'gateways.gateway.networking.k8s.io',
        'extras.example.com'
      ),
      recordApply(record)
    );
    const before = Date.now();
    const out = await act(activitiesWith(r.run).reapplyCrds, { upgradeId: UID, cluster: w1, step: step([extra]) });
    expect(out).toEqual({
      applied: [
        'httpproxies.projectcontour.io',
        'extensionservices.projectcontour.io',
        'gateways.gateway.networking.k8s.io',
        'extras.example.com',
      ],
    });
    const applyArgv = r.calls[2]?.argv ?? [];
    const tmp = tmpOf(applyArgv[applyArgv.indexOf('-f') + 1] as string);
    expect(path.dirname(tmp)).toBe(workDir);
    const apply = (...files: string[]) => [
      'kubectl',
      '--kubeconfig',
      '/kc/w1.yaml',
      'apply',
      '--server-side',
      '--force-conflicts',
      '--field-manager',
      'skoala-upgrade',
      ...files.flatMap((f) => ['-f', f]),
      '-o',
      'json',
    ];
    expect(r.argvs()).toEqual([
      REPO_ADD,
      PULL('skoala-init', '0.52.0'),
      apply(path.join(tmp, 'skoala-init', CONTOUR), path.join(tmp, 'skoala-init', GATEWAY_API), extra),
      applyRecord(expect.stringMatching(/\/record-[^/]+\/skoala-upgrade-crds\.yaml$/) as unknown as string),
    ]);
    expect(r.argvs().flat()).not.toContain('delete');
    expect(existsSync(tmp)).toBe(false);
    // The archive stays in the host's chart cache for the next cluster; the unpacked copy is gone.
    expect(await readdir(workDir)).toEqual(['charts']);

    // the record a later run reads back (kubectl get configmap skoala-upgrade-crds)
    const cm = parse(record.text ?? '') as { data: { at: string } };
    expect(cm).toEqual({
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: 'skoala-upgrade-crds', labels: { 'app.kubernetes.io/managed-by': 'skoala-upgrade' } },
      data: {
        version: '0.52.0',
        upgradeId: 'u-1',
        at: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/),
      },
    });
    expect(Date.parse(cm.data.at)).toBeGreaterThanOrEqual(before);
    expect(Date.parse(cm.data.at)).toBeLessThanOrEqual(Date.now());
  });

  it('a CRD file missing from the chart: non-retryable, nothing applied, nothing recorded', async () => {
    const r = recorder('', await pull([GATEWAY_API]));
    const err = await failureOf(act(activitiesWith(r.run).reapplyCrds, { upgradeId: UID, cluster: w1, step: step() }));
    expect(err).toMatchObject({ type: 'FileNotFound', nonRetryable: true });
    expect(err.message).toBe(`CRD manifest ${path.join('skoala-init', CONTOUR)} is missing (chart skoala-init 0.52.0)`);
    expect(r.calls).toHaveLength(2);
    expect(await readdir(workDir)).toEqual(['charts']);
  });

  it('the API server refusing a CRD update becomes CrdRefused, and the step is not recorded', async () => {
    const refused = commandFailure({
      tool: 'kubectl',
      argv: ['apply'],
      exitCode: 1,
      stderr:
        'The CustomResourceDefinition "httproutes.gateway.networking.k8s.io" is invalid: status.storedVersions[0]: Invalid value: "v1alpha2": must appear in spec.versions',
    });
    const r = recorder('', await pull([CONTOUR, GATEWAY_API]), refused);
    const err = await failureOf(act(activitiesWith(r.run).reapplyCrds, { upgradeId: UID, cluster: w1, step: step() }));
    expect(err).toMatchObject({ type: 'CrdRefused', nonRetryable: true });
    expect(err.message).toMatch(
      /^the API server refused to update CRDs from contour\.yaml, gateway-api\.yaml in place on w1: /
    );
    expect(r.calls).toHaveLength(3);
    expect(await readdir(workDir)).toEqual(['charts']);
  });

  it('pinned: an archive that is not the one the plan pinned is refused before any CRD is read or applied', async () => {
    const pinnedArchive = await crdChart([CONTOUR, GATEWAY_API]);
    const served = await crdChart([CONTOUR]);
    const r = recorder('', pullInto(served), pullInto(served));
    const pinned = { ...step(), chartSha256: sha256Hex(pinnedArchive) };
    const err = await failureOf(act(activitiesWith(r.run).reapplyCrds, { upgradeId: UID, cluster: w1, step: pinned }));
    expect(err).toMatchObject({ type: 'ChartDigestMismatch', nonRetryable: true });
    expect(err.message).toContain(`expected sha256 ${sha256Hex(pinnedArchive)}, got ${sha256Hex(served)}`);
    expect(r.argvs()).toEqual([REPO_ADD, PULL('skoala-init', '0.52.0'), PULL('skoala-init', '0.52.0')]);
  });

  it('the next cluster unpacks the archive this host already pulled: no helm command before its applies', async () => {
    const r = recorder(
      '',
      await pull([CONTOUR, GATEWAY_API]),
      applied('a.projectcontour.io', 'b.gateway.networking.k8s.io'),
      'configmap/skoala-upgrade-crds\n',
      applied('a.projectcontour.io', 'b.gateway.networking.k8s.io'),
      'configmap/skoala-upgrade-crds\n'
    );
    const acts = activitiesWith(r.run);
    const w2: ClusterRef = { ...w1, name: 'w2', kubeconfig: '/kc/w2.yaml' };
    await act(acts.reapplyCrds, { upgradeId: UID, cluster: w1, step: step() });
    await act(acts.reapplyCrds, { upgradeId: UID, cluster: w2, step: step() });
    expect(r.calls.map((c) => c.tool)).toEqual(['helm', 'helm', ...Array<string>(4).fill('kubectl')]);
    expect(r.calls.slice(4).map((c) => c.argv.slice(0, 3))).toEqual(
      Array(2).fill(['--kubeconfig', '/kc/w2.yaml', 'apply'])
    );
  });
});
