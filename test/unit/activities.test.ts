/**
 * The activities of activities/index.ts in a MockActivityEnvironment, with a recording
 * CommandRunner that returns canned helm/kubectl output: the exact argument arrays each activity
 * runs, and what it makes of the answers. Backups and scratch space are real temp directories.
 */
import { ApplicationFailure, type LogLevel, type LogMetadata, type Logger } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createActivities } from '../../activities';
import { commandFailure } from '../../activities/errors';
import type { CommandRunner, RunOptions, Tool } from '../../activities/exec';
import type { BackupRef, ClusterRef, Step } from '../../runbook/types';

const REPO = { name: 'skoala', url: 'https://release.daocloud.io/chartrepo/skoala' };
const w1: ClusterRef = { name: 'w1', kubeconfig: '/kc/w1.yaml', namespace: 'skoala-system' };
const global: ClusterRef = {
  name: 'global',
  kubeconfig: '/kc/global.yaml',
  context: 'admin',
  namespace: 'skoala-system',
};

const LIST_W1 = [
  '--kubeconfig',
  '/kc/w1.yaml',
  'list',
  '-n',
  'skoala-system',
  '-a',
  '--filter',
  '^skoala-init$',
  '-o',
  'json',
];

const helmList = (status: string, version: string, revision: number, release = 'skoala-init'): string =>
  JSON.stringify([
    {
      name: release,
      namespace: 'skoala-system',
      revision: String(revision),
      updated: '2025-01-01 00:00:00.000000 +0000 UTC',
      status,
      chart: `${release}-${version}`,
      app_version: version,
    },
  ]);

type Reply = string | Error | ((argv: string[]) => string | Promise<string>);
interface Call {
  tool: Tool;
  argv: string[];
  opts?: RunOptions;
}

/** A CommandRunner that records every call and answers from a script, in order. */
function recorder(...replies: Reply[]): { run: CommandRunner; calls: Call[]; argvs: () => string[][] } {
  const calls: Call[] = [];
  const run: CommandRunner = async (tool, argv, opts) => {
    calls.push({ tool, argv: [...argv], ...(opts ? { opts } : {}) });
    const reply = replies.shift();
    if (reply === undefined) throw new Error(`unexpected command: ${tool} ${argv.join(' ')}`);
    if (reply instanceof Error) throw reply;
    return { stdout: typeof reply === 'function' ? await reply(argv) : reply, stderr: '' };
  };
  return { run, calls, argvs: () => calls.map((c) => [c.tool, ...c.argv]) };
}

async function failureOf(p: Promise<unknown>): Promise<ApplicationFailure> {
  try {
    await p;
  } catch (err) {
    if (err instanceof ApplicationFailure) return err;
    throw err;
  }
  throw new Error('the activity succeeded');
}

/** Keeps the activities' log lines for assertions instead of printing them. */
class RecordingLogger implements Logger {
  readonly entries: { level: LogLevel; message: string; meta?: LogMetadata }[] = [];
  log(level: LogLevel, message: string, meta?: LogMetadata): void {
    this.entries.push({ level, message, ...(meta ? { meta } : {}) });
  }
  trace = (message: string, meta?: LogMetadata): void => this.log('TRACE', message, meta);
  debug = (message: string, meta?: LogMetadata): void => this.log('DEBUG', message, meta);
  info = (message: string, meta?: LogMetadata): void => this.log('INFO', message, meta);
  warn = (message: string, meta?: LogMetadata): void => this.log('WARN', message, meta);
  error = (message: string, meta?: LogMetadata): void => this.log('ERROR', message, meta);
}

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
  await rm(dir, { recursive: true, force: true });
});

/** Runs an activity in the mock environment, keeping its argument and result types. */
function act<A extends unknown[], R>(fn: (...args: A) => Promise<R>, ...args: NoInfer<A>): Promise<R> {
  return env.run<A, R, (...args: A) => Promise<R>>(fn, ...args);
}

const activitiesWith = (run: CommandRunner) =>
  createActivities({ helm: 'helm', kubectl: 'kubectl', backupDir, workDir, run, jobPollMs: 5, helmTimeoutMs: 60_000 });

const VALUES = 'hive:\n  configMap:\n    data:\n      database:\n        password: hunter2\n';

describe('backupValues', () => {
  const input = { upgradeId: 'u-1', cluster: w1, release: 'skoala-init' as const, revision: 3 };

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
      ref: path.join('u-1', 'w1', 'skoala-init.yaml'),
      sha256: createHash('sha256').update(VALUES).digest('hex'),
      reused: false,
    });
    expect(JSON.stringify(ref)).not.toContain('hunter2');
    const file = path.join(backupDir, ref.ref);
    expect(await readFile(file, 'utf8')).toBe(VALUES);
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    expect((await stat(path.dirname(file))).mode & 0o077).toBe(0);
    // no temp file left behind
    expect(await readdir(path.dirname(file))).toEqual(['skoala-init.yaml']);
  });

  it('a second call reuses the saved copy without running helm', async () => {
    const r = recorder(VALUES);
    const acts = activitiesWith(r.run);
    const first = await act(acts.backupValues, input);
    // a retry after the upgrade started must not capture the new values
    const second = await act(acts.backupValues, { ...input, revision: 4 });
    expect(r.calls).toHaveLength(1);
    expect(second).toEqual({ ...first, reused: true });
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
      path.join('u-1', 'w1', 'skoala-init.yaml'),
      path.join('u-1', 'w2', 'skoala-init.yaml'),
      path.join('u-2', 'w1', 'skoala-init.yaml'),
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
  const upgradeArgv = (backupFile: string) => [
    'helm',
    '--kubeconfig',
    '/kc/w1.yaml',
    'upgrade',
    '--install',
    '--create-namespace',
    '-n',
    'skoala-system',
    'skoala-init',
    'skoala-init',
    '--repo',
    REPO.url,
    '--version',
    '0.28.1',
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
  ];

  async function backupFor(upgradeId = 'u-1'): Promise<BackupRef> {
    const r = recorder(VALUES);
    return act(activitiesWith(r.run).backupValues, { upgradeId, cluster: w1, release: 'skoala-init', revision: 3 });
  }

  it('lists, upgrades with the backup first, lists again', async () => {
    const backup = await backupFor();
    const r = recorder(helmList('deployed', '0.27.2', 3), '', helmList('deployed', '0.28.1', 4));
    const out = await act(activitiesWith(r.run).upgradeRelease, { cluster: w1, step, backup });
    expect(out).toEqual({ revision: 4, alreadyDone: false });
    expect(r.argvs()).toEqual([
      ['helm', ...LIST_W1],
      upgradeArgv(path.join(backupDir, 'u-1', 'w1', 'skoala-init.yaml')),
      ['helm', ...LIST_W1],
    ]);
    expect(r.calls[1]?.opts).toEqual({ timeoutMs: 60_000 });
  });

  it('already deployed at the target after fromRevision: only the list, no upgrade', async () => {
    const backup = await backupFor();
    const r = recorder(helmList('deployed', '0.28.1', 4));
    const out = await act(activitiesWith(r.run).upgradeRelease, { cluster: w1, step, backup });
    expect(out).toEqual({ revision: 4, alreadyDone: true });
    expect(r.argvs()).toEqual([['helm', ...LIST_W1]]);
  });

  it('pending-upgrade (a killed helm): rolls back to fromRevision, then upgrades', async () => {
    const backup = await backupFor();
    const r = recorder(helmList('pending-upgrade', '0.28.1', 4), '', '', helmList('deployed', '0.28.1', 6));
    const out = await act(activitiesWith(r.run).upgradeRelease, { cluster: w1, step, backup });
    expect(out).toEqual({ revision: 6, alreadyDone: false });
    expect(r.argvs()).toEqual([
      ['helm', ...LIST_W1],
      ['helm', '--kubeconfig', '/kc/w1.yaml', 'rollback', 'skoala-init', '3', '-n', 'skoala-system'],
      upgradeArgv(path.join(backupDir, 'u-1', 'w1', 'skoala-init.yaml')),
      ['helm', ...LIST_W1],
    ]);
    expect(logger.entries.filter((e) => e.level === 'WARN')).toEqual([
      {
        level: 'WARN',
        message: 'release left pending by an interrupted helm; rolling back to the pre-upgrade revision',
        meta: expect.objectContaining({
          cluster: 'w1',
          release: 'skoala-init',
          status: 'pending-upgrade',
          revision: 3,
        }),
      },
    ]);
  });

  it('pending-install: non-retryable ReleaseStuck, nothing run but the list', async () => {
    const backup = await backupFor();
    const r = recorder(helmList('pending-install', '0.28.1', 1));
    const err = await failureOf(act(activitiesWith(r.run).upgradeRelease, { cluster: w1, step, backup }));
    expect(err).toMatchObject({ type: 'ReleaseStuck', nonRetryable: true });
    expect(err.message).toBe('skoala-init on w1 is stuck pending-install; check it with helm history before retrying');
    expect(r.argvs()).toEqual([['helm', ...LIST_W1]]);
  });

  it('a pending release on a fresh install has nothing to roll back to: ReleaseStuck', async () => {
    const r = recorder(helmList('pending-upgrade', '0.28.1', 2));
    const fresh = { ...step, useBackup: false, fromRevision: undefined };
    const err = await failureOf(act(activitiesWith(r.run).upgradeRelease, { cluster: w1, step: fresh }));
    expect(err).toMatchObject({ type: 'ReleaseStuck', nonRetryable: true });
    expect(r.calls).toHaveLength(1);
  });

  it('a fresh install: no -f for a backup', async () => {
    const r = recorder('[]', '', helmList('deployed', '0.28.1', 1));
    const fresh = { ...step, useBackup: false, valuesFiles: [], fromRevision: undefined };
    const out = await act(activitiesWith(r.run).upgradeRelease, { cluster: w1, step: fresh });
    expect(out).toEqual({ revision: 1, alreadyDone: false });
    expect(r.calls[1]?.argv).not.toContain('-f');
  });

  it('a backup that is needed but missing: non-retryable, no upgrade', async () => {
    const r = recorder(helmList('deployed', '0.27.2', 3));
    const err = await failureOf(act(activitiesWith(r.run).upgradeRelease, { cluster: w1, step }));
    expect(err).toMatchObject({ type: 'BackupMissing', nonRetryable: true });
    expect(r.calls).toHaveLength(1);
  });

  it('a backup changed since it was taken is not used', async () => {
    const backup = await backupFor();
    await writeFile(path.join(backupDir, backup.ref), 'tampered: true\n');
    const r = recorder(helmList('deployed', '0.27.2', 3));
    await expect(act(activitiesWith(r.run).upgradeRelease, { cluster: w1, step, backup })).rejects.toThrow(
      /does not match the checksum recorded when it was taken/
    );
    expect(r.calls).toHaveLength(1);
  });

  it('a failed helm upgrade surfaces as the runner classified it', async () => {
    const backup = await backupFor();
    const locked = commandFailure({
      tool: 'helm',
      argv: ['upgrade'],
      exitCode: 1,
      stderr: 'Error: UPGRADE FAILED: another operation (install/upgrade/rollback) is in progress',
    });
    const r = recorder(helmList('deployed', '0.27.2', 3), locked);
    const err = await failureOf(act(activitiesWith(r.run).upgradeRelease, { cluster: w1, step, backup }));
    expect(err).toMatchObject({ type: 'ReleaseLocked', nonRetryable: false });
  });
});

describe('checkChartVersion', () => {
  const input = { repo: REPO, chart: 'skoala' as const, version: '9.9.9' };
  const SHOW = ['helm', 'show', 'chart', 'skoala', '--repo', REPO.url, '--version', '9.9.9'];

  it('returns the version when the repository has it', async () => {
    const r = recorder('apiVersion: v2\nname: skoala\nversion: 9.9.9\n');
    await expect(act(activitiesWith(r.run).checkChartVersion, input)).resolves.toEqual({ version: '9.9.9' });
    expect(r.argvs()).toEqual([SHOW]);
  });

  it('a version the repository lacks is a non-retryable ChartVersionNotFound', async () => {
    const notFound = commandFailure({
      tool: 'helm',
      argv: SHOW.slice(1),
      exitCode: 1,
      stderr: `Error: chart "skoala" version "9.9.9" not found in ${REPO.url} repository`,
    });
    const r = recorder(notFound);
    const err = await failureOf(act(activitiesWith(r.run).checkChartVersion, input));
    expect(err).toMatchObject({ type: 'ChartVersionNotFound', nonRetryable: true });
    expect(err.message).toBe(`chart skoala 9.9.9 is not in repository skoala (${REPO.url})`);
  });

  it('an unreachable repository stays retryable', async () => {
    const down = commandFailure({
      tool: 'helm',
      argv: SHOW.slice(1),
      exitCode: 1,
      stderr: `Error: looks like "${REPO.url}" is not a valid chart repository or cannot be reached: Get "${REPO.url}/index.yaml": dial tcp: connect: connection refused`,
    });
    const err = await failureOf(act(activitiesWith(recorder(down).run).checkChartVersion, input));
    expect(err.nonRetryable).toBe(false);
  });
});

describe('runDbMigrationJob', () => {
  const input = { cluster: global, manifest: '/ops/job.yaml' };
  const APPLY = [
    'kubectl',
    '--kubeconfig',
    '/kc/global.yaml',
    '--context',
    'admin',
    'apply',
    '-n',
    'skoala-system',
    '-f',
    '/ops/job.yaml',
    '-o',
    'name',
  ];
  const GET = [
    'kubectl',
    '--kubeconfig',
    '/kc/global.yaml',
    '--context',
    'admin',
    'get',
    '-n',
    'skoala-system',
    'job.batch/skoala-db-upgrade',
    '-o',
    'json',
  ];
  const job = (conditions: object[] | undefined) =>
    JSON.stringify({ kind: 'Job', status: conditions ? { conditions } : { active: 1 } });

  it('applies the Job and waits for Complete, heartbeating meanwhile', async () => {
    const beats: unknown[] = [];
    env.on('heartbeat', (d: unknown) => beats.push(d));
    const r = recorder(
      'job.batch/skoala-db-upgrade\n',
      job(undefined),
      job([{ type: 'Complete', status: 'False' }]),
      job([
        { type: 'SuccessCriteriaMet', status: 'True' },
        { type: 'Complete', status: 'True' },
      ])
    );
    await expect(act(activitiesWith(r.run).runDbMigrationJob, input)).resolves.toEqual({
      job: 'job.batch/skoala-db-upgrade',
    });
    expect(r.argvs()).toEqual([APPLY, GET, GET, GET]);
    expect(beats).toEqual([
      { waitingFor: 'job.batch/skoala-db-upgrade' },
      { waitingFor: 'job.batch/skoala-db-upgrade' },
    ]);
  });

  it("fails non-retryable with the Job's reason when it failed", async () => {
    const r = recorder(
      'job.batch/skoala-db-upgrade\n',
      job(undefined),
      job([
        { type: 'FailureTarget', status: 'True', reason: 'BackoffLimitExceeded' },
        {
          type: 'Failed',
          status: 'True',
          reason: 'BackoffLimitExceeded',
          message: 'Job has reached the specified backoff limit',
        },
      ])
    );
    const err = await failureOf(act(activitiesWith(r.run).runDbMigrationJob, input));
    expect(err).toMatchObject({ type: 'DbMigrationJobFailed', nonRetryable: true });
    expect(err.message).toBe(
      'DB-migration job.batch/skoala-db-upgrade failed on global: BackoffLimitExceeded: Job has reached the specified backoff limit'
    );
    expect(r.argvs()).toEqual([APPLY, GET, GET]);
  });

  it('a manifest that is not a Job is refused before waiting', async () => {
    const r = recorder('configmap/skoala-db\n');
    const err = await failureOf(act(activitiesWith(r.run).runDbMigrationJob, input));
    expect(err).toMatchObject({ type: 'InvalidManifest', nonRetryable: true });
    expect(err.message).toBe('/ops/job.yaml is not a Job manifest (applied configmap/skoala-db)');
    expect(r.calls).toHaveLength(1);
  });
});

describe('verifyRelease', () => {
  const input = { cluster: w1, release: 'skoala-init' as const, version: '0.28.1' };

  it('deployed at the target: returns the revision', async () => {
    const r = recorder(helmList('deployed', '0.28.1', 4));
    await expect(act(activitiesWith(r.run).verifyRelease, input)).resolves.toEqual({ revision: 4 });
    expect(r.argvs()).toEqual([['helm', ...LIST_W1]]);
  });

  it.each([
    [helmList('deployed', '0.27.2', 3), 'skoala-init on w1 is deployed at 0.27.2, expected deployed at 0.28.1'],
    [helmList('failed', '0.28.1', 4), 'skoala-init on w1 is failed at 0.28.1, expected deployed at 0.28.1'],
    ['[]', 'skoala-init on w1 is not installed, expected deployed at 0.28.1'],
  ])('fails when not deployed at the target (%#)', async (list, message) => {
    const err = await failureOf(act(activitiesWith(recorder(list).run).verifyRelease, input));
    expect(err.type).toBe('ReleaseNotAtTarget');
    expect(err.message).toBe(message);
  });
});

describe('read-only and small steps', () => {
  it('preflightCluster: Kubernetes version, then the release', async () => {
    const r = recorder(
      JSON.stringify({ clientVersion: { gitVersion: 'v1.33.1' }, serverVersion: { gitVersion: 'v1.24.17-gke.100' } }),
      helmList('deployed', '0.27.2', 3, 'skoala')
    );
    const facts = await act(activitiesWith(r.run).preflightCluster, { cluster: global, release: 'skoala' });
    expect(facts).toEqual({
      cluster: 'global',
      kubeVersion: '1.24.17',
      release: { installed: true, chartVersion: '0.27.2', revision: 3, status: 'deployed' },
    });
    expect(r.argvs()).toEqual([
      ['kubectl', '--kubeconfig', '/kc/global.yaml', '--context', 'admin', 'version', '-o', 'json'],
      [
        'helm',
        '--kubeconfig',
        '/kc/global.yaml',
        '--kube-context',
        'admin',
        'list',
        '-n',
        'skoala-system',
        '-a',
        '--filter',
        '^skoala$',
        '-o',
        'json',
      ],
    ]);
  });

  it('preflightCluster: an unreadable server version is non-retryable', async () => {
    const r = recorder(JSON.stringify({ clientVersion: { gitVersion: 'v1.33.1' } }));
    const err = await failureOf(act(activitiesWith(r.run).preflightCluster, { cluster: w1, release: 'skoala-init' }));
    expect(err.nonRetryable).toBe(true);
    expect(err.message).toBe('w1: cannot read the Kubernetes version ("")');
  });

  it('addChartRepo and updateChartRepo', async () => {
    const r = recorder('"skoala" has been added\n', 'Update Complete.\n');
    const acts = activitiesWith(r.run);
    await act(acts.addChartRepo, { repo: REPO });
    await act(acts.updateChartRepo, { repo: REPO });
    expect(r.argvs()).toEqual([
      ['helm', 'repo', 'add', 'skoala', REPO.url, '--force-update'],
      ['helm', 'repo', 'update', 'skoala'],
    ]);
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
  });

  /** Stands in for `helm pull --untar`: writes the chart's CRD files where helm would. */
  const pull =
    (files: string[]) =>
    async (argv: string[]): Promise<string> => {
      const into = argv[argv.indexOf('--untardir') + 1] as string;
      for (const f of files) {
        await mkdir(path.dirname(path.join(into, 'skoala-init', f)), { recursive: true });
        await writeFile(path.join(into, 'skoala-init', f), 'kind: CustomResourceDefinition\n');
      }
      return '';
    };
  const applied = (...names: string[]) =>
    JSON.stringify({
      apiVersion: 'v1',
      kind: 'List',
      items: names.map((name) => ({ kind: 'CustomResourceDefinition', metadata: { name } })),
    });

  it('pulls the target chart, applies each CRD file server-side in order, cleans up', async () => {
    const extra = path.join(dir, 'extra.yaml');
    await writeFile(extra, 'kind: CustomResourceDefinition\n');
    const r = recorder(
      pull([CONTOUR, GATEWAY_API]),
      applied('httpproxies.projectcontour.io', 'extensionservices.projectcontour.io'),
      applied('gateways.gateway.networking.k8s.io'),
      JSON.stringify({ kind: 'CustomResourceDefinition', metadata: { name: 'extras.example.com' } })
    );
    const out = await act(activitiesWith(r.run).reapplyCrds, { cluster: w1, step: step([extra]) });
    expect(out).toEqual({
      applied: [
        'httpproxies.projectcontour.io',
        'extensionservices.projectcontour.io',
        'gateways.gateway.networking.k8s.io',
        'extras.example.com',
      ],
    });
    const tmp = r.calls[0]?.argv.at(-1) as string;
    expect(path.dirname(tmp)).toBe(workDir);
    const apply = (file: string) => [
      'kubectl',
      '--kubeconfig',
      '/kc/w1.yaml',
      'apply',
      '--server-side',
      '--force-conflicts',
      '--field-manager',
      'skoala-upgrade',
      '-f',
      file,
      '-o',
      'json',
    ];
    expect(r.argvs()).toEqual([
      ['helm', 'pull', 'skoala-init', '--repo', REPO.url, '--version', '0.52.0', '--untar', '--untardir', tmp],
      apply(path.join(tmp, 'skoala-init', CONTOUR)),
      apply(path.join(tmp, 'skoala-init', GATEWAY_API)),
      apply(extra),
    ]);
    expect(r.argvs().flat()).not.toContain('delete');
    expect(existsSync(tmp)).toBe(false);
  });

  it('a CRD file missing from the chart: non-retryable, nothing applied', async () => {
    const r = recorder(pull([GATEWAY_API]));
    const err = await failureOf(act(activitiesWith(r.run).reapplyCrds, { cluster: w1, step: step() }));
    expect(err).toMatchObject({ type: 'FileNotFound', nonRetryable: true });
    expect(err.message).toBe(`CRD manifest ${path.join('skoala-init', CONTOUR)} is missing (chart skoala-init 0.52.0)`);
    expect(r.calls).toHaveLength(1);
    expect(await readdir(workDir)).toEqual([]);
  });

  it('the API server refusing a CRD update becomes CrdRefused', async () => {
    const refused = commandFailure({
      tool: 'kubectl',
      argv: ['apply'],
      exitCode: 1,
      stderr:
        'The CustomResourceDefinition "httproutes.gateway.networking.k8s.io" is invalid: status.storedVersions[0]: Invalid value: "v1alpha2": must appear in spec.versions',
    });
    const r = recorder(pull([CONTOUR, GATEWAY_API]), refused);
    const err = await failureOf(act(activitiesWith(r.run).reapplyCrds, { cluster: w1, step: step() }));
    expect(err).toMatchObject({ type: 'CrdRefused', nonRetryable: true });
    expect(err.message).toMatch(/^the API server refused to update CRDs from contour\.yaml in place on w1: /);
    expect(await readdir(workDir)).toEqual([]);
  });
});
