/**
 * A bad version stops early, end to end: real Temporal, real helm and kubectl, sandbox clusters
 * whose workloads a status stand-in rolls out, except images on a "broken" list (0.19.3's hive
 * everywhere; 0.28.2's skoala-agent on worker-1 and worker-2), which stay unready with
 * ProgressDeadlineExceeded, as a missing image in an offline registry would.
 */
import type { Client, WorkflowHandle } from '@temporalio/client';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildRequest } from '../../scripts/commands/plan';
import { startUpgrade } from '../../scripts/commands/start-upgrade';
import { startLocalStack, type LocalStack } from '../../scripts/lib/local-stack';
import type { UpgradeResult } from '../../runbook/types';
import { statusQuery } from '../../workflows/messages';
import { waitForStatus } from '../workflow/harness';
import { finish as finishUpgrade } from './approve-until';
import { kube, NS } from './kube';

let stack: LocalStack;
let client: Client;
let k: ReturnType<typeof kube>;

beforeAll(async () => {
  stack = await startLocalStack({
    workers: 4,
    installVersion: '0.18.0',
    log: () => {},
    brokenImages: {
      'control-plane': ['hive:v0.19.3'],
      'worker-1': ['skoala-agent:v0.28.2'],
      'worker-2': ['skoala-agent:v0.28.2'],
    },
  });
  await stack.startWorker();
  client = stack.temporal.client;
  k = kube(stack);
});
afterAll(async () => {
  await stack?.stop();
});

const cp = () => stack.sandbox.controlPlane;
const w = (i: number) => stack.sandbox.workers[i - 1] as (typeof stack.sandbox.workers)[number];
const workerRevisions = () => Promise.all(stack.sandbox.workers.map((c) => k.revisions(c, 'skoala-init')));

async function start(version: string, flags: Record<string, string | boolean> = {}): Promise<WorkflowHandle> {
  const request = await buildRequest({
    version,
    fleet: stack.fleetFile,
    healthTimeout: '10s',
    onFailure: 'rollback',
    ...flags,
  });
  request.tuning = { retryInitialInterval: '1s', retryMaximumAttempts: 3, approvalReminder: '10s' };
  const started = await startUpgrade(request, client, stack.env);
  return client.workflow.getHandle(started.workflowId);
}

/** `npm run rollback -- ARGS --fleet F --by alice`, as a process. */
const rollbackCli = (args: string[]) =>
  execa(
    process.execPath,
    ['--import', 'tsx', 'scripts/cli.ts', 'rollback', ...args, '--fleet', stack.fleetFile, '--by', 'alice'],
    { reject: false, env: { TEMPORAL_ADDRESS: stack.env.address, SKOALA_TASK_QUEUE: stack.taskQueue } }
  );

/** Approves every gate as it opens, until the upgrade ends; returns its failure message or result. */
const finish = (handle: WorkflowHandle) => finishUpgrade(client, handle, 180_000);

describe.sequential('a bad version stops early', () => {
  it('0.18.0 -> 0.19.3 (a DB Job ran): stops at the control plane, no automatic rollback, the manual steps', async () => {
    const before = await workerRevisions();
    const message = (await finish(await start('0.19.3'))) as string;
    expect(message).toMatch(/^control plane control-plane failed, no worker cluster was touched: /);
    expect(message).toMatch(/deployment\/hive: .*Progressing=False ProgressDeadlineExceeded/);
    expect(message).toContain('NOT rolled back automatically: the DB-migration Job already moved the database schema');
    expect(message).toContain(
      `(2) helm --kubeconfig ${cp().kubeconfig} --kube-context control-plane rollback skoala 1 -n skoala-system`
    );
    expect(await k.release(cp(), 'skoala')).toMatchObject({ chart: 'skoala-0.19.3' }); // left as it failed
    expect(await workerRevisions()).toEqual(before);

    // npm run rollback does not put skoala back over the migrated schema silently: refused, nothing changed.
    const refused = await rollbackCli(['--all']);
    expect(refused.exitCode).toBe(2);
    expect(refused.stderr.trim().split('\n')).toEqual([
      expect.stringMatching(
        /^skoala-upgrade: refused: skoala-upgrade-sandbox ran the DB-migration Job on the control plane control-plane, so the database schema moved and skoala revision 1 would run against it; nothing was rolled back\. To go back: \(1\) restore the skoala database from the backup taken before the upgrade; \(2\) npm run rollback -- --all --by alice --after-db-restore/
      ),
    ]);
    expect(await k.release(cp(), 'skoala')).toMatchObject({ chart: 'skoala-0.19.3' });
    // The database restored (a stand-in here), the operator says so: the control plane goes back;
    // the workers, never started by this upgrade, are left exactly as they were, with no rollback record.
    const back = await rollbackCli(['--all', '--after-db-restore']);
    expect(back.exitCode, back.stderr).toBe(0);
    expect(back.stdout.trim().split('\n').slice(1)).toEqual(['  control-plane: rolled-back']);
    expect(await k.release(cp(), 'skoala')).toMatchObject({ status: 'deployed', chart: 'skoala-0.18.0' });
    expect(await workerRevisions()).toEqual(before);
    for (const c of stack.sandbox.workers)
      expect(await k.kubectl(c, ['get', 'configmap', 'skoala-upgrade-rollback', '-n', NS, '--ignore-not-found'])).toBe(
        ''
      );
  });

  it('a healthy upgrade passes, and its health check is asserted', async () => {
    const handle = await start('0.19.2');
    const result = (await finish(handle)) as UpgradeResult;
    expect(result.counts).toMatchObject({ upgraded: 5, failed: 0, 'rolled-back': 0 });
    const events = (await handle.fetchHistory()).events ?? [];
    const health = events.filter(
      (e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'verifyWorkloads'
    );
    expect(health).toHaveLength(1); // the control plane's; each worker's is in its child
    const child = await client.workflow.getHandle(`${handle.workflowId}/worker-3`).fetchHistory();
    const names = (child.events ?? [])
      .map((e) => e.activityTaskScheduledEventAttributes?.activityType?.name)
      .filter(Boolean);
    expect(names.indexOf('verifyWorkloads')).toBe(names.indexOf('upgradeRelease') + 1);
    const rollout = await k.kubectl(cp(), ['rollout', 'status', 'deployment/hive', '-n', NS, '--timeout=5s']);
    expect(rollout).toContain('successfully rolled out');
  });

  it('0.19.2 -> 0.19.3: stops at the control plane and rolls skoala back; no worker touched', async () => {
    const before = await workerRevisions();
    // The first test's `npm run rollback` recorded its rollback of this same upgrade (0.19.3) on the
    // control plane: trying it again says so.
    const message = (await finish(await start('0.19.3', { retryFailed: true }))) as string;
    expect(message).toMatch(
      /^control plane control-plane failed and was rolled back, no worker cluster was touched: .*deployment\/hive: .*ProgressDeadlineExceeded.*; rolled back to revision \d+$/
    );
    const release = await k.release(cp(), 'skoala');
    expect(release).toMatchObject({ status: 'deployed', chart: 'skoala-0.19.2' });
    expect(await k.image(cp(), 'hive')).toMatch(/:v0\.19\.2$/);
    expect(await workerRevisions()).toEqual(before);
  });

  it('npm run rollback puts a cluster back, and refuses one whose release moved since', async () => {
    const handle = await start('0.27.2');
    expect(((await finish(handle)) as UpgradeResult).counts.upgraded).toBe(5);
    // Someone's helm on worker-3 after the upgrade: its release moved.
    await k.helm(w(3), [
      'upgrade',
      'skoala-init',
      'skoala-init',
      '--repo',
      stack.sandbox.chartRepo.url,
      '--version',
      '0.27.2',
      '-n',
      NS,
      '--reuse-values',
      '--set',
      'custom.x=y',
    ]);
    const cli = rollbackCli;
    const ok = await cli(['--cluster', 'worker-4']);
    expect(ok.exitCode, ok.stderr).toBe(0);
    expect(ok.stdout).toMatch(/worker-4: rolled-back/);
    expect(await k.release(w(4), 'skoala-init')).toMatchObject({ status: 'deployed', chart: 'skoala-init-0.19.2' });
    const refused = await cli(['--cluster', 'worker-3']);
    expect(refused.exitCode).toBe(1);
    expect(refused.stdout).toMatch(/worker-3: refused: .*moved since this upgrade/);
    expect(await k.release(w(3), 'skoala-init')).toMatchObject({ chart: 'skoala-init-0.27.2' });
  });

  it('0.27.2 -> 0.28.2 with --canary 1: the canary fails its health check, is rolled back, no other starts', async () => {
    const before = await workerRevisions();
    const handle = await start('0.28.2', { canary: '1', maxParallel: '4' });
    const result = (await finish(handle)) as UpgradeResult;
    expect(result.workers.map((r) => [r.cluster, r.outcome])).toEqual([
      ['worker-1', 'rolled-back'],
      ['worker-2', 'not-started'],
      ['worker-3', 'not-started'],
      ['worker-4', 'not-started'],
    ]);
    expect(result.workers[0]?.error).toMatch(
      /deployment\/skoala-agent: .*ProgressDeadlineExceeded.*; rolled back to revision \d+$/
    );
    expect(await k.release(w(1), 'skoala-init')).toMatchObject({ status: 'deployed', chart: 'skoala-init-0.27.2' });
    expect((await workerRevisions()).slice(1)).toEqual(before.slice(1));
  });

  it('--max-failures 1 with two broken clusters out of four: stops after the second, the rest not started', async () => {
    // worker-1, the canary, was rolled back by the last run of this same upgrade: try it again.
    const handle = await start('0.28.2', { maxFailures: '1', maxParallel: '1', retryFailed: true });
    const result = (await finish(handle)) as UpgradeResult;
    expect(result.workers.map((r) => [r.cluster, r.outcome])).toEqual([
      ['worker-1', 'rolled-back'],
      ['worker-2', 'rolled-back'],
      ['worker-3', 'not-started'],
      ['worker-4', 'not-started'],
    ]);
    expect(result.workers[2]?.error).toBe(
      'not started: 2 worker cluster(s) failed (worker-1, worker-2), more than --max-failures 1'
    );
    expect((await handle.query(statusQuery)).workers[3]?.state).toBe('not-started');
  });

  it('a rerun of the same version continues with exactly the clusters never started', async () => {
    const before = await workerRevisions();
    const result = (await finish(await start('0.28.2', { maxParallel: '2' }))) as UpgradeResult;
    expect(result.workers.map((r) => [r.cluster, r.outcome])).toEqual([
      ['worker-1', 'not-started'],
      ['worker-2', 'not-started'],
      ['worker-3', 'upgraded'],
      ['worker-4', 'upgraded'],
    ]);
    expect(result.workers[0]?.error).toBe(
      'not started: an earlier run of this upgrade rolled it back; pass --retry-failed to try it again'
    );
    expect((await workerRevisions()).slice(0, 2)).toEqual(before.slice(0, 2)); // left alone
    for (const i of [3, 4]) expect(await k.release(w(i), 'skoala-init')).toMatchObject({ chart: 'skoala-init-0.28.2' });
  });

  it(
    '--on-failure pause: failed clusters wait; one is retried after its image is pushed, one skipped (CLI processes)',
    { timeout: 300_000 },
    async () => {
      // Now: worker-1 and worker-2 at 0.27.2 (rolled back above), worker-3 and worker-4 at 0.28.2.
      const cli = (args: string[]) =>
        execa(process.execPath, ['--import', 'tsx', 'scripts/cli.ts', ...args], {
          reject: false,
          env: { TEMPORAL_ADDRESS: stack.env.address, SKOALA_TASK_QUEUE: stack.taskQueue, CI: 'true' },
        });
      // --follow prints plain lines (no TTY) until a gate waits: here, worker-1's after its retry.
      const following = cli([
        'start-upgrade',
        ...['--version', '0.28.2', '--fleet', stack.fleetFile, '--on-failure', 'pause', '--retry-failed'],
        ...['--max-parallel', '2', '--health-timeout', '10s', '--by', 'alice', '--follow'],
      ]);
      const handle = client.workflow.getHandle('skoala-upgrade-sandbox');
      await waitForStatus(handle, (x) => x.failures.length === 2 && x.rollout?.paused !== undefined, 120_000);

      const status = await cli(['status']);
      expect(status.exitCode, status.stderr).toBe(1); // some cluster failed
      expect(status.stdout).toMatch(/│ worker-1 +│ worker +│ failed .*│ failed: worker-1: verifyWorkloads failed: /);
      expect(status.stdout).toContain('ProgressDeadlineExceeded'); // the cause, in the wrapped reason
      expect(status.stdout).toMatch(
        /│ worker-3 +│ worker +│ pending .*│ not started: the rollout is paused by on-failure pause/
      );
      expect(status.stdout).toMatch(
        /PAUSED by on-failure pause at .*: worker-\d failed: retry it \(npm run retry -- --cluster worker-\d --by NAME\)/
      );

      // Refusals name the real state, before or after reaching the workflow; nothing changes.
      const refusals = await Promise.all([
        cli(['retry', '--cluster', 'worker-3', '--by', 'bob']),
        cli(['retry', '--cluster', 'worker-9', '--by', 'bob']),
        cli(['retry', '--cluster', 'control-plane', '--by', 'bob']),
        cli(['skip', '--cluster', 'worker-2', '--by', 'bob']),
        cli(['retry', '--cluster', 'Worker_1', '--by', 'bob']),
      ]);
      expect(refusals.map((r) => [r.exitCode, r.stderr.trim()])).toEqual([
        [
          2,
          'skoala-upgrade: refused: worker-3 has not started yet (the rollout is paused by on-failure pause): nothing to retry',
        ],
        [
          2,
          'skoala-upgrade: refused: no worker cluster named worker-9 in this upgrade (worker-1, worker-2, worker-3, worker-4)',
        ],
        [
          2,
          'skoala-upgrade: refused: control-plane is the control plane: it is not retried or skipped alone (start a new upgrade)',
        ],
        [2, 'skoala-upgrade: --reason TEXT is required: status shows why a cluster was skipped'],
        [2, 'skoala-upgrade: --cluster "Worker_1" is not a cluster name (lowercase letters, digits, "-")'],
      ]);

      // The missing image reaches worker-1's registry; the operator retries it. It starts though the
      // rollout is paused (the pause is the failure policy's), and stops at its CRD gate.
      stack.workloads['worker-1']?.setBroken([]);
      const retried = await cli(['retry', '--cluster', 'worker-1', '--by', 'bob', '--reason', 'image pushed']);
      expect(retried.exitCode, retried.stderr).toBe(0);
      expect(retried.stdout).toBe(`${handle.workflowId}: worker-1 will start again`);
      await waitForStatus(handle, (x) => x.pendingApprovals.includes('worker-1'), 120_000);
      const followed = await following;
      expect(followed.exitCode, followed.stderr).toBe(0);
      const lines = followed.stdout.split('\n');
      expect(lines[0]).toBe('started upgrade skoala-upgrade-sandbox');
      expect(lines).toContainEqual(
        expect.stringMatching(/^worker-1: failed \(verifyWorkloads\): worker-1: verifyWorkloads failed: /)
      );
      expect(lines).toContainEqual(expect.stringMatching(/^worker-1: waiting-approval \(awaitCrdApproval\)$/));
      expect(lines).toContain(
        '  npm run approve -- --workflow-id skoala-upgrade-sandbox --cluster worker-1 --by "$USER"'
      );
      expect(followed.stdout).not.toContain('\u001b['); // no terminal control codes off a TTY
      const approved = await cli(['approve', '--cluster', 'worker-1', '--by', 'carol']);
      expect(approved.exitCode, approved.stderr).toBe(0);
      // What the approver saw: the gate's own reading of what the upgrade changed on worker-1.
      expect(approved.stdout).toMatch(
        /what the upgrade changed:\n {4}manifest diff \(skoala-init 0\.27\.2 -> 0\.28\.2, revision \d+ -> now\): [1-9]\d* changed/
      );
      expect(approved.stdout).toMatch(/~ deployment\/skoala-agent: image: \S+:v0\.27\.2 -> \S+:v0\.28\.2/);
      await waitForStatus(handle, (x) => x.workers[0]?.state === 'upgraded', 60_000);
      expect((await handle.describe()).status.name).toBe('RUNNING'); // worker-2 still waits for a decision

      const skipped = await cli([
        'skip',
        '--cluster',
        'worker-2',
        '--by',
        'bob',
        '--reason',
        'image not in the site registry',
      ]);
      expect(skipped.exitCode, skipped.stderr).toBe(0);
      const result = (await handle.result()) as UpgradeResult;
      expect(result.workers.map((r) => [r.cluster, r.outcome])).toEqual([
        ['worker-1', 'upgraded'],
        ['worker-2', 'skipped'],
        ['worker-3', 'already-at-target'],
        ['worker-4', 'already-at-target'],
      ]);
      expect(result.workers[1]?.error).toMatch(
        /^skipped by bob: image not in the site registry \(it had failed: worker-2: verifyWorkloads failed: /
      );
      expect(await k.release(w(1), 'skoala-init')).toMatchObject({ status: 'deployed', chart: 'skoala-init-0.28.2' });
      expect(await k.release(w(2), 'skoala-init')).toMatchObject({ chart: 'skoala-init-0.28.2' }); // left as it failed

      const after = await cli(['status', '--workflow-id', handle.workflowId]);
      expect(after.stdout).toMatch(
        /│ worker-2 +│ worker +│ skipped .*│ skipped by bob: image not in the site registry/
      );
      const late = await cli(['retry', '--cluster', 'worker-2', '--by', 'bob', '--workflow-id', handle.workflowId]);
      expect(late.exitCode).toBe(2);
      expect(late.stderr.trim()).toMatch(
        new RegExp(
          `^skoala-upgrade: refused: upgrade ${handle.workflowId} has finished at \\S+; start the upgrade again to retry worker-2$`
        )
      );
    }
  );
});
