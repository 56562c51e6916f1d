/**
 * The parent and child workflows on a real Temporal dev server, with activity doubles that record
 * every execution (the end-to-end suite runs the real activities against real clusters).
 */
import { WorkflowFailedError, WorkflowUpdateFailedError } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { upgradeEngine, upgradeWorkerCluster } from '../../workflows';
import { decideCrdUpdate } from '../../workflows/messages';
import { approveGate, approveWaiting } from './approve';
import { maxOverlap, startHarness, waitForStatus, type Harness } from './harness';
import { fakeFleetAt, fleetOf, requestFor } from './request';
import { FakeFleet, fakeChartSha256 } from './fake-activities';
import type { ReleaseFacts, UpgradeRequest } from '../../runbook/types';
import type { PlanMemo } from '../../workflows/plan-memo';

let h: Harness;
beforeAll(async () => {
  h = await startHarness();
});
afterAll(async () => {
  await h?.close();
});

let queueCounter = 0;
const queue = () => `q-${Date.now()}-${queueCounter++}`;

function start(request: UpgradeRequest, taskQueue: string) {
  return h.env.client.workflow.start(upgradeEngine, {
    taskQueue,
    workflowId: `wf-${request.upgradeId}`,
    args: [{ request }],
  });
}

/** Approves every gate as soon as it opens, until stopped. */
function autoApprove(handle: ReturnType<typeof start> extends Promise<infer H> ? H : never) {
  let stopped = false;
  const loop = (async () => {
    while (!stopped) {
      try {
        await approveWaiting(handle, 'test-operator', 'auto');
      } catch {
        // nobody waiting yet
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  })();
  return async () => {
    stopped = true;
    await loop;
  };
}

/** Waits for the upgrade's result, approving every gate as it opens. */
async function resultApprovingAll(handle: Awaited<ReturnType<typeof start>>) {
  const stop = autoApprove(handle);
  try {
    return await handle.result();
  } finally {
    await stop();
  }
}

const clusterSpan = (fake: FakeFleet, cluster: string, except: string): [number, number] => {
  const calls = fake.calls.filter((c) => c.cluster === cluster && c.activity !== except);
  return [Math.min(...calls.map((c) => c.start)), Math.max(...calls.map((c) => c.end ?? Date.now()))];
};

describe('upgradeEngine', () => {
  it('upgrades the control plane first, then the workers at most maxParallel at a time', async () => {
    const fleet = fleetOf(5);
    const fake = fakeFleetAt(fleet, '0.18.0', 300);
    const tq = queue();
    const worker = await h.worker(tq, fake.activities());
    const result = await worker.runUntil(async () => {
      const handle = await start(requestFor(fleet, { maxParallel: 2 }), tq);
      return resultApprovingAll(handle);
    });

    expect(result.controlPlane.outcome).toBe('upgraded');
    expect(result.workers.map((w) => [w.cluster, w.outcome, w.from, w.to])).toEqual(
      fleet.workers.map((w) => [w.name, 'upgraded', '0.18.0', '0.19.2'])
    );
    expect(result.workers.every((w) => w.approval?.by === 'test-operator')).toBe(true);
    // No worker-cluster step starts before the control plane's verify ended.
    const cpVerified =
      fake.calls.find((c) => c.activity === 'verifyRelease' && c.cluster === 'control-plane')?.end ?? Infinity;
    const firstWorkerStep = Math.min(
      ...fake.calls
        .filter((c) => c.cluster?.startsWith('worker') && c.activity !== 'preflightCluster')
        .map((c) => c.start)
    );
    expect(firstWorkerStep).toBeGreaterThanOrEqual(cpVerified);
    // The 0.18.0 -> 0.19.2 rule: the DB-migration Job ran on the control plane only.
    expect(fake.count('runDbMigrationJob')).toBe(1);
    // Measured from activity timestamps: never more than 2 clusters in flight, and the window was used.
    const spans = fleet.workers.map((w) => clusterSpan(fake, w.name, 'preflightCluster'));
    expect(maxOverlap(spans)).toBe(2);
    expect(fake.count('upgradeRelease')).toBe(6);
  });

  it('pins each upgrade and CRD step to the chart digest preflight recorded; add and update name the upgrade', async () => {
    const fleet = fleetOf(2);
    const fake = fakeFleetAt(fleet, '0.18.0');
    const tq = queue();
    const worker = await h.worker(tq, fake.activities());
    const request = requestFor(fleet);
    await worker.runUntil(async () => resultApprovingAll(await start(request, tq)));
    type ChartStep = { cluster: { name: string }; step: { chart: string; version: string; chartSha256?: string } };
    const stepsOf = (activity: string) =>
      fake.chartInputs
        .filter((x) => x.activity === activity)
        .map((x) => x.input as ChartStep)
        .map((i) => [i.cluster.name, i.step.chart, i.step.chartSha256])
        .sort();
    const sha = (chart: string) => fakeChartSha256(chart, '0.19.2');
    expect(stepsOf('upgradeRelease')).toEqual([
      ['control-plane', 'skoala', sha('skoala')],
      ['worker-1', 'skoala-init', sha('skoala-init')],
      ['worker-2', 'skoala-init', sha('skoala-init')],
    ]);
    expect(stepsOf('reapplyCrds')).toEqual([
      ['worker-1', 'skoala-init', sha('skoala-init')],
      ['worker-2', 'skoala-init', sha('skoala-init')],
    ]);
    const repoSteps = fake.chartInputs.filter((x) => x.activity === 'addChartRepo' || x.activity === 'updateChartRepo');
    expect(repoSteps).toHaveLength(6);
    for (const { input } of repoSteps) expect(input).toEqual({ repo: fleet.chartRepo, upgradeId: request.upgradeId });
  });

  it('holds the CRD step at the gate; per-cluster approve, reject, and refused approvals', async () => {
    const fleet = fleetOf(3);
    const fake = fakeFleetAt(fleet, '0.18.0');
    const releaseW3 = fake.hold('upgradeRelease', 'worker-3');
    const tq = queue();
    const worker = await h.worker(tq, fake.activities());
    await worker.runUntil(async () => {
      const request = requestFor(fleet, { maxParallel: 3 });
      const handle = await start(request, tq);
      await waitForStatus(handle, (s) => s.pendingApprovals.length === 2);
      const child = (name: string) => h.env.client.workflow.getHandle(`${handle.workflowId}/${name}`);
      expect(fake.count('reapplyCrds')).toBe(0); // the gate holds every CRD step

      // worker-3 is still upgrading: its gate is not open yet.
      await expect(approveGate(child('worker-3'), 'worker-3', 'alice')).rejects.toThrow(WorkflowUpdateFailedError);
      const notWaiting = await approveGate(child('worker-3'), 'worker-3', 'alice').catch(
        (e: WorkflowUpdateFailedError) => e.cause?.message
      );
      expect(notWaiting).toBe('cluster worker-3 is not waiting for approval yet (running)');
      // An approval sent to the wrong cluster's gate is refused, naming both.
      const wrong = await approveGate(child('worker-1'), 'worker-2', 'alice').catch(
        (e: WorkflowUpdateFailedError) => e.cause?.message
      );
      expect(wrong).toBe('this gate belongs to cluster worker-1, not worker-2');

      expect(await approveGate(child('worker-1'), 'worker-1', 'alice', 'CRDs reviewed')).toMatch(
        /^worker-1: CRD step approved by alice \([0-9a-f]{12}\)$/
      );
      await child('worker-2').executeUpdate(decideCrdUpdate, {
        args: [{ cluster: 'worker-2', approve: false, by: 'bob', reason: 'custom gateways' }],
      });
      const again = await child('worker-1')
        .executeUpdate(decideCrdUpdate, { args: [{ cluster: 'worker-1', approve: false, by: 'bob' }] })
        .catch((e: WorkflowUpdateFailedError) => e.cause?.message);
      expect(again).toMatch(/worker-1 (was already approved by alice|is not waiting for approval yet)/);

      // Nobody waits now (worker-3 is still upgrading): approve-all is refused with a message.
      await waitForStatus(handle, (s) => s.pendingApprovals.length === 0);
      const none = await approveWaiting(handle, 'carol').catch((e: WorkflowUpdateFailedError) => e.cause?.message);
      expect(none).toBe('no cluster is waiting for approval (phase: workers)');

      releaseW3();
      await waitForStatus(handle, (s) => s.pendingApprovals.includes('worker-3'));
      expect(await approveWaiting(handle, 'carol')).toEqual({
        decided: ['worker-3'],
        notDecided: [],
      });
      const result = await handle.result();
      const byName = Object.fromEntries(result.workers.map((w) => [w.cluster, w]));
      expect(byName['worker-1']).toMatchObject({
        outcome: 'upgraded',
        approval: { approved: true, by: 'alice', reason: 'CRDs reviewed' },
      });
      expect(byName['worker-2']).toMatchObject({
        outcome: 'rejected',
        approval: { approved: false, by: 'bob', reason: 'custom gateways' },
      });
      expect(byName['worker-3']).toMatchObject({ outcome: 'upgraded', approval: { by: 'carol' } });
      // Reject skips the CRD step (and verify) on worker-2 only.
      expect(fake.count('reapplyCrds', 'worker-1')).toBe(1);
      expect(fake.count('reapplyCrds', 'worker-2')).toBe(0);
      expect(fake.count('reapplyCrds', 'worker-3')).toBe(1);
    });
  });

  it('retries a step that fails twice; a non-retryable failure fails only its cluster', async () => {
    const fleet = fleetOf(3);
    const fake = fakeFleetAt(fleet, '0.18.0');
    fake.faults.set('upgradeRelease:worker-1', ['retryable', 'retryable']);
    fake.faults.set('upgradeRelease:worker-2', ['nonRetryable']);
    const tq = queue();
    const worker = await h.worker(tq, fake.activities());
    const result = await worker.runUntil(async () => {
      const handle = await start(requestFor(fleet), tq);
      return resultApprovingAll(handle);
    });
    const attempts = fake.calls
      .filter((c) => c.activity === 'upgradeRelease' && c.cluster === 'worker-1')
      .map((c) => [c.attempt, !!c.failed]);
    expect(attempts).toEqual([
      [1, true],
      [2, true],
      [3, false],
    ]);
    const byName = Object.fromEntries(result.workers.map((w) => [w.cluster, w]));
    expect(byName['worker-1']?.outcome).toBe('upgraded');
    expect(byName['worker-2']?.outcome).toBe('failed');
    expect(byName['worker-2']?.error).toContain('injected nonRetryable failure in upgradeRelease on worker-2');
    expect(fake.calls.filter((c) => c.activity === 'upgradeRelease' && c.cluster === 'worker-2')).toHaveLength(1);
    expect(byName['worker-3']?.outcome).toBe('upgraded');
    expect(result.counts).toMatchObject({ upgraded: 3, failed: 1 });
  });

  it('skips a release already at the target and keeps the plan in the memo for the UI', async () => {
    const fleet = fleetOf(2);
    const fake = fakeFleetAt(fleet, '0.18.0');
    Object.assign(fake.clusters['worker-2'] ?? {}, {
      chartVersion: '0.19.2',
      revision: 4,
      crds: { version: '0.19.2', upgradeId: 'earlier', at: '2026-11-01T00:00:00Z' },
    });
    const tq = queue();
    const worker = await h.worker(tq, fake.activities());
    const { result, memo } = await worker.runUntil(async () => {
      const handle = await start(requestFor(fleet), tq);
      const stop = autoApprove(handle);
      try {
        return { result: await handle.result(), memo: (await handle.describe()).memo };
      } finally {
        await stop();
      }
    });
    expect(result.workers.map((w) => [w.cluster, w.outcome])).toEqual([
      ['worker-1', 'upgraded'],
      ['worker-2', 'already-at-target'],
    ]);
    expect(fake.calls.filter((c) => c.cluster === 'worker-2').map((c) => c.activity)).toEqual(['preflightCluster']);
    const plan = memo?.plan as PlanMemo;
    expect(plan.targetVersion).toBe('0.19.2');
    expect(plan.controlPlane.steps[0]).toBe('runDbMigrationJob');
    expect(plan.workerGroups).toEqual([
      {
        from: '0.18.0',
        steps: expect.arrayContaining(['upgradeRelease', 'awaitCrdApproval', 'reapplyCrds']),
        count: 1,
        clusters: ['worker-1'],
      },
      { from: '0.19.2', skipped: 'already at target', steps: [], count: 1, clusters: ['worker-2'] },
    ]);
  });

  it('runs a cluster with its own taskQueue on the workers of that site only', async () => {
    const fleet = fleetOf(2);
    const site = queue();
    fleet.workers[1] = { ...(fleet.workers[1] as (typeof fleet.workers)[number]), taskQueue: site };
    const central = fakeFleetAt(fleet, '0.18.0');
    const remote = fakeFleetAt(fleet, '0.18.0');
    const tq = queue();
    const [w1, w2] = await Promise.all([h.worker(tq, central.activities()), h.worker(site, remote.activities())]);
    const result = await w2.runUntil(() =>
      w1.runUntil(async () => {
        const handle = await start(requestFor(fleet), tq);
        return resultApprovingAll(handle);
      })
    );
    expect(result.workers.map((w) => w.outcome)).toEqual(['upgraded', 'upgraded']);
    // Every step touching worker-2, its preflight included, ran at its site, none centrally.
    expect(central.calls.filter((c) => c.cluster === 'worker-2')).toEqual([]);
    expect(remote.count('preflightCluster', 'worker-2')).toBe(1);
    expect(remote.count('upgradeRelease', 'worker-2')).toBe(1);
    expect(remote.count('reapplyCrds', 'worker-2')).toBe(1);
    expect(remote.calls.filter((c) => c.cluster === 'worker-1')).toEqual([]);
  });

  it('a failed control plane starts no child', async () => {
    const fleet = fleetOf(2);
    const fake = fakeFleetAt(fleet, '0.18.0');
    fake.faults.set('upgradeRelease:control-plane', ['nonRetryable']);
    const tq = queue();
    const worker = await h.worker(tq, fake.activities());
    await worker.runUntil(async () => {
      const handle = await start(requestFor(fleet), tq);
      const err = await handle.result().catch((e: unknown) => e);
      expect(err).toBeInstanceOf(WorkflowFailedError);
      expect((err as WorkflowFailedError).cause?.message).toMatch(
        /^control plane control-plane failed, no worker cluster was touched: .*injected nonRetryable/
      );
      const history = await handle.fetchHistory();
      expect(history.events?.some((e) => e.startChildWorkflowExecutionInitiatedEventAttributes)).toBe(false);
    });
    expect(fake.calls.filter((c) => c.cluster?.startsWith('worker') && c.activity !== 'preflightCluster')).toEqual([]);
  });

  it('refuses at preflight when the chart version is missing, changing nothing', async () => {
    const fleet = fleetOf(2);
    const fake = fakeFleetAt(fleet, '0.18.0');
    const tq = queue();
    const worker = await h.worker(tq, fake.activities());
    await worker.runUntil(async () => {
      const handle = await start(requestFor(fleet, { targetVersion: '0.19.3' }), tq);
      const err = (await handle.result().catch((e: unknown) => e)) as WorkflowFailedError;
      expect(err.cause?.message).toContain(
        'preflight failed, nothing was changed: chart skoala: chart skoala 0.19.3 is not in repository'
      );
    });
    expect(
      fake.calls.map((c) => c.activity).filter((a) => a !== 'checkChartVersion' && a !== 'preflightCluster')
    ).toEqual([]);
  });

  it('refuses at preflight when an image is missing from its registry, before the DB Job or any upgrade', async () => {
    const fleet = fleetOf(2);
    const at: ReleaseFacts = { installed: true, chartVersion: '0.18.0', revision: 1, status: 'deployed' };
    const clusters = Object.fromEntries([fleet.controlPlane, ...fleet.workers].map((c) => [c.name, { ...at }]));
    const fake = new FakeFleet({ clusters, missingImages: ['harbor.site/skoala/hive:v0.19.2'] });
    const tq = queue();
    const worker = await h.worker(tq, fake.activities());
    await worker.runUntil(async () => {
      const handle = await start(requestFor(fleet), tq);
      const err = (await handle.result().catch((e: unknown) => e)) as WorkflowFailedError;
      expect(err.cause?.message).toContain(
        'preflight failed, nothing was changed: images missing from their registries: harbor.site/skoala/hive:v0.19.2 (not found; needed by '
      );
    });
    // Only reads ran: no DB Job, no backup, no upgrade.
    const ran = new Set(fake.calls.map((c) => c.activity));
    expect([...ran].sort()).toEqual(['checkChartVersion', 'checkImages', 'preflightCluster']);
  });

  it('checkImages: false in the fleet file skips the image check', async () => {
    const fleet = { ...fleetOf(1), checkImages: false };
    const at: ReleaseFacts = { installed: true, chartVersion: '0.18.0', revision: 1, status: 'deployed' };
    const clusters = Object.fromEntries([fleet.controlPlane, ...fleet.workers].map((c) => [c.name, { ...at }]));
    const fake = new FakeFleet({ clusters, missingImages: ['harbor.site/skoala/hive:v0.19.2'] });
    const tq = queue();
    const worker = await h.worker(tq, fake.activities());
    await worker.runUntil(async () => {
      const handle = await start(requestFor(fleet), tq);
      await waitForStatus(handle, (s) => s.pendingApprovals.length === 1);
      await handle.cancel();
    });
    expect(fake.calls.some((c) => c.activity === 'checkImages')).toBe(false);
    expect(fake.calls.some((c) => c.activity === 'upgradeRelease')).toBe(true);
  });

  it('a new worker finishes the upgrade after the first one stopped mid fan-out, repeating no completed step', async () => {
    const fleet = fleetOf(4);
    const fake = fakeFleetAt(fleet, '0.18.0');
    const tq = queue();
    const request = requestFor(fleet, { maxParallel: 2 });
    const first = await h.worker(tq, fake.activities());
    const handle = await first.runUntil(async () => {
      const hd = await start(request, tq);
      // Two children are at their gates, two are not started yet: stop the worker there.
      await waitForStatus(hd, (s) => s.pendingApprovals.length === 2);
      return hd;
    });
    const before = fake.calls.length;
    const second = await h.worker(tq, fake.activities());
    const result = await second.runUntil(async () => {
      return resultApprovingAll(handle);
    });
    expect(before).toBeGreaterThan(0);
    expect(result.workers.every((w) => w.outcome === 'upgraded')).toBe(true);
    for (const name of ['control-plane', ...fleet.workers.map((w) => w.name)]) {
      expect(fake.count('upgradeRelease', name), name).toBe(1);
      expect(fake.count('backupValues', name), name).toBe(1);
      expect(fake.count('verifyRelease', name), name).toBe(1);
    }
    expect(fake.count('runDbMigrationJob')).toBe(1);
  });

  it('continues as new on large fleets and still upgrades every cluster once', async () => {
    const fleet = fleetOf(5);
    const fake = fakeFleetAt(fleet, '0.18.0');
    const tq = queue();
    const request: UpgradeRequest = {
      ...requestFor(fleet, { maxParallel: 2 }),
      tuning: { ...requestFor(fleet).tuning, childrenPerRun: 2 },
    };
    const worker = await h.worker(tq, fake.activities());
    const { result, runs } = await worker.runUntil(async () => {
      const handle = await start(request, tq);
      const stop = autoApprove(handle);
      try {
        const r = await handle.result();
        const executions = [];
        for await (const e of h.env.client.workflow.list({ query: `WorkflowId = '${handle.workflowId}'` }))
          executions.push(e);
        return { result: r, runs: executions.length };
      } finally {
        await stop();
      }
    });
    expect(runs).toBe(4); // preflight alone (a fleet over 2 per run), then 5 workers at 2 per run
    expect(result.workers.map((w) => w.outcome)).toEqual(Array(5).fill('upgraded'));
    for (const w of fleet.workers) expect(fake.count('upgradeRelease', w.name)).toBe(1);
    expect(fake.count('preflightCluster')).toBe(6); // facts are carried over, not read again
  });
});

// Referenced so the child workflow type is part of this test's typed surface.
void upgradeWorkerCluster;
