/**
 * `backupStore: cluster`: a values backup outlives the worker host that took it. The first worker
 * takes the backups, then its host is lost (process killed, backup directory deleted) while
 * worker-1's upgrade waits on a release lock held by someone else's helm; a second worker on
 * another directory finishes the run with the backup it reads back from the cluster.
 */
import type { Client } from '@temporalio/client';
import { execa, type ResultPromise } from 'execa';
import { existsSync } from 'node:fs';
import { mkdir, readdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BACKUP_LABEL } from '../../activities/cluster-backup-store';
import { approve } from '../../scripts/commands/approve';
import { buildRequest } from '../../scripts/commands/plan';
import { startUpgrade } from '../../scripts/commands/start-upgrade';
import { startLocalStack, type LocalStack } from '../../scripts/lib/local-stack';
import { waitForStatus } from '../workflow/harness';
import { buildWorkflowBundle, stackWorkerEnv, startWorkerProcess, type WorkerProcess } from '../helpers/worker-process';
import { kube, NS } from './kube';

let stack: LocalStack;
let client: Client;
let k: ReturnType<typeof kube>;
let bundle: string;
let hostDir: string;
const workers: WorkerProcess[] = [];
let foreignHelm: ResultPromise | undefined;

beforeAll(async () => {
  stack = await startLocalStack({
    workers: 1,
    installVersion: '0.18.0',
    customValues: true,
    fleet: { backupStore: 'cluster' },
    log: () => {},
  });
  client = stack.temporal.client;
  k = kube(stack);
  hostDir = path.join(stack.sandbox.dir, 'hosts');
  await mkdir(hostDir, { recursive: true });
  bundle = await buildWorkflowBundle(path.join(hostDir, 'workflow-bundle.js'));
}, 300_000);

afterAll(async () => {
  foreignHelm?.kill('SIGKILL');
  for (const w of workers) await w.stop().catch(() => undefined);
  await stack?.stop();
});

/** A worker on its own host: its own backup and work directories. */
function workerOnHost(host: string): WorkerProcess {
  const w = startWorkerProcess(
    stackWorkerEnv(stack, {
      backupDir: path.join(hostDir, host, 'backups'),
      workDir: path.join(hostDir, host, 'work'),
      bundle,
    }),
    host
  );
  workers.push(w);
  return w;
}

const workerCluster = () => stack.sandbox.workers[0] as (typeof stack.sandbox.workers)[0];

async function backupSecrets(
  c = workerCluster()
): Promise<{ name: string; labels: Record<string, string>; immutable?: boolean }[]> {
  const out = await k.kubectl(c, ['get', 'secrets', '-n', NS, '-l', BACKUP_LABEL, '-o', 'json']);
  return (
    JSON.parse(out) as { items: { metadata: { name: string; labels: Record<string, string> }; immutable?: boolean }[] }
  ).items.map((s) => ({ name: s.metadata.name, labels: s.metadata.labels, immutable: s.immutable }));
}

describe('values backups kept in the cluster', () => {
  it('a second worker on another host finishes the run after the first host and its backup directory are lost', async () => {
    const first = workerOnHost('host-a');
    await first.polling;
    const request = await buildRequest({ version: '0.19.2', fleet: stack.fleetFile });
    // Enough retries to outlast the foreign lock; short intervals so the test does not wait long.
    request.tuning = { retryInitialInterval: '1s', retryMaximumAttempts: 40, approvalReminder: '10s' };
    const started = await startUpgrade(request, client, stack.env);
    const handle = client.workflow.getHandle(started.workflowId);

    // Once preflight has read worker-1 (planned from revision 1), someone else's helm takes its
    // release and keeps it pending (--wait on an image that never gets ready here).
    await waitForStatus(handle, (s) => s.phase !== 'preflight', 120_000);
    const w = workerCluster();
    foreignHelm = execa(
      stack.sandbox.tools.helm,
      [
        ...['--kubeconfig', w.kubeconfig, '--kube-context', w.context, '-n', NS],
        ...['upgrade', 'skoala-init', 'skoala-init', '--repo', stack.sandbox.chartRepo.url, '--version', '0.28.2'],
        ...['--reuse-values', '--wait', '--timeout', '5m'],
      ],
      { env: stack.sandbox.helmEnv, reject: false }
    );

    // The first host backs worker-1 up into the cluster, then waits on the lock (ReleaseLocked, retried).
    for (let i = 0; i < 300 && (await backupSecrets()).length === 0; i++) await new Promise((r) => setTimeout(r, 200));
    const [secret] = await backupSecrets();
    expect(secret?.labels).toMatchObject({
      'skoala-upgrade.io/release': 'skoala-init',
      'skoala-upgrade.io/revision': '1',
    });
    expect(secret?.immutable).toBe(true);

    // Host A is lost: its worker killed, its backup directory gone.
    first.child.kill('SIGKILL');
    await first.child;
    await rm(path.join(hostDir, 'host-a'), { recursive: true, force: true });
    expect(existsSync(path.join(hostDir, 'host-a'))).toBe(false);

    const second = workerOnHost('host-b');
    await second.polling;
    // The other operator gives the release back: rollback to the revision the plan started from.
    foreignHelm.kill('SIGKILL');
    await foreignHelm;
    await k.helm(w, ['rollback', 'skoala-init', '1', '-n', NS]);

    await waitForStatus(handle, (s) => s.pendingApprovals.length === 1, 240_000);
    await approve({ all: true, by: 'e2e', workflowId: handle.workflowId }, client);
    const result = (await handle.result()) as { counts: { upgraded: number; failed: number } };
    expect(result.counts).toMatchObject({ upgraded: 2, failed: 0 });

    // Upgraded with the values of the backup (the custom marker survived), by the second host.
    expect((await k.release(w, 'skoala-init'))?.chart).toBe('skoala-init-0.19.2');
    expect(await k.values(w, 'skoala-init')).toMatchObject({ custom: { marker: 'worker-1' } });
    expect(await readdir(path.join(hostDir, 'host-b', 'backups')).catch(() => [])).toEqual([]);
    expect(second.output()).not.toMatch(/BackupNotFound/);
  }, 600_000);
});
