/**
 * When things go sideways, end to end (real Temporal dev server and worker, real kube-apiservers,
 * real helm): two operators starting at once, a second version while one runs, someone's helm
 * changing values under a running upgrade, and a rerun that finishes a rejected CRD step.
 */
import type { Client, WorkflowHandle } from '@temporalio/client';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { approve } from '../../scripts/commands/approve';
import { buildRequest } from '../../scripts/commands/plan';
import { startUpgrade } from '../../scripts/commands/start-upgrade';
import { startLocalStack, type LocalStack } from '../../scripts/lib/local-stack';
import { upgradeWorkflowId } from '../../runbook/fleet';
import type { UpgradeResult } from '../../runbook/types';
import { gateQuery } from '../../workflows/messages';
import { waitForStatus } from '../workflow/harness';
import { kube, NS } from './kube';

let stack: LocalStack;
let client: Client;
let k: ReturnType<typeof kube>;
const WORKFLOW_ID = upgradeWorkflowId('sandbox');

beforeAll(async () => {
  stack = await startLocalStack({ workers: 2, installVersion: '0.18.0', customValues: true, log: () => {} });
  await stack.startWorker();
  client = stack.temporal.client;
  k = kube(stack);
});
afterAll(async () => {
  await stack?.stop();
});

const w = (i: number) => {
  const c = stack.sandbox.workers[i];
  if (!c) throw new Error(`no worker ${i}`);
  return c;
};

function cli(args: string[]) {
  const fleet = args[0] === 'start-upgrade' ? ['--fleet', stack.fleetFile] : [];
  return execa(process.execPath, ['--import', 'tsx', 'scripts/cli.ts', ...args, ...fleet], {
    reject: false,
    env: { TEMPORAL_ADDRESS: stack.env.address, SKOALA_TASK_QUEUE: stack.taskQueue },
  });
}

async function crdRecord(i: number): Promise<{ version?: string; at?: string }> {
  const out = await k.kubectl(w(i), [
    'get',
    'configmap',
    'skoala-upgrade-crds',
    '-n',
    NS,
    '--ignore-not-found',
    '-o',
    'json',
  ]);
  return out ? ((JSON.parse(out) as { data: { version: string; at: string } }).data ?? {}) : {};
}

async function startFor(version: string, extra: { forceCrdReapply?: boolean } = {}): Promise<WorkflowHandle> {
  const request = await buildRequest({ version, fleet: stack.fleetFile, maxParallel: '1', ...extra });
  request.tuning = { retryInitialInterval: '1s', retryMaximumAttempts: 5, approvalReminder: '10s' };
  const started = await startUpgrade(request, client, stack.env);
  return client.workflow.getHandle(started.workflowId);
}

describe.sequential('an upgrade meets the real world', () => {
  it('two operators start at the same instant: one upgrade, one "started", one "attached"; another version is refused', async () => {
    const [a, b] = await Promise.all([
      cli(['start-upgrade', '--version', '0.19.2', '--max-parallel', '1']),
      cli(['start-upgrade', '--version', '0.19.2', '--max-parallel', '1']),
    ]);
    expect([a.exitCode, b.exitCode], `${a.stderr}\n${b.stderr}`).toEqual([0, 0]);
    const firstLines = [a.stdout, b.stdout].map((o) => o.split('\n')[0]).sort();
    expect(firstLines).toEqual([`attached to the running upgrade ${WORKFLOW_ID}`, `started upgrade ${WORKFLOW_ID}`]);

    const handle = client.workflow.getHandle(WORKFLOW_ID);
    await waitForStatus(handle, (s) => s.pendingApprovals.includes('worker-1'), 120_000);
    const other = await cli(['start-upgrade', '--version', '0.27.2']);
    expect(other.exitCode).toBe(2);
    expect(other.stderr.trim().split('\n')).toEqual([
      `skoala-upgrade: refused: upgrade ${WORKFLOW_ID} to 0.19.2 is running (phase workers); one upgrade per fleet at a time: let it finish or cancel it (npm run cancel) before starting 0.27.2`,
    ]);
    // The same version with other rollout flags is not a silent attach: the differences, exit 2.
    const otherFlags = await cli([
      'start-upgrade',
      '--version',
      '0.19.2',
      '--canary',
      'worker-2',
      '--on-failure',
      'stop',
    ]);
    expect(otherFlags.exitCode).toBe(2);
    expect(otherFlags.stderr.trim().split('\n')).toEqual([
      `skoala-upgrade: refused: upgrade ${WORKFLOW_ID} to 0.19.2 is already running with other options: --canary worker-2 (running: none), --on-failure stop (running: rollback), --max-parallel 5 (running: 1); run start-upgrade with the running options to attach, or steer it with pause/hold/retry/skip, or cancel it and start again`,
    ]);
  });

  it("someone's helm changes worker-2's values while it waits its turn: that cluster stops, nothing is overwritten", async () => {
    const handle = client.workflow.getHandle(WORKFLOW_ID);
    await k.helm(w(1), [
      'upgrade',
      'skoala-init',
      'skoala-init',
      '--repo',
      stack.sandbox.chartRepo.url,
      '--version',
      '0.18.0',
      '-n',
      NS,
      '--reuse-values',
      '--set',
      'custom.extra=by-hand',
    ]);
    await approve(
      { cluster: 'worker-1', reject: true, by: 'alice', reason: 'gateways first', workflowId: WORKFLOW_ID },
      client
    );
    const result = (await handle.result()) as UpgradeResult;
    expect(result.workers.map((r) => [r.cluster, r.outcome])).toEqual([
      ['worker-1', 'rejected'],
      ['worker-2', 'failed'],
    ]);
    expect(result.workers[1]?.error).toMatch(
      /values changed since the plan: re-run plan \(skoala-init on worker-2 is now at revision 2 \(deployed, skoala-init-0\.18\.0, [^)]+\): Upgrade complete, planned from revision 1\)/
    );
    expect(await k.revisions(w(1), 'skoala-init')).toBe(2);
    expect(await k.values(w(1), 'skoala-init')).toMatchObject({ custom: { marker: 'worker-2', extra: 'by-hand' } });
    // The rejected cluster's CRD step is not recorded as done.
    expect(await crdRecord(0)).toEqual({});
    expect(await k.crdChartVersion(w(0), 'httpproxies.projectcontour.io')).toBe('0.18.0');
  });

  it('a rerun finishes what was left: the gate and CRDs for worker-1, the upgrade of worker-2 from its new values', async () => {
    const handle = await startFor('0.19.2'); // the finished upgrade does not block the next one
    await waitForStatus(handle, (s) => s.pendingApprovals.includes('worker-1'), 120_000);
    // The approver sees what the CRD step would do on this cluster (a server-side dry run).
    const gate = await client.workflow.getHandle(`${WORKFLOW_ID}/worker-1`).query(gateQuery);
    expect(gate.preview).toMatch(/^CRD preview: 13 CRD\(s\): 13 to change, 0 to create, 0 unchanged/);
    expect((await approve({ all: true, by: 'bob', workflowId: WORKFLOW_ID }, client)).clusters).toEqual(['worker-1']);
    await waitForStatus(handle, (s) => s.pendingApprovals.includes('worker-2'), 120_000);
    await approve({ cluster: 'worker-2', by: 'bob', workflowId: WORKFLOW_ID }, client);
    const result = (await handle.result()) as UpgradeResult;
    expect(result.controlPlane.outcome).toBe('already-at-target');
    expect(result.workers.map((r) => r.outcome)).toEqual(['upgraded', 'upgraded']);
    expect(await k.revisions(w(0), 'skoala-init')).toBe(2); // worker-1 was not upgraded again
    for (const i of [0, 1]) {
      expect(await k.crdChartVersion(w(i), 'httpproxies.projectcontour.io')).toBe('0.19.2');
      expect(await crdRecord(i)).toMatchObject({ version: '0.19.2' });
    }
    expect(await k.values(w(1), 'skoala-init')).toMatchObject({ custom: { extra: 'by-hand' } });
  });

  it('--force-crd-reapply re-applies the CRDs of clusters already at target, after the gate', async () => {
    const before = await crdRecord(0);
    const handle = await startFor('0.19.2', { forceCrdReapply: true });
    const approvedBy: string[] = [];
    for (;;) {
      const s = await waitForStatus(handle, (x) => x.pendingApprovals.length > 0 || x.phase === 'done', 120_000);
      if (s.phase === 'done') break;
      approvedBy.push(...(await approve({ all: true, by: 'carol', workflowId: WORKFLOW_ID }, client)).clusters);
    }
    expect(approvedBy).toEqual(['worker-1', 'worker-2']); // one at a time (max parallel 1), each behind its gate
    const result = (await handle.result()) as UpgradeResult;
    expect(result.workers.map((r) => r.outcome)).toEqual(['upgraded', 'upgraded']);
    expect((await crdRecord(0)).at).not.toBe(before.at);
  });

  it('npm run cancel at the gate: helm is left deployed (never pending), every cluster named, the workflow CANCELLED', async () => {
    const handle = await startFor('0.27.2');
    await waitForStatus(handle, (s) => s.pendingApprovals.includes('worker-1'), 120_000);
    const run = await cli(['cancel']);
    expect(run.exitCode, run.stderr).toBe(0);
    expect(run.stdout.split('\n')[0]).toBe(`${WORKFLOW_ID}: cancelled`);
    expect(run.stdout).toMatch(/│ worker-1 +│ worker +│ cancelled .*│ cancelled at the CRD approval gate +│/);
    expect(run.stdout).toMatch(/│ worker-2 +│ worker +│ cancelled /);
    expect((await handle.describe()).status.name).toBe('CANCELLED');
    expect(await k.release(w(0), 'skoala-init')).toMatchObject({ status: 'deployed', chart: 'skoala-init-0.27.2' });
    expect(await k.release(w(1), 'skoala-init')).toMatchObject({ status: 'deployed', chart: 'skoala-init-0.19.2' });
    const status = await cli(['status', '--workflow-id', WORKFLOW_ID]);
    expect(status.stdout).toContain(`${WORKFLOW_ID}-0.27.2: cancelled (target 0.27.2)`);
  });
});
