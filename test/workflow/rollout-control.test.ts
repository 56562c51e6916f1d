/**
 * Steering a rollout, on a real dev server with activity doubles: waves (`--batches`) each finished
 * before the next, the soak between them on a durable timer, pause and resume (updates with
 * validators), and approvals given ahead by label selector. Ordering is read from the recorded
 * activity timestamps.
 */
import type { WorkflowHandle } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Fleet, NotificationEvent, UpgradeRequest } from '../../runbook/types';
import { startWebhookReceiver, type WebhookReceiver } from '../../sandbox/webhook-receiver';
import { upgradeEngine } from '../../workflows';
import { holdUpdate, pauseUpdate, releaseUpdate, resumeUpdate } from '../../workflows/messages';
import { approveAhead } from './approve';
import type { Call } from './fake-activities';
import { refusal, startHarness, waitForStatus, type Harness } from './harness';
import { fakeFleetAt, fleetOf, requestFor } from './request';

let h: Harness;
let hook: WebhookReceiver;
beforeAll(async () => {
  [h, hook] = await Promise.all([startHarness(), startWebhookReceiver()]);
});
afterAll(async () => {
  await Promise.all([h?.close(), hook?.close()]);
});

let n = 0;
const queue = () => `q-rollout-${Date.now()}-${n++}`;
const start = (request: UpgradeRequest, taskQueue: string) =>
  h.env.client.workflow.start(upgradeEngine, { taskQueue, workflowId: `wf-${request.upgradeId}`, args: [{ request }] });

/** Workers labelled site=east (odd) and site=west (even). */
function labelledFleet(workers: number): Fleet {
  const fleet = fleetOf(workers);
  fleet.workers = fleet.workers.map((w, i) => ({ ...w, labels: { site: i % 2 === 0 ? 'east' : 'west' } }));
  return fleet;
}

/** When each cluster's upgradeRelease ran: [start, end]. */
function upgradeTimes(calls: Call[]): Map<string, [number, number]> {
  return new Map(
    calls
      .filter((c) => c.activity === 'upgradeRelease' && !c.failed && c.cluster !== 'control-plane')
      .map((c) => [c.cluster as string, [c.start, c.end ?? Infinity] as [number, number]])
  );
}

const approveAllAhead = (handle: WorkflowHandle) => approveAhead(handle, '', 'alice', 'reviewed the fleet preview');

describe('rollout control', () => {
  it('waves: each finished before the next starts, with the soak between them on a durable timer', async () => {
    const fleet = { ...labelledFleet(5), notify: { url: hook.url } };
    const fake = fakeFleetAt(fleet, '0.18.0', 100);
    const tq = queue();
    const worker = await h.worker(tq, fake.activities());
    const soakMs = 2_000;
    await worker.runUntil(async () => {
      const handle = await start(requestFor(fleet, { batches: [1, 2, 2], soakMs, maxParallel: 5 }), tq);
      await approveAllAhead(handle);
      // The soak shows in status with the time it ends.
      const soaking = await waitForStatus(handle, (s) => s.rollout?.soakingUntil !== undefined, 30_000);
      expect(soaking.rollout).toMatchObject({ wave: 2, waves: 3 });
      expect(Date.parse(soaking.rollout?.soakingUntil as string)).toBeGreaterThan(Date.now());
      const result = (await handle.result()) as { counts: { upgraded: number } };
      expect(result.counts.upgraded).toBe(6);
    });
    // The webhook heard each wave end, in order, then the end of the upgrade.
    const events = hook.received.map((r) => r.body as NotificationEvent).map((e) => [e.event, e.wave, e.waves]);
    expect(events).toEqual([
      ['wave-ended', 1, 3],
      ['wave-ended', 2, 3],
      ['wave-ended', 3, 3],
      ['upgrade-ended', undefined, undefined],
    ]);
    const t = upgradeTimes(fake.calls);
    const waves = [['worker-1'], ['worker-2', 'worker-3'], ['worker-4', 'worker-5']];
    for (let i = 1; i < waves.length; i++) {
      const previousEnd = Math.max(...(waves[i - 1] as string[]).map((c) => (t.get(c) as [number, number])[1]));
      const nextStart = Math.min(...(waves[i] as string[]).map((c) => (t.get(c) as [number, number])[0]));
      // The whole earlier wave (up to its CRD step and verification) ended, then the soak, then the next.
      expect(nextStart - previousEnd).toBeGreaterThanOrEqual(soakMs);
    }
    // Within a wave, its clusters run side by side.
    const [a, b] = ['worker-4', 'worker-5'].map((c) => t.get(c) as [number, number]) as [
      [number, number],
      [number, number],
    ];
    expect(Math.max(a[0], b[0])).toBeLessThan(Math.min(a[1], b[1]));
  });

  it('pause lets the running cluster finish and starts no new one; resume goes on; both refused when they make no sense', async () => {
    const fleet = labelledFleet(3);
    const fake = fakeFleetAt(fleet, '0.18.0', 300);
    const tq = queue();
    const worker = await h.worker(tq, fake.activities());
    await worker.runUntil(async () => {
      const handle = await start(requestFor(fleet, { maxParallel: 1 }), tq);
      await approveAllAhead(handle);
      expect(await refusal(handle.executeUpdate(resumeUpdate, { args: [{ by: 'bob' }] }))).toBe(
        'the rollout is not paused'
      );
      expect(await refusal(handle.executeUpdate(pauseUpdate, { args: [{ by: ' ' }] }))).toBe('say who does it (--by)');
      await waitForStatus(handle, (s) => s.workers.some((w) => w.state === 'running'), 30_000);
      expect(await handle.executeUpdate(pauseUpdate, { args: [{ by: 'bob', reason: 'incident 42' }] })).toMatch(
        /^paused/
      );
      expect(await refusal(handle.executeUpdate(pauseUpdate, { args: [{ by: 'carol' }] }))).toMatch(
        /^already paused by bob at /
      );
      const paused = await waitForStatus(
        handle,
        (s) =>
          s.workers.filter((w) => w.state === 'upgraded').length === 1 && !s.workers.some((w) => w.state === 'running'),
        30_000
      );
      expect(paused.rollout?.paused).toMatchObject({ by: 'bob', reason: 'incident 42' });
      const pausedAt = Date.now();
      await new Promise((r) => setTimeout(r, 1_500));
      // Nothing started while paused.
      expect([...upgradeTimes(fake.calls).values()].filter(([s]) => s > pausedAt)).toEqual([]);
      expect((await handle.query('status')) as unknown).toMatchObject({
        workers: expect.arrayContaining([
          expect.objectContaining({ cluster: 'worker-2', state: 'pending' }),
          expect.objectContaining({ cluster: 'worker-3', state: 'pending' }),
        ]),
      });
      const resumedAt = Date.now();
      expect(await handle.executeUpdate(resumeUpdate, { args: [{ by: 'bob', reason: 'fixed' }] })).toMatch(
        /^resumed \(paused by bob since /
      );
      const result = (await handle.result()) as { counts: { upgraded: number } };
      expect(result.counts.upgraded).toBe(4);
      // The two clusters left started after the resume, one at a time.
      expect([...upgradeTimes(fake.calls).values()].filter(([s]) => s > resumedAt)).toHaveLength(2);
    });
  });

  it('an approval given ahead by selector passes those gates without waiting; the others still wait', async () => {
    const fleet = labelledFleet(4);
    const fake = fakeFleetAt(fleet, '0.18.0');
    const tq = queue();
    const worker = await h.worker(tq, fake.activities());
    await worker.runUntil(async () => {
      const handle = await start(requestFor(fleet, { maxParallel: 4 }), tq);
      expect(await refusal(approveAhead(handle, 'site in (east', 'alice'))).toMatch(/unbalanced "\("/);
      await approveAhead(handle, 'site=east', 'alice');
      const s = await waitForStatus(
        handle,
        (st) => st.workers.filter((w) => w.state === 'upgraded').length === 2 && st.pendingApprovals.length === 2,
        30_000
      );
      expect(s.pendingApprovals.sort()).toEqual(['worker-2', 'worker-4']);
      expect(
        s.workers
          .filter((w) => w.state === 'upgraded')
          .map((w) => w.cluster)
          .sort()
      ).toEqual(['worker-1', 'worker-3']);
      expect(s.rollout?.aheadApprovals).toEqual([
        { selector: 'site=east', by: 'alice', digest: s.rollout?.crdDigest as string },
      ]);
      // An ahead approval for the rest decides those waiting now, too.
      const now = await approveAhead(handle, 'site=west', 'bob');
      expect(now.decided.sort()).toEqual(['worker-2', 'worker-4']);
      const result = (await handle.result()) as { workers: { cluster: string; approval?: { by: string } }[] };
      expect(Object.fromEntries(result.workers.map((w) => [w.cluster, w.approval?.by]))).toEqual({
        'worker-1': 'alice',
        'worker-2': 'bob',
        'worker-3': 'alice',
        'worker-4': 'bob',
      });
    });
  });

  it('hold keeps the clusters a selector matches from starting, with a reason in status; release lets them go', async () => {
    const fleet = labelledFleet(4);
    const fake = fakeFleetAt(fleet, '0.18.0');
    const tq = queue();
    const worker = await h.worker(tq, fake.activities());
    // The control plane waits until the hold is in place: no worker cluster can start before it.
    const letControlPlaneGo = fake.hold('upgradeRelease', 'control-plane');
    let releasedAt = 0;
    await worker.runUntil(async () => {
      const handle = await start(requestFor(fleet, { maxParallel: 4 }), tq);
      expect(
        await refusal(handle.executeUpdate(holdUpdate, { args: [{ selector: 'site in (east', by: 'bob' }] }))
      ).toMatch(/unbalanced/);
      expect(
        await handle.executeUpdate(holdUpdate, {
          args: [{ selector: 'site=east', by: 'bob', reason: 'east DC maintenance' }],
        })
      ).toBe('held site=east: 2 cluster(s) not started yet will wait (worker-1, worker-3)');
      expect(
        await refusal(handle.executeUpdate(holdUpdate, { args: [{ selector: 'site=east', by: 'carol' }] }))
      ).toMatch(/^site=east is already held by bob since /);
      letControlPlaneGo();
      await approveAllAhead(handle);
      const held = await waitForStatus(
        handle,
        (s) => s.workers.filter((w) => w.state === 'upgraded').length === 2,
        30_000
      );
      const byName = Object.fromEntries(held.workers.map((w) => [w.cluster, w]));
      expect([byName['worker-1']?.state, byName['worker-3']?.state]).toEqual(['pending', 'pending']);
      expect(byName['worker-1']?.waitingFor).toBe('held by bob (site=east): east DC maintenance');
      expect(held.rollout?.holds).toMatchObject([{ selector: 'site=east', by: 'bob', reason: 'east DC maintenance' }]);
      expect(fake.count('upgradeRelease', 'worker-1') + fake.count('upgradeRelease', 'worker-3')).toBe(0);

      expect(await refusal(handle.executeUpdate(releaseUpdate, { args: [{ selector: 'site=west', by: 'bob' }] }))).toBe(
        'no hold with selector "site=west"; holds: "site=east"'
      );
      releasedAt = Date.now();
      expect(await handle.executeUpdate(releaseUpdate, { args: [{ selector: 'site=east', by: 'bob' }] })).toBe(
        'released site=east (held by bob)'
      );
      const result = (await handle.result()) as { counts: { upgraded: number } };
      expect(result.counts.upgraded).toBe(5);
    });
    const t = upgradeTimes(fake.calls);
    for (const c of ['worker-1', 'worker-3']) expect(t.get(c)?.[0]).toBeGreaterThanOrEqual(releasedAt);
    for (const c of ['worker-2', 'worker-4']) expect(t.get(c)?.[1]).toBeLessThan(releasedAt);
  });
});
