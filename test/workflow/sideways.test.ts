/**
 * When things go sideways, on a real Temporal dev server (activity doubles record every step):
 * cancel during the control plane and at the gates, approve-all with a closed child and with
 * lagging status, and a rerun that finishes a rejected CRD step.
 */
import { WorkflowFailedError, WorkflowUpdateFailedError, type WorkflowHandle } from '@temporalio/client';
import { CancelledFailure } from '@temporalio/common';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { upgradeEngine } from '../../workflows';
import { decideCrdUpdate, statusQuery } from '../../workflows/messages';
import { approveGate, approveWaiting } from './approve';
import type { UpgradeRequest } from '../../runbook/types';
import { startHarness, waitForStatus, type Harness } from './harness';
import { fakeFleetAt, fleetOf, requestFor } from './request';

let h: Harness;
beforeAll(async () => {
  h = await startHarness();
});
afterAll(async () => {
  await h?.close();
});

let n = 0;
const queue = () => `side-${Date.now()}-${n++}`;
const start = (request: UpgradeRequest, taskQueue: string, workflowId = `wf-${request.upgradeId}`) =>
  h.env.client.workflow.start(upgradeEngine, { taskQueue, workflowId, args: [{ request }] });
const child = (handle: WorkflowHandle, cluster: string) =>
  h.env.client.workflow.getHandle(`${handle.workflowId}/${cluster}`);

async function endsCancelled(handle: WorkflowHandle): Promise<void> {
  const err = await handle.result().catch((e: unknown) => e);
  expect(err).toBeInstanceOf(WorkflowFailedError);
  expect((err as WorkflowFailedError).cause).toBeInstanceOf(CancelledFailure);
  expect((await handle.describe()).status.name).toBe('CANCELLED');
}

describe('cancel', () => {
  it('during the control plane: the running helm upgrade finishes, nothing else starts, ends CANCELLED', async () => {
    const fleet = fleetOf(2);
    const fake = fakeFleetAt(fleet, '0.18.0');
    const releaseCp = fake.hold('upgradeRelease', 'control-plane');
    const tq = queue();
    const worker = await h.worker(tq, fake.activities());
    await worker.runUntil(async () => {
      const handle = await start(requestFor(fleet), tq);
      await waitForStatus(handle, (s) => s.controlPlane.step === 'upgradeRelease');
      await handle.cancel();
      await new Promise((r) => setTimeout(r, 500)); // the cancel is in; helm is still running
      releaseCp();
      await endsCancelled(handle);
      // A closed workflow still answers its status: every cluster in a named state.
      const s = await handle.query(statusQuery);
      expect(s.phase).toBe('cancelled');
      expect(s.controlPlane).toMatchObject({ state: 'cancelled', error: 'cancelled (last step: upgradeRelease)' });
      expect(s.workers.map((w) => [w.cluster, w.state, w.error])).toEqual([
        ['worker-1', 'cancelled', 'not started: the upgrade was cancelled'],
        ['worker-2', 'cancelled', 'not started: the upgrade was cancelled'],
      ]);
    });
    // The helm upgrade ran to its end (not killed), and no later step ran.
    expect(fake.calls.filter((c) => c.activity === 'upgradeRelease').map((c) => [c.cluster, !!c.failed])).toEqual([
      ['control-plane', false],
    ]);
    expect(fake.count('verifyRelease')).toBe(0);
    expect(fake.calls.filter((c) => c.cluster?.startsWith('worker') && c.activity !== 'preflightCluster')).toEqual([]);
  });

  it('while children wait at the gate and one is mid-upgrade: that one finishes helm, all end cancelled', async () => {
    const fleet = fleetOf(2);
    const fake = fakeFleetAt(fleet, '0.18.0');
    const releaseW2 = fake.hold('upgradeRelease', 'worker-2');
    const tq = queue();
    const worker = await h.worker(tq, fake.activities());
    await worker.runUntil(async () => {
      const handle = await start(requestFor(fleet), tq);
      await waitForStatus(handle, (s) => s.pendingApprovals.includes('worker-1'));
      await handle.cancel();
      await new Promise((r) => setTimeout(r, 500));
      releaseW2();
      await endsCancelled(handle);
      for (const name of ['worker-1', 'worker-2'])
        expect((await child(handle, name).describe()).status.name, name).toBe('CANCELLED');
      const s = await handle.query(statusQuery);
      expect(s.controlPlane.state).toBe('upgraded');
      expect(s.workers.map((w) => [w.cluster, w.state])).toEqual([
        ['worker-1', 'cancelled'],
        ['worker-2', 'cancelled'],
      ]);
    });
    const w2 = fake.calls.filter((c) => c.activity === 'upgradeRelease' && c.cluster === 'worker-2');
    expect(w2.map((c) => [c.attempt, c.failed ?? false])).toEqual([[1, false]]); // ran to its end, once
    expect(fake.count('reapplyCrds')).toBe(0);
  });
});

describe('approve-all', () => {
  it('a waiting child terminated in between never fails the parent; the others go on', async () => {
    const fleet = fleetOf(3);
    const fake = fakeFleetAt(fleet, '0.18.0');
    const tq = queue();
    const worker = await h.worker(tq, fake.activities());
    await worker.runUntil(async () => {
      const handle = await start(requestFor(fleet, { maxParallel: 3 }), tq);
      await waitForStatus(handle, (s) => s.pendingApprovals.length === 3);
      await child(handle, 'worker-2').terminate('an operator stopped this cluster');
      const answer = await approveWaiting(handle, 'alice');
      // worker-2 is either already known closed (not asked) or answers "closed": never decided.
      expect(answer.decided.sort()).toEqual(['worker-1', 'worker-3']);
      expect(answer.notDecided.every((n) => n.cluster === 'worker-2')).toBe(true);
      const result = await handle.result();
      expect(result.workers.map((w) => [w.cluster, w.outcome])).toEqual([
        ['worker-1', 'upgraded'],
        ['worker-2', 'failed'],
        ['worker-3', 'upgraded'],
      ]);
    });
  });

  it('answers only the clusters it decided, even when the parent has not yet heard of an approval', async () => {
    const fleet = fleetOf(2);
    const fake = fakeFleetAt(fleet, '0.18.0');
    const tq = queue();
    const worker = await h.worker(tq, fake.activities());
    await worker.runUntil(async () => {
      const handle = await start(requestFor(fleet), tq);
      await waitForStatus(handle, (s) => s.pendingApprovals.length === 2);
      // Approve worker-1 on its own gate and ask the parent at once, before worker-1's news can reach it.
      // (When bob's reaches worker-1 first, alice's is refused naming bob's decision: one outcome each.)
      const [alice, answer] = await Promise.all([
        approveGate(child(handle, 'worker-1'), 'worker-1', 'alice').catch((e: unknown) =>
          e instanceof WorkflowUpdateFailedError ? `refused: ${e.cause?.message}` : Promise.reject(e)
        ),
        approveWaiting(handle, 'bob'),
      ]);
      const result = await handle.result();
      const by = Object.fromEntries(result.workers.map((w) => [w.cluster, w.approval?.by]));
      // Whatever the order the two calls landed in, bob's answer names exactly the gates bob decided.
      expect(answer.decided.sort()).toEqual(Object.keys(by).filter((c) => by[c] === 'bob'));
      expect(by['worker-2']).toBe('bob');
      expect(alice).toMatch(
        by['worker-1'] === 'alice' ? /^worker-1: CRD step approved by alice/ : /^refused: .*approved by bob/
      );
      for (const n of answer.notDecided)
        expect(n).toEqual({ cluster: 'worker-1', reason: expect.stringMatching(/worker-1/) });
    });
  });
});

describe('reruns', () => {
  it('a rerun after a reject plans only the gate and the CRD re-apply for that cluster', async () => {
    const fleet = fleetOf(2);
    const fake = fakeFleetAt(fleet, '0.18.0');
    const tq = queue();
    const worker = await h.worker(tq, fake.activities());
    await worker.runUntil(async () => {
      const first = await start(requestFor(fleet), tq, 'rerun-fleet');
      await waitForStatus(first, (s) => s.pendingApprovals.length === 2);
      await approveGate(child(first, 'worker-1'), 'worker-1', 'alice');
      await child(first, 'worker-2').executeUpdate(decideCrdUpdate, {
        args: [{ cluster: 'worker-2', approve: false, by: 'alice', reason: 'gateways to check first' }],
      });
      expect((await first.result()).workers.map((w) => w.outcome)).toEqual(['upgraded', 'rejected']);

      // Same workflow ID (one per fleet): the finished upgrade does not block the rerun.
      const again = await start(requestFor(fleet), tq, 'rerun-fleet');
      await waitForStatus(again, (s) => s.pendingApprovals.length === 1);
      expect((await again.query(statusQuery)).pendingApprovals).toEqual(['worker-2']);
      await approveGate(child(again, 'worker-2'), 'worker-2', 'alice');
      const result = await again.result();
      expect(result.controlPlane.outcome).toBe('already-at-target');
      expect(result.workers.map((w) => [w.cluster, w.outcome])).toEqual([
        ['worker-1', 'already-at-target'],
        ['worker-2', 'upgraded'],
      ]);
    });
    // Nothing was upgraded twice; worker-2's CRDs were re-applied once, by the rerun.
    for (const name of ['control-plane', 'worker-1', 'worker-2']) expect(fake.count('upgradeRelease', name)).toBe(1);
    expect(fake.count('reapplyCrds', 'worker-1')).toBe(1);
    expect(fake.count('reapplyCrds', 'worker-2')).toBe(1);
    expect(fake.clusters['worker-2']?.crds?.version).toBe('0.19.2');
  });
});
