/**
 * The CRD gate under the fleet's rules, on a real dev server with activity doubles: approvals bound
 * to the digest of what was shown (refused, with the new preview, once the cluster changed), the
 * approver policy (allowed approvers, not the starter, N distinct), the deadline's outcome, and the
 * webhook told of it all (a real loopback receiver, the real notify activity).
 */
import type { WorkflowHandle } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CrdChange } from '../../activities/crd-preview';
import { shortDigest } from '../../runbook/digest';
import type { Fleet, NotificationEvent, UpgradeRequest, UpgradeResult } from '../../runbook/types';
import { startWebhookReceiver, type WebhookReceiver } from '../../sandbox/webhook-receiver';
import { upgradeEngine } from '../../workflows';
import { approveAheadUpdate, decideAllUpdate, decideCrdUpdate, gateQuery } from '../../workflows/messages';
import { approveGate, approveAhead } from './approve';
import { decodedHistoriesText } from '../helpers/history-text';
import { refusal, startHarness, waitForStatus, type Harness } from './harness';
import type { FakeFleet } from './fake-activities';
import { fakeFleetAt, fleetOf, requestFor } from './request';

let h: Harness;
let hook: WebhookReceiver;
const TOKEN_ENV = 'SKOALA_TEST_HOOK_TOKEN';
const TOKEN = 'hook-token-7f3a9c';
beforeAll(async () => {
  process.env[TOKEN_ENV] = TOKEN; // read by the notify activity on this worker
  [h, hook] = await Promise.all([startHarness(), startWebhookReceiver()]);
});
afterAll(async () => {
  await Promise.all([h?.close(), hook?.close()]);
});

let n = 0;
const queue = () => `q-gates-${Date.now()}-${n++}`;
const start = (request: UpgradeRequest, taskQueue: string) =>
  h.env.client.workflow.start(upgradeEngine, { taskQueue, workflowId: `wf-${request.upgradeId}`, args: [{ request }] });
const child = (handle: WorkflowHandle, cluster: string) =>
  h.env.client.workflow.getHandle(`${handle.workflowId}/${cluster}`);

/** An upgrade of `fleet` from 0.18.0 to 0.19.2 on a fresh worker: `body` runs while the worker does. */
async function upgrading(
  fleet: Fleet,
  options: Partial<UpgradeRequest['options']>,
  body: (handle: WorkflowHandle, fake: FakeFleet) => Promise<void>
): Promise<void> {
  const fake = fakeFleetAt(fleet, '0.18.0');
  const tq = queue();
  const worker = await h.worker(tq, fake.activities());
  await worker.runUntil(async () => body(await start(requestFor(fleet, options), tq), fake));
}

const decide = (handle: WorkflowHandle, cluster: string, by: string, digest?: string) =>
  child(handle, cluster).executeUpdate(decideCrdUpdate, {
    args: [{ cluster, approve: true, by, ...(digest ? { digest } : {}) }],
  });

/** Events the receiver got for one upgrade. */
const eventsOf = (upgradeId: string) =>
  hook.received.map((r) => r.body as NotificationEvent).filter((e) => e.upgradeId === upgradeId);

describe('approvals bound to what was seen', () => {
  it('an approval names the digest shown; once the cluster changed it is refused with the new preview', async () => {
    const fleet = fleetOf(1);
    await upgrading(fleet, {}, async (handle, fake) => {
      const s = await waitForStatus(handle, (x) => x.pendingApprovals.includes('worker-1'));
      const shown = (await child(handle, 'worker-1').query(gateQuery)).gate?.digest as string;
      expect(shown).toMatch(/^sha256:[0-9a-f]{64}$/);
      expect(s.workers[0]?.gate?.digest).toBe(shown);

      expect(await refusal(decide(handle, 'worker-1', 'alice'))).toBe(
        `an approval must name the digest of what it approves: ${shown} (CRD preview: 0 CRD(s): 0 to change, 0 to create, 0 unchanged; 0 custom resource(s) of these kinds exist.)`
      );
      expect(await refusal(decide(handle, 'worker-1', 'alice', 'sha256:0123456789ab'))).toBe(
        `the CRD change of worker-1 is ${shortDigest(shown)}, not 0123456789ab: CRD preview: 0 CRD(s): 0 to change, 0 to create, 0 unchanged; 0 custom resource(s) of these kinds exist.`
      );

      // Someone edits a CRD on the cluster after the preview was shown: the approval of the old
      // preview is refused, and the answer carries the new one.
      const edited: CrdChange = {
        cluster: 'worker-1',
        crd: 'gateways.gateway.networking.k8s.io',
        action: 'change',
        customResources: 3,
        conflicts: [{ manager: 'kubectl-edit', fields: ['.spec.versions'] }],
      };
      fake.crdChanges.set('worker-1', [edited]);
      const changed = await refusal(decide(handle, 'worker-1', 'alice', shortDigest(shown)));
      const now = (await child(handle, 'worker-1').query(gateQuery)).gate?.digest as string;
      expect(now).not.toBe(shown);
      expect(changed).toBe(
        `the CRD change of worker-1 changed since it was shown: now ${shortDigest(now)}: CRD preview: 1 CRD(s): 1 to change, 0 to create, 0 unchanged; 3 custom resource(s) of these kinds exist. 1 with fields owned by kubectl-edit, taken over on apply: gateways.gateway.networking.k8s.io.`
      );
      expect(fake.count('reapplyCrds', 'worker-1')).toBe(0);
      // status shows the new digest too: that is what `approve` reads.
      await waitForStatus(handle, (x) => x.workers[0]?.gate?.digest === now);

      expect(await decide(handle, 'worker-1', 'alice', now)).toBe(
        `worker-1: CRD step approved by alice (${shortDigest(now)})`
      );
      const result = (await handle.result()) as UpgradeResult;
      expect(result.workers[0]).toMatchObject({ outcome: 'upgraded', approval: { by: 'alice', digest: now } });
      // The CRD step ran after the approval, never before.
      const approvedAt = Date.parse(result.workers[0]?.approval?.at as string);
      const crd = fake.calls.find((c) => c.activity === 'reapplyCrds');
      expect(crd?.start).toBeGreaterThanOrEqual(approvedAt);
    });
  });

  it('a cluster that cannot be read at the re-check shows no change: the approval stands', async () => {
    const fleet = fleetOf(1);
    await upgrading(fleet, {}, async (handle, fake) => {
      await waitForStatus(handle, (x) => x.pendingApprovals.includes('worker-1'));
      const shown = (await child(handle, 'worker-1').query(gateQuery)).gate?.digest as string;
      // The API server is gone when the approval comes: both attempts of the fresh preview fail.
      fake.faults.set('previewCrdChanges:worker-1', ['nonRetryable']);
      expect(await decide(handle, 'worker-1', 'alice', shown)).toBe(
        `worker-1: CRD step approved by alice (${shortDigest(shown)})`
      );
      expect((await handle.result()).workers[0]).toMatchObject({ outcome: 'upgraded', approval: { digest: shown } });
      expect(fake.calls.filter((c) => c.activity === 'previewCrdChanges' && c.failed).length).toBe(1);
    });
  });

  it('approvals given ahead name the fleet CRD change; another digest is refused with the change', async () => {
    const fleet = fleetOf(2);
    await upgrading(fleet, { maxParallel: 1 }, async (handle, fake) => {
      // One at a time: worker-1 waits at its gate, worker-2 has not started when the approval is given ahead.
      const s = await waitForStatus(handle, (x) => x.pendingApprovals.includes('worker-1'));
      const fleetDigest = s.rollout?.crdDigest as string;
      const gateDigest = s.workers[0]?.gate?.digest as string;
      expect(gateDigest).not.toBe(fleetDigest); // the gate binds its own preview, the fleet the planned step
      const change = 're-apply CRDs of skoala-init 0.19.2 (2 chart file(s)) on 2 worker cluster(s)';
      expect(s.rollout?.crdChange).toBe(change);
      const ahead = (digest?: string) =>
        handle.executeUpdate(approveAheadUpdate, {
          args: [{ selector: '', by: 'alice', ...(digest ? { digest } : {}) }],
        });
      expect(await refusal(ahead())).toBe(
        `an approval given ahead must name the fleet's CRD change digest: ${fleetDigest} (${change})`
      );
      expect(await refusal(ahead('sha256:ffffffffffff'))).toBe(
        `the fleet's CRD change is ${shortDigest(fleetDigest)}, not ffffffffffff: ${change}`
      );
      expect((await ahead(shortDigest(fleetDigest))).decided).toEqual(['worker-1']);
      const result = (await handle.result()) as UpgradeResult;
      // worker-1's waiting gate took the approval with its own digest; worker-2 started approved and never waited.
      expect(result.workers.map((w) => [w.outcome, w.approval?.by, w.approval?.digest])).toEqual([
        ['upgraded', 'alice', gateDigest],
        ['upgraded', 'alice', fleetDigest],
      ]);
      expect(fake.count('previewCrdChanges', 'worker-2')).toBe(0);
    });
  });
});

describe('approver policy', () => {
  it('allowed approvers only, never the starter, two distinct approvers for tier=prod', async () => {
    const fleet: Fleet = {
      ...fleetOf(2),
      approvals: {
        approvers: ['alice', 'bob', 'carol'],
        notStarter: true,
        rules: [{ select: 'tier=prod', distinct: 2 }],
      },
    };
    fleet.workers = fleet.workers.map((w, i) => ({ ...w, labels: { tier: i === 0 ? 'prod' : 'dev' } }));
    await upgrading(fleet, { startedBy: 'alice' }, async (handle) => {
      await waitForStatus(handle, (x) => x.pendingApprovals.length === 2);
      const gate = (c: string) => child(handle, c).query(gateQuery);
      const digest = async (c: string) => (await gate(c)).gate?.digest as string;

      expect(await refusal(decide(handle, 'worker-2', 'mallory', await digest('worker-2')))).toBe(
        'mallory is not an allowed approver (the fleet file allows: alice, bob, carol)'
      );
      expect(await refusal(decide(handle, 'worker-2', 'Alice', await digest('worker-2')))).toBe(
        "Alice started this upgrade and may not approve it (the fleet file's approvals.notStarter)"
      );
      expect(
        await refusal(handle.executeUpdate(decideAllUpdate, { args: [{ approve: true, by: 'alice', digests: {} }] }))
      ).toBe("alice started this upgrade and may not approve it (the fleet file's approvals.notStarter)");
      expect(await refusal(approveAhead(handle, '', 'alice'))).toBe(
        "alice started this upgrade and may not approve it (the fleet file's approvals.notStarter)"
      );

      // tier=prod needs two distinct people.
      expect(await decide(handle, 'worker-1', 'bob', await digest('worker-1'))).toBe(
        'worker-1: approval 1 of 2 recorded (bob); waiting for 1 more distinct approver(s)'
      );
      const one = await waitForStatus(handle, (x) => (x.workers[0]?.gate?.approvedBy ?? []).length === 1);
      expect(one.workers[0]?.gate).toMatchObject({ needs: 2, approvedBy: ['bob'] });
      expect(await refusal(decide(handle, 'worker-1', 'BOB', await digest('worker-1')))).toBe(
        'BOB has already approved cluster worker-1: it needs 2 distinct approvers'
      );
      expect(await decide(handle, 'worker-1', 'carol', await digest('worker-1'))).toMatch(
        /^worker-1: CRD step approved by bob, carol \([0-9a-f]{12}\)$/
      );
      // tier=dev: one is enough.
      await approveGate(child(handle, 'worker-2'), 'worker-2', 'bob');
      const result = (await handle.result()) as UpgradeResult;
      expect(result.workers[0]?.approval).toMatchObject({
        approved: true,
        by: 'bob, carol',
        approvers: ['bob', 'carol'],
      });
      expect(result.workers[1]?.approval).toMatchObject({ approved: true, by: 'bob' });
      expect(result.workers[1]?.approval?.approvers).toBeUndefined();
    });
  });

  it('a change of the CRD preview voids the approvals already given for the old one', async () => {
    const fleet: Fleet = { ...fleetOf(1), approvals: { rules: [{ select: '', distinct: 2 }] } };
    await upgrading(fleet, {}, async (handle, fake) => {
      await waitForStatus(handle, (x) => x.pendingApprovals.includes('worker-1'));
      const old = (await child(handle, 'worker-1').query(gateQuery)).gate?.digest as string;
      await decide(handle, 'worker-1', 'bob', old);
      fake.crdChanges.set('worker-1', [
        {
          cluster: 'worker-1',
          crd: 'httproutes.gateway.networking.k8s.io',
          action: 'create',
          customResources: 0,
          conflicts: [],
        },
      ]);
      expect(await refusal(decide(handle, 'worker-1', 'carol', old))).toMatch(/changed since it was shown/);
      const gate = (await child(handle, 'worker-1').query(gateQuery)).gate;
      expect(gate).toMatchObject({ needs: 2, approvedBy: [] });
      // bob approved the old change: his approval does not count for the new one.
      expect(await decide(handle, 'worker-1', 'carol', gate?.digest)).toMatch(/approval 1 of 2 recorded \(carol\)/);
      await decide(handle, 'worker-1', 'bob', gate?.digest);
      const result = (await handle.result()) as UpgradeResult;
      expect(result.workers[0]?.approval).toMatchObject({ approvers: ['carol', 'bob'], digest: gate?.digest });
    });
  });

  it('two approvals given ahead at the same moment both reach a waiting gate', async () => {
    const fleet: Fleet = { ...fleetOf(1), approvals: { rules: [{ select: '', distinct: 2 }] } };
    await upgrading(fleet, {}, async (handle) => {
      await waitForStatus(handle, (x) => x.pendingApprovals.includes('worker-1'));
      // Each is re-checked against a fresh preview; the second queues behind the first.
      await Promise.all([approveAhead(handle, '', 'bob'), approveAhead(handle, '', 'carol')]);
      const result = (await handle.result()) as UpgradeResult;
      expect([...(result.workers[0]?.approval?.approvers ?? [])].sort()).toEqual(['bob', 'carol']);
    });
  });

  it('approvals given ahead add up to the distinct approvers a cluster needs', async () => {
    const fleet: Fleet = { ...fleetOf(1), approvals: { rules: [{ select: '', distinct: 2 }] } };
    await upgrading(fleet, {}, async (handle) => {
      await approveAhead(handle, '', 'bob');
      // One ahead approval of two: the gate opens and counts it.
      const s = await waitForStatus(handle, (x) => (x.workers[0]?.gate?.approvedBy ?? []).length === 1);
      expect(s.workers[0]?.gate).toMatchObject({ needs: 2, approvedBy: ['bob'] });
      await approveAhead(handle, '', 'carol');
      const result = (await handle.result()) as UpgradeResult;
      expect(result.workers[0]?.approval?.approvers).toEqual(['bob', 'carol']);
    });
  });
});

describe('gate deadline and the webhook', () => {
  it('reject: nobody decided in time; reminders and the deadline reach the webhook with its header', async () => {
    const fleet: Fleet = {
      ...fleetOf(1),
      approvals: { deadlineMs: 3_000, onDeadline: 'reject', remindEveryMs: 1_000 },
      notify: { url: hook.url, header: { name: 'Authorization', env: TOKEN_ENV } },
    };
    const fake = fakeFleetAt(fleet, '0.18.0');
    const tq = queue();
    const worker = await h.worker(tq, fake.activities());
    const request = requestFor(fleet);
    let historyText = '';
    await worker.runUntil(async () => {
      const handle = await start(request, tq);
      const result = (await handle.result()) as UpgradeResult;
      historyText = await decodedHistoriesText(h.env.client, handle.workflowId, [`${handle.workflowId}/worker-1`]);
      expect(result.workers[0]).toMatchObject({
        outcome: 'rejected',
        approval: {
          approved: false,
          by: 'deadline',
          reason: 'no decision on the CRD re-apply of worker-1 within 3s (approvals.onDeadline: reject)',
        },
      });
      expect(fake.count('reapplyCrds')).toBe(0);
      // The UI names each timer of the gate by what it waits for, not `1 (1s)`.
      const child = await h.env.client.workflow.getHandle(`${handle.workflowId}/worker-1`).fetchHistory();
      const summaries = (child.events ?? [])
        .filter((e) => e.timerStartedEventAttributes)
        .map((e) => {
          const data = e.userMetadata?.summary?.data;
          return data ? (JSON.parse(Buffer.from(data).toString('utf8')) as string) : '';
        });
      expect(summaries).toContain('approval deadline of worker-1: reject after 3s');
      expect(summaries).toContain('worker-1 waits for CRD approval; reminder every 1s');
    });
    await hook.waitFor(() => eventsOf(request.upgradeId).some((e) => e.event === 'upgrade-ended'));
    const events = eventsOf(request.upgradeId);
    const kinds = events.map((e) => e.event);
    expect(kinds[0]).toBe('gate-opened');
    expect(kinds.filter((k) => k === 'gate-reminder').length).toBeGreaterThanOrEqual(2);
    expect(kinds.slice(-2)).toEqual(['gate-deadline', 'upgrade-ended']);
    expect(events[0]).toMatchObject({
      upgradeId: request.upgradeId,
      fleet: 'test',
      version: '0.19.2',
      cluster: 'worker-1',
      digest: expect.stringMatching(/^sha256:/),
    });
    expect(events.at(-1)).toMatchObject({ phase: 'done', counts: { rejected: 1, upgraded: 1 } });
    // The header's value came from the worker's environment; the history holds only its name.
    const mine = hook.received.filter((r) => (r.body as NotificationEvent).upgradeId === request.upgradeId);
    expect(mine.every((r) => r.headers.authorization === TOKEN)).toBe(true);
    // Decoded payloads: the variable's name is there (the search works), its value never is.
    expect(historyText).toContain(TOKEN_ENV);
    expect(historyText).toContain('gate-reminder');
    expect(historyText).not.toContain(TOKEN);
  });

  it('fail: an approval being checked when the deadline fires decides; what the approver is told is what happens', async () => {
    const fleet: Fleet = { ...fleetOf(1), approvals: { deadlineMs: 3_000, onDeadline: 'fail', remindEveryMs: 60_000 } };
    await upgrading(fleet, {}, async (handle, fake) => {
      await waitForStatus(handle, (s) => s.pendingApprovals.includes('worker-1'), 30_000);
      const digest = (await child(handle, 'worker-1').query(gateQuery)).gate?.digest;
      // The approval's re-check of the preview is held until the deadline has passed.
      const release = fake.hold('previewCrdChanges', 'worker-1');
      const answer = decide(handle, 'worker-1', 'alice', digest).catch((e: unknown) => `refused: ${String(e)}`);
      await new Promise((r) => setTimeout(r, 4_000));
      release();
      const told = await answer;
      const result = (await handle.result()) as UpgradeResult;
      expect(told).toMatch(/^worker-1: CRD step approved by alice/);
      expect(result.workers[0]?.outcome).toBe('upgraded');
    });
  });

  it.each([
    ['stop', 'failed', 'cluster-failed'],
    ['rollback', 'rolled-back', 'cluster-rolled-back'],
  ] as const)(
    'fail (--on-failure %s): the cluster ends %s at its deadline, and the webhook hears %s',
    async (onFailure, outcome, event) => {
      const fleet: Fleet = {
        ...fleetOf(1),
        approvals: { deadlineMs: 1_000, onDeadline: 'fail', remindEveryMs: 60_000 },
        notify: { url: hook.url },
      };
      const fake = fakeFleetAt(fleet, '0.18.0');
      const tq = queue();
      const worker = await h.worker(tq, fake.activities());
      const request = requestFor(fleet, { onFailure });
      await worker.runUntil(async () => {
        const result = (await (await start(request, tq)).result()) as UpgradeResult;
        expect(result.workers[0]?.outcome).toBe(outcome);
        expect(result.workers[0]?.error).toMatch(
          /no decision on the CRD re-apply of worker-1 within 1s \(approvals\.onDeadline: fail\)/
        );
      });
      await hook.waitFor(() => eventsOf(request.upgradeId).some((e) => e.event === 'upgrade-ended'));
      expect(eventsOf(request.upgradeId).map((e) => e.event)).toEqual([
        'gate-opened',
        'gate-deadline',
        event,
        'upgrade-ended',
      ]);
      expect(eventsOf(request.upgradeId).find((e) => e.event === event)?.message).toMatch(
        /^worker-1 (failed|was rolled back): /
      );
    }
  );
});
