/**
 * A worker SIGKILLed inside `helm rollback`, twice in a row, automatic and manual (real helm, real
 * nodes, the worker as its own process). The rollbacks wait for their pods (`--wait`, added by a
 * helm wrapper on the worker hosts) and 0.52.1's worker-cluster pods take 60 s to become ready, so each helm is
 * caught while the release is `pending-rollback`. Each time the next worker takes the pending
 * rollback as its own (the lease of the killed one lapses) and rolls back again; the last one
 * ends the cluster in a named state with nothing left pending.
 */
import type { Client, WorkflowHandle } from '@temporalio/client';
import { execa } from 'execa';
import { chmod, mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildRequest } from '../../scripts/commands/plan';
import { startUpgrade } from '../../scripts/commands/start-upgrade';
import { startLocalStack, type LocalStack } from '../../scripts/lib/local-stack';
import type { UpgradeResult } from '../../runbook/types';
import type { SandboxCluster } from '../../sandbox';
import { buildWorkflowBundle, stackWorkerEnv, startWorkerProcess, type WorkerProcess } from '../helpers/worker-process';
import { kube, NS } from './kube';

let stack: LocalStack;
let client: Client;
let k: ReturnType<typeof kube>;
let bundle: string;
let hostDir: string;
let waitingHelm: string;
const workers: WorkerProcess[] = [];

beforeAll(async () => {
  stack = await startLocalStack({ workers: 1, installVersion: '0.52.1', realNodes: true, log: () => {} });
  client = stack.temporal.client;
  k = kube(stack);
  hostDir = path.join(stack.sandbox.dir, 'hosts');
  await mkdir(hostDir, { recursive: true });
  bundle = await buildWorkflowBundle(path.join(hostDir, 'workflow-bundle.js'));
  // Every host's helm waits for the pods of a rollback: the window a worker is killed in.
  waitingHelm = path.join(hostDir, 'helm-wait');
  const helm = stack.sandbox.tools.helm;
  await writeFile(
    waitingHelm,
    `#!/bin/sh\ncase " $* " in *" rollback "*) exec "${helm}" "$@" --wait;; esac\nexec "${helm}" "$@"\n`
  );
  await chmod(waitingHelm, 0o755);
}, 600_000);

afterAll(async () => {
  for (const w of workers) await w.stop().catch(() => undefined);
  await stack?.stop();
});

let hosts = 0;
async function worker(): Promise<WorkerProcess> {
  const host = `host-${++hosts}`;
  const w = startWorkerProcess(
    stackWorkerEnv(stack, {
      backupDir: path.join(hostDir, 'backups'),
      workDir: path.join(hostDir, host),
      bundle,
      helm: waitingHelm,
    }),
    host
  );
  workers.push(w);
  await w.polling;
  return w;
}

const w1 = () => stack.sandbox.workers[0] as SandboxCluster;
const history = async () =>
  JSON.parse(await k.helm(w1(), ['history', 'skoala-init', '-n', NS, '-o', 'json'])) as {
    revision: number;
    status: string;
    description: string;
  }[];

/**
 * Waits until the n-th rollback revision of skoala-init after the first `base` revisions is
 * pending, then SIGKILLs the worker.
 */
async function killDuringRollback(w: WorkerProcess, n: number, base: number): Promise<void> {
  const pendingRollbacks = async () =>
    (await history())
      .slice(base)
      .filter((h) => /^Rollback to \d+$/.test(h.description) || h.status === 'pending-rollback');
  for (let i = 0; i < 900; i++) {
    const rs = await pendingRollbacks();
    if (rs.length >= n && rs.at(-1)?.status === 'pending-rollback') break;
    await new Promise((r) => setTimeout(r, 200));
  }
  expect((await history()).at(-1), w.output().slice(-2000)).toMatchObject({ status: 'pending-rollback' });
  w.child.kill('SIGKILL');
  await w.child.catch(() => undefined);
  // Its helm went with it (setpriv --pdeathsig): nothing of that worker still changes the release.
  const left = async () =>
    (await execa('ps', ['-eo', 'args'])).stdout
      .split('\n')
      .filter((l) => l.includes(' rollback ') && l.includes(w1().kubeconfig));
  for (let i = 0; i < 30 && (await left()).length > 0; i++) await new Promise((r) => setTimeout(r, 100));
  expect(await left()).toEqual([]);
}

async function start(flags: Record<string, string | boolean>): Promise<WorkflowHandle> {
  const request = await buildRequest({ version: '0.53.0', fleet: stack.fleetFile, healthTimeout: '10s', ...flags });
  request.tuning = { retryInitialInterval: '1s', retryMaximumAttempts: 10, approvalReminder: '10s' };
  const started = await startUpgrade(request, client, stack.env);
  return client.workflow.getHandle(started.workflowId);
}

describe.sequential('a worker killed inside helm rollback', { timeout: 600_000 }, () => {
  it('automatic rollback, killed twice in a row: the third worker finishes it, worker-1 ends rolled-back', async () => {
    const before = (await history()).length;
    const handle = await start({ onFailure: 'rollback' });
    await killDuringRollback(await worker(), 1, before);
    await killDuringRollback(await worker(), 2, before);
    await worker();
    // 0.53.0's agent never gets ready: the control plane is fine, worker-1 fails its check.
    const message = await handle.result().then(
      (r: UpgradeResult) => JSON.stringify(r.workers.map((x) => [x.cluster, x.outcome])),
      (e: { cause?: Error }) => e.cause?.message ?? String(e)
    );
    expect(message).toBe(JSON.stringify([['worker-1', 'rolled-back']]));
    // Three rollbacks, one per worker; helm leaves an interrupted one's entry as it was, but the
    // release itself is deployed, nothing pending.
    const after = (await history()).slice(before);
    expect(after.filter((h) => h.description === 'Rollback to 1')).toHaveLength(3);
    expect(after.at(-1)).toMatchObject({ status: 'deployed', description: 'Rollback to 1' });
    expect(await k.release(w1(), 'skoala-init')).toMatchObject({ status: 'deployed', chart: 'skoala-init-0.52.1' });
    const agent = await k.image(w1(), 'skoala-agent');
    expect(agent).toMatch(/:v0\.52\.1$/);
    for (const w of workers) await w.stop().catch(() => undefined);
  });

  it('npm run rollback, its worker killed twice in a row: the third one puts worker-1 back', async () => {
    // Left failed at 0.53.0 (no automatic rollback), then rolled back by hand.
    const first = await worker();
    const handle = await start({ onFailure: 'stop', retryFailed: true });
    const result = (await handle.result()) as UpgradeResult;
    expect(result.workers.map((x) => [x.cluster, x.outcome])).toEqual([['worker-1', 'failed']]);
    expect(await k.release(w1(), 'skoala-init')).toMatchObject({ chart: 'skoala-init-0.53.0' });
    const before = (await history()).length;
    const cli = execa(
      process.execPath,
      [
        '--import',
        'tsx',
        'scripts/cli.ts',
        'rollback',
        '--cluster',
        'worker-1',
        '--fleet',
        stack.fleetFile,
        '--by',
        'alice',
      ],
      { reject: false, env: { TEMPORAL_ADDRESS: stack.env.address, SKOALA_TASK_QUEUE: stack.taskQueue } }
    );
    await killDuringRollback(first, 1, before);
    await killDuringRollback(await worker(), 2, before);
    await worker();
    const done = await cli;
    expect(done.exitCode, done.stderr).toBe(0);
    expect(done.stdout).toMatch(/worker-1: rolled-back/);
    const after = (await history()).slice(before);
    expect(after.filter((h) => /^Rollback to \d+$/.test(h.description))).toHaveLength(3);
    expect(after.at(-1)).toMatchObject({ status: 'deployed' });
    expect(await k.release(w1(), 'skoala-init')).toMatchObject({ status: 'deployed', chart: 'skoala-init-0.52.1' });
  });
});
