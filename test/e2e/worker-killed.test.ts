/**
 * A worker SIGKILLed inside `helm upgrade` recovers without a person (real helm, real sandbox, the
 * worker as its own process): its helm dies with it (setpriv --pdeathsig), the release lease it held
 * lapses, and a new worker rolls the pending revision back at once and upgrades, within a minute,
 * instead of waiting helm's timeout plus 2 minutes and failing the cluster.
 */
import type { Client } from '@temporalio/client';
import { execa } from 'execa';
import { chmod, mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { approve } from '../../scripts/commands/approve';
import { buildRequest } from '../../scripts/commands/plan';
import { startUpgrade } from '../../scripts/commands/start-upgrade';
import { startLocalStack, type LocalStack } from '../../scripts/lib/local-stack';
import type { UpgradeResult } from '../../runbook/types';
import { statusQuery } from '../../workflows/messages';
import { waitForStatus } from '../workflow/harness';
import { buildWorkflowBundle, stackWorkerEnv, startWorkerProcess, type WorkerProcess } from '../helpers/worker-process';
import { kube, NS } from './kube';

let stack: LocalStack;
let client: Client;
let k: ReturnType<typeof kube>;
let bundle: string;
let hostDir: string;
const workers: WorkerProcess[] = [];

beforeAll(async () => {
  stack = await startLocalStack({
    workers: 1,
    installVersion: '0.18.0',
    customValues: true,
    // worker-1's agent never gets ready while the first worker runs: its `helm upgrade --wait` hangs.
    brokenImages: { 'worker-1': ['skoala-agent:v0.19.2'] },
    log: () => {},
  });
  client = stack.temporal.client;
  k = kube(stack);
  hostDir = path.join(stack.sandbox.dir, 'hosts');
  await mkdir(hostDir, { recursive: true });
  bundle = await buildWorkflowBundle(path.join(hostDir, 'workflow-bundle.js'));
}, 300_000);

afterAll(async () => {
  for (const w of workers) await w.stop().catch(() => undefined);
  await stack?.stop();
});

function worker(host: string, helm: string): WorkerProcess {
  const w = startWorkerProcess(
    stackWorkerEnv(stack, {
      backupDir: path.join(hostDir, 'backups'),
      workDir: path.join(hostDir, host),
      bundle,
      helm,
    }),
    host
  );
  workers.push(w);
  return w;
}

const w1 = () => stack.sandbox.workers[0] as (typeof stack.sandbox.workers)[0];
const history = async () =>
  JSON.parse(await k.helm(w1(), ['history', 'skoala-init', '-n', NS, '-o', 'json'])) as {
    revision: number;
    status: string;
    description: string;
  }[];

describe('a worker killed inside helm upgrade', () => {
  it('its pending revision is rolled back at once by the next worker (lease lapsed) and upgraded, within a minute', async () => {
    // The first host's helm: the real one, with --wait on upgrades (so it is caught mid-upgrade).
    const slowHelm = path.join(hostDir, 'helm-wait');
    // (Only skoala-init's: the control plane upgrades as usual.)
    const helm = stack.sandbox.tools.helm;
    await writeFile(
      slowHelm,
      `#!/bin/sh\ncase " $* " in *" upgrade "*" skoala-init "*) exec "${helm}" "$@" --wait --timeout 5m;; esac\nexec "${helm}" "$@"\n`
    );
    await chmod(slowHelm, 0o755);
    const first = worker('host-a', slowHelm);
    await first.polling;
    const request = await buildRequest({ version: '0.19.2', fleet: stack.fleetFile });
    request.tuning = { retryInitialInterval: '1s', retryMaximumAttempts: 10, approvalReminder: '10s' };
    const started = await startUpgrade(request, client, stack.env);
    const handle = client.workflow.getHandle(started.workflowId);

    for (let i = 0; i < 600 && (await history()).at(-1)?.status !== 'pending-upgrade'; i++)
      await new Promise((r) => setTimeout(r, 200));
    expect(
      (await history()).at(-1)?.status,
      `${first.output().slice(-3000)}\n${JSON.stringify(await handle.query(statusQuery))}`
    ).toBe('pending-upgrade');
    const lease = JSON.parse(
      await k.kubectl(w1(), ['get', 'lease', 'skoala-upgrade.skoala-init', '-n', NS, '-o', 'json'])
    ) as {
      spec: { holderIdentity: string };
    };
    expect(lease.spec.holderIdentity).toMatch(/^skoala-upgrade-sandbox-0\.19\.2@/);

    first.child.kill('SIGKILL');
    await first.child;
    // Its helm went with it: nothing of ours keeps changing the release.
    const hanging = async () =>
      (await execa('ps', ['-eo', 'args'])).stdout
        .split('\n')
        .filter((l) => l.includes(stack.sandbox.tools.helm) && l.includes('--wait') && l.includes(w1().kubeconfig));
    for (let i = 0; i < 30 && (await hanging()).length > 0; i++) await new Promise((r) => setTimeout(r, 100));
    expect(await hanging()).toEqual([]);

    stack.workloads['worker-1']?.setBroken([]);
    const t0 = Date.now();
    const second = worker('host-b', stack.sandbox.tools.helm);
    await second.polling;
    await waitForStatus(handle, (s) => s.pendingApprovals.includes('worker-1'), 120_000);
    const recovered = Date.now() - t0;
    console.log(`worker-killed: worker-1 at its gate ${recovered} ms after the new worker started`);
    await approve({ all: true, by: 'e2e', workflowId: handle.workflowId }, client);
    const result = (await handle.result()) as UpgradeResult;
    expect(result.workers.map((w) => w.outcome)).toEqual(['upgraded']);
    expect(recovered, `worker-1 reached its gate ${recovered} ms after the new worker started`).toBeLessThan(60_000);
    // Exactly one rollback, and the release is not left pending.
    const after = await history();
    expect(after.filter((h) => /^Rollback to \d+$/.test(h.description))).toHaveLength(1);
    expect(after.at(-1)).toMatchObject({ status: 'deployed' });
    expect((await k.release(w1(), 'skoala-init'))?.chart).toBe('skoala-init-0.19.2');
  }, 600_000);
});
