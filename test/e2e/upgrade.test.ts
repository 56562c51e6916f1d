/**
 * End to end, no doubles: real kube-apiservers, real helm and kubectl, a real chart repository,
 * a real Temporal dev server and worker. One fleet (control plane + 3 workers) goes through the
 * runbook's upgrade paths in order: 0.18.0 -> 0.19.2 -> 0.27.2 -> 0.28.1 -> 0.52.1 -> 0.53.0.
 */
import type { Client, WorkflowHandle } from '@temporalio/client';
import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { parse } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { approve } from '../../scripts/commands/approve';
import { buildRequest } from '../../scripts/commands/plan';
import { startUpgrade } from '../../scripts/commands/start-upgrade';
import { startLocalStack, type LocalStack } from '../../scripts/lib/local-stack';
import type { UpgradeResult } from '../../runbook/types';
import { waitForStatus } from '../workflow/harness';
import { historiesText, kube, NS } from './kube';

let stack: LocalStack;
let client: Client;
let k: ReturnType<typeof kube>;
const workers = ['worker-1', 'worker-2', 'worker-3'];

beforeAll(async () => {
  stack = await startLocalStack({ workers: 3, installVersion: '0.18.0', customValues: true, log: () => {} });
  await stack.startWorker();
  client = stack.temporal.client;
  k = kube(stack);
});
afterAll(async () => {
  await stack?.stop();
});

const all = () => [stack.sandbox.controlPlane, ...stack.sandbox.workers];
const releaseOf = (name: string) => (name === 'control-plane' ? 'skoala' : 'skoala-init');

async function start(version: string): Promise<WorkflowHandle> {
  const request = await buildRequest({ version, fleet: stack.fleetFile });
  request.tuning = { retryInitialInterval: '1s', retryMaximumAttempts: 10, approvalReminder: '10s' };
  const started = await startUpgrade(request, client, stack.env);
  return client.workflow.getHandle(started.workflowId);
}

async function approveAllWhenWaiting(handle: WorkflowHandle, expected: number): Promise<void> {
  await waitForStatus(handle, (s) => s.pendingApprovals.length === expected, 120_000);
  await approve({ all: true, by: 'e2e', workflowId: handle.workflowId }, client);
}

describe.sequential('upgrading a sandbox fleet', () => {
  it('refuses at preflight when the target version is not in the chart repository, changing nothing', async () => {
    const revisions = await Promise.all(all().map((c) => k.revisions(c, releaseOf(c.name))));
    const handle = await start('0.20.0');
    const err = await handle.result().catch((e: { cause?: Error }) => e.cause?.message);
    expect(err).toMatch(
      /^preflight failed, nothing was changed: chart skoala: chart skoala 0\.20\.0 is not in repository skoala \(http:\/\/127\.0\.0\.1:\d+\)/
    );
    expect(await Promise.all(all().map((c) => k.revisions(c, releaseOf(c.name))))).toEqual(revisions);
  });

  it('0.18.0 -> 0.19.2: DB migration, backups, one new revision each, custom values kept, CRDs re-applied', async () => {
    const before = Object.fromEntries(
      await Promise.all(all().map(async (c) => [c.name, await k.values(c, releaseOf(c.name))] as const))
    );
    const handle = await start('0.19.2');
    // A second start for the same fleet and version attaches to the same workflow.
    const again = await startUpgrade(
      await buildRequest({ version: '0.19.2', fleet: stack.fleetFile }),
      client,
      stack.env
    );
    expect(again).toMatchObject({ workflowId: handle.workflowId, attached: true });
    expect(again.runId).toBe((await handle.describe()).runId);

    await waitForStatus(handle, (s) => s.pendingApprovals.length === 3, 120_000);
    // The gate holds the CRD step: nothing re-applied yet.
    for (const w of stack.sandbox.workers)
      expect(await k.crdChartVersion(w, 'httpproxies.projectcontour.io')).toBe('0.18.0');
    await approve({ cluster: 'worker-1', by: 'alice', reason: 'reviewed', workflowId: handle.workflowId }, client);
    expect((await approve({ all: true, by: 'bob', workflowId: handle.workflowId }, client)).clusters.sort()).toEqual([
      'worker-2',
      'worker-3',
    ]);
    const result = (await handle.result()) as UpgradeResult;

    expect(result.counts).toMatchObject({ upgraded: 4, failed: 0, rejected: 0 });
    expect(result.workers.find((w) => w.cluster === 'worker-1')?.approval).toMatchObject({
      approved: true,
      by: 'alice',
      reason: 'reviewed',
    });
    const cp = stack.sandbox.controlPlane;
    for (const c of all()) {
      const rel = releaseOf(c.name);
      expect(await k.release(c, rel)).toMatchObject({ status: 'deployed', chart: `${rel}-0.19.2` });
      expect(await k.revisions(c, rel)).toBe(2); // exactly one new revision
      expect(await k.values(c, rel)).toMatchObject({ custom: { marker: c.name } }); // custom values survived
    }
    expect(await k.image(cp, 'hive')).toMatch(/:v0\.19\.2$/);
    expect(await k.image(cp, 'sesame')).toMatch(/:v0\.19\.2$/);
    expect(await k.image(cp, 'ui')).toMatch(/:v0\.8\.0$/); // the UI keeps its own version line
    expect(await k.values(cp, 'skoala')).toMatchObject({
      hive: { configMap: { data: { database: { password: 's3cret-control-plane' } } } },
    });
    for (const w of stack.sandbox.workers) {
      for (const d of ['skoala-agent', 'nacos-operator', 'sentinel-operator'])
        expect(await k.image(w, d)).toMatch(/:v0\.19\.2$/);
      for (const crd of ['httpproxies.projectcontour.io', 'gateways.gateway.networking.k8s.io'])
        expect(await k.crdChartVersion(w, crd)).toBe('0.19.2');
    }
    // The DB-migration Job ran (and completed) on the control plane only.
    const job = JSON.parse(await k.kubectl(cp, ['get', 'job', 'skoala-db-upgrade', '-n', NS, '-o', 'json'])) as {
      status: { succeeded?: number };
    };
    expect(job.status.succeeded).toBe(1);
    // The backups hold exactly the pre-upgrade values, owner-only; history holds no secret.
    for (const r of [result.controlPlane, ...result.workers]) {
      const file = path.join(stack.backupDir, r.backup?.ref ?? 'missing');
      expect(parse(await readFile(file, 'utf8'))).toEqual(before[r.cluster]);
      expect((await stat(file)).mode & 0o777).toBe(0o600);
    }
    const history = await historiesText(client, handle.workflowId, workers);
    expect(history).not.toContain('s3cret');
    // Positive control: the upgradeRelease input's --set pairs are payload text, found only when decoded.
    expect(history).toContain('hive.image.tag');
    expect(history).toContain('backupValues');
  });

  it('0.19.2 -> 0.27.2 with worker-2 API server down during its CRD step: retried, then completed', async () => {
    const w2 = stack.sandbox.workers[1];
    if (!w2) throw new Error('no worker-2');
    const handle = await start('0.27.2');
    await waitForStatus(handle, (s) => s.pendingApprovals.length === 3, 120_000);
    await w2.stop();
    await approve({ all: true, by: 'e2e', workflowId: handle.workflowId }, client);
    // Let the CRD step fail against the dead server a few times before it comes back.
    await waitForStatus(handle, (s) => s.workers.filter((w) => w.state === 'upgraded').length === 2, 120_000);
    await new Promise((r) => setTimeout(r, 4_000));
    await w2.start();
    const result = (await handle.result()) as UpgradeResult;
    expect(result.workers.map((w) => w.outcome)).toEqual(['upgraded', 'upgraded', 'upgraded']);
    expect(await k.crdChartVersion(w2, 'httpproxies.projectcontour.io')).toBe('0.27.2');
    const events = (await client.workflow.getHandle(`${handle.workflowId}/worker-2`).fetchHistory()).events ?? [];
    const attempts = events.map((e) => e.activityTaskStartedEventAttributes?.attempt ?? 0);
    expect(Math.max(...attempts)).toBeGreaterThan(1); // the step was retried
  });

  it('0.27.2 -> 0.28.1: admission Jobs deleted before the upgrade, seata-operator tag set, no DB migration', async () => {
    const handle = await start('0.28.1');
    await approveAllWhenWaiting(handle, 3);
    const result = (await handle.result()) as UpgradeResult;
    expect(result.counts.upgraded).toBe(4);
    for (const w of stack.sandbox.workers) {
      expect(await k.release(w, 'skoala-init')).toMatchObject({ status: 'deployed', chart: 'skoala-init-0.28.1' });
      expect(await k.image(w, 'seata-operator')).toMatch(/:v0\.28\.1$/);
      // Recreated by the new chart (Job templates are immutable: the old ones had to go first).
      const image = await k.kubectl(w, [
        'get',
        'job',
        'gateway-api-admission',
        '-n',
        NS,
        '-o',
        'jsonpath={.spec.template.spec.containers[0].image}',
      ]);
      expect(image).toMatch(/v0\.28\.1$/);
    }
    const history = await historiesText(client, handle.workflowId, workers);
    expect(history).toContain('deleteAdmissionJobs');
    expect(history).not.toContain('runDbMigrationJob');
  });

  it('0.28.1 -> 0.52.1 re-applies the Higress CRDs; 0.52.1 -> 0.53.0 has no CRD step and no gate', async () => {
    const h1 = await start('0.52.1');
    await approveAllWhenWaiting(h1, 3);
    await h1.result();
    for (const w of stack.sandbox.workers)
      expect(await k.crdChartVersion(w, 'mcpbridges.networking.higress.io')).toBe('0.52.1');

    const h2 = await start('0.53.0');
    const result = (await h2.result()) as UpgradeResult; // no approval needed
    expect(result.counts.upgraded).toBe(4);
    for (const w of stack.sandbox.workers) {
      expect(await k.release(w, 'skoala-init')).toMatchObject({ status: 'deployed', chart: 'skoala-init-0.53.0' });
      expect(await k.crdChartVersion(w, 'httpproxies.projectcontour.io')).toBe('0.52.1'); // not touched by us
    }
    const history = await historiesText(client, h2.workflowId, workers);
    expect(history).not.toContain('reapplyCrds');
    expect(history).not.toContain('awaitCrdApproval');
  });
});
