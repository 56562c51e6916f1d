/**
 * Health checks, rollbacks and canaries judged by real pods: every sandbox cluster has a real node
 * (containerd + kubelet, controller manager, scheduler: sandbox/node.ts) pulling the fixture images
 * (sandbox/images.ts). A broken version breaks in its image: 0.19.3's hive exits at start
 * (CrashLoopBackOff), 0.27.2's hive is missing from the registry (ErrImagePull), 0.28.2's agent
 * never becomes ready. The health check, rollback, canary and failure budget are judged by them.
 * No status stand-in runs here.
 */
import type { Client, WorkflowHandle } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildRequest } from '../../scripts/commands/plan';
import { startUpgrade } from '../../scripts/commands/start-upgrade';
import { startLocalStack, type LocalStack } from '../../scripts/lib/local-stack';
import type { UpgradeResult } from '../../runbook/types';
import type { SandboxCluster } from '../../sandbox';
import { finish as finishUpgrade } from './approve-until';
import { kube, NS } from './kube';

let stack: LocalStack;
let client: Client;
let k: ReturnType<typeof kube>;

beforeAll(async () => {
  stack = await startLocalStack({ workers: 2, installVersion: '0.18.0', realNodes: true, log: () => {} });
  await stack.startWorker();
  client = stack.temporal.client;
  k = kube(stack);
}, 600_000);
afterAll(async () => {
  await stack?.stop();
});

const cp = () => stack.sandbox.controlPlane;
const w = (i: number) => stack.sandbox.workers[i - 1] as SandboxCluster;

interface Pod {
  name: string;
  app: string;
  image: string;
  ready: boolean;
  phase: string;
}

/** The pods really running in the cluster's namespace, as the kubelet reports them. */
async function pods(c: SandboxCluster): Promise<Pod[]> {
  const list = JSON.parse(await k.kubectl(c, ['get', 'pods', '-n', NS, '-o', 'json'])) as {
    items: {
      metadata: { name: string; labels?: Record<string, string>; deletionTimestamp?: string };
      spec: { containers: { image: string }[] };
      status: { phase: string; containerStatuses?: { ready: boolean }[] };
    }[];
  };
  return list.items
    .filter((p) => !p.metadata.deletionTimestamp)
    .map((p) => ({
      name: p.metadata.name,
      app: p.metadata.labels?.['app.kubernetes.io/name'] ?? '?',
      image: p.spec.containers[0]?.image ?? '?',
      ready: (p.status.containerStatuses ?? []).every((s) => s.ready) && p.status.phase === 'Running',
      phase: p.status.phase,
    }));
}

/** The ui keeps its own tag (a runbook rule); every other component runs the engine version's. */
const atTag = (p: Pod, tag: string): boolean => p.image.endsWith(p.app === 'ui' ? ':v0.8.0' : `:${tag}`);

/** Deployment pods (Jobs' pods left out), once only ready ones of the given tag remain. */
async function settledPods(c: SandboxCluster, tag: string): Promise<Pod[]> {
  const end = Date.now() + 60_000;
  for (;;) {
    const all = (await pods(c)).filter((p) => p.phase !== 'Succeeded');
    if (all.length > 0 && all.every((p) => p.ready && atTag(p, tag))) return all;
    if (Date.now() > end) return all;
    await new Promise((r) => setTimeout(r, 500));
  }
}

async function start(version: string, flags: Record<string, string | boolean> = {}): Promise<WorkflowHandle> {
  const request = await buildRequest({
    version,
    fleet: stack.fleetFile,
    healthTimeout: '20s',
    onFailure: 'rollback',
    ...flags,
  });
  request.tuning = { retryInitialInterval: '1s', retryMaximumAttempts: 3, approvalReminder: '10s' };
  const started = await startUpgrade(request, client, stack.env);
  return client.workflow.getHandle(started.workflowId);
}

/** Approves every gate as it opens, until the upgrade ends; returns its failure message or result. */
const finish = (handle: WorkflowHandle) => finishUpgrade(client, handle, 240_000);

describe.sequential('on real nodes', { timeout: 300_000 }, () => {
  it('0.18.0 -> 0.19.2: the DB-migration Job runs as a pod, every Deployment rolls to the new image', async () => {
    const before = await settledPods(w(1), 'v0.18.0');
    expect(before.map((p) => p.app).sort()).toEqual(['nacos-operator', 'sentinel-operator', 'skoala-agent']);
    const result = (await finish(await start('0.19.2'))) as UpgradeResult;
    expect(result.counts).toMatchObject({ upgraded: 3, failed: 0, 'rolled-back': 0 });
    // The Job controller ran the migration in a real pod, which exited 0.
    const job = JSON.parse(await k.kubectl(cp(), ['get', 'job', 'skoala-db-upgrade', '-n', NS, '-o', 'json'])) as {
      status: { succeeded?: number };
    };
    expect(job.status.succeeded).toBe(1);
    const jobPod = await k.kubectl(cp(), ['logs', '-n', NS, 'job/skoala-db-upgrade']).catch((e: Error) => e.message);
    expect(jobPod).toContain('skoala/sweet:v0.19.0: upgrade done');
    for (const c of [cp(), w(1), w(2)]) {
      const now = await settledPods(c, 'v0.19.2');
      expect(
        now.every((p) => p.ready && atTag(p, 'v0.19.2')),
        JSON.stringify(now)
      ).toBe(true);
    }
    // New pods, not the old ones relabelled: the kubelet replaced every one.
    const after = await settledPods(w(1), 'v0.19.2');
    expect(after.some((p) => before.some((b) => b.name === p.name))).toBe(false);
  });

  it('0.19.2 -> 0.19.3: hive crashes for real (CrashLoopBackOff), skoala is rolled back, its pods serve 0.19.2', async () => {
    const hiveBefore = (await settledPods(cp(), 'v0.19.2')).find((p) => p.app === 'hive');
    const message = (await finish(await start('0.19.3'))) as string;
    expect(message).toMatch(/^control plane control-plane failed and was rolled back, no worker cluster was touched: /);
    // Between two restarts the container waits in CrashLoopBackOff or has just exited: both say why.
    expect(message).toMatch(
      /deployment\/hive: .*pod hive-\S+: (CrashLoopBackOff, restarted \d+ time\(s\) \(last: Error, exit 1\)|Error, exit 1)/
    );
    expect(await k.release(cp(), 'skoala')).toMatchObject({ status: 'deployed', chart: 'skoala-0.19.2' });
    const now = await settledPods(cp(), 'v0.19.2');
    expect(
      now.every((p) => p.ready && atTag(p, 'v0.19.2')),
      JSON.stringify(now)
    ).toBe(true);
    // The 0.19.2 pod kept serving all along: a rolling update never took it down for a crashing one.
    expect(now.find((p) => p.app === 'hive')?.name).toBe(hiveBefore?.name);
  });

  it('0.19.2 -> 0.27.2: an image missing from the registry (ErrImagePull) fails the control plane, rolled back', async () => {
    const message = (await finish(await start('0.27.2'))) as string;
    expect(message).toMatch(/^control plane control-plane failed and was rolled back/);
    expect(message).toMatch(/pod hive-\S+: (ErrImagePull|ImagePullBackOff)/);
    expect(await k.release(cp(), 'skoala')).toMatchObject({ status: 'deployed', chart: 'skoala-0.19.2' });
  });

  it('0.19.2 -> 0.28.2 with a canary: its agent never gets ready, it is rolled back and its old pods come back', async () => {
    const before = await settledPods(w(1), 'v0.19.2');
    const handle = await start('0.28.2', { canary: 'worker-1' });
    const result = (await finish(handle)) as UpgradeResult;
    expect(result.workers.map((r) => [r.cluster, r.outcome])).toEqual([
      ['worker-1', 'rolled-back'],
      ['worker-2', 'not-started'],
    ]);
    expect(result.workers[0]?.error).toMatch(/deployment\/skoala-agent: .*pod skoala-agent-\S+: running, not ready/);
    expect(result.workers[0]?.error).toMatch(/rolled back to revision \d+$/);
    expect(await k.release(w(1), 'skoala-init')).toMatchObject({ status: 'deployed', chart: 'skoala-init-0.19.2' });
    // The operators had rolled to 0.28.2 (their 0.19.2 pods gone); the rollback brought 0.19.2 pods
    // back (new ones), and seata-operator, new in 0.28, is gone with its pods.
    const after = await settledPods(w(1), 'v0.19.2');
    expect(
      after.every((p) => p.ready && atTag(p, 'v0.19.2')),
      JSON.stringify(after)
    ).toBe(true);
    expect(after.map((p) => p.app).sort()).toEqual(['nacos-operator', 'sentinel-operator', 'skoala-agent']);
    const nacos = (list: Pod[]) => list.find((p) => p.app === 'nacos-operator')?.name;
    expect(nacos(after)).not.toBe(nacos(before));
    expect(await k.kubectl(w(1), ['get', 'deployment', 'seata-operator', '-n', NS, '--ignore-not-found'])).toBe('');
  });

  it('the failure budget: --max-failures 0, worker-1 fails for real and is rolled back, worker-2 is not touched', async () => {
    const untouched = await settledPods(w(2), 'v0.19.2');
    // worker-1 was rolled back by the last run of this same upgrade: try it again.
    const handle = await start('0.28.2', { maxFailures: '0', maxParallel: '1', retryFailed: true });
    const result = (await finish(handle)) as UpgradeResult;
    expect(result.workers.map((r) => [r.cluster, r.outcome])).toEqual([
      ['worker-1', 'rolled-back'],
      ['worker-2', 'not-started'],
    ]);
    expect(result.workers[1]?.error).toMatch(
      /^not started: 1 worker cluster\(s\) failed \(worker-1\), more than --max-failures 0/
    );
    // The same pods as before, never restarted: nothing reached worker-2.
    expect((await settledPods(w(2), 'v0.19.2')).map((p) => p.name).sort()).toEqual(untouched.map((p) => p.name).sort());
  });
});
