/**
 * The first run asks its patches before the rules' local activity (patch `patches-before-rules`).
 * Asked right after it, a patch is not seen on replay when the local activity ended as its
 * workflow task was heartbeated: its marker then sits in one task and the patch in the next. That
 * happened on a loaded machine (a worker replaying after a Temporal restart failed with
 * "Non-deprecated patch marker encountered for change image-check-at-preflight"). Here: the markers
 * of a new upgrade come before the local activity's, and its history replays.
 */
import { Worker } from '@temporalio/worker';
import type { temporal } from '@temporalio/proto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Fleet } from '../../runbook/types';
import { upgradeEngine } from '../../workflows';
import { approveAhead } from './approve';
import { startHarness, type Harness } from './harness';
import { fakeFleetAt, fleetOf, requestFor } from './request';

let h: Harness;
beforeAll(async () => {
  h = await startHarness();
});
afterAll(async () => {
  await h?.close();
});

/** The markers of a history in order: `patch:<id>` or `local:<activity type>`. */
function markers(history: temporal.api.history.v1.IHistory): string[] {
  const text = (p: temporal.api.common.v1.IPayload | undefined) => Buffer.from(p?.data ?? []).toString();
  return (history.events ?? []).flatMap((e) => {
    const m = e.markerRecordedEventAttributes;
    if (!m) return [];
    if (m.markerName === 'core_patch')
      return [`patch:${(JSON.parse(text(m.details?.['patch-data']?.payloads?.[0])) as { id: string }).id}`];
    const data = JSON.parse(text(m.details?.data?.payloads?.[0])) as { activity_type?: string };
    return [`local:${data.activity_type ?? '?'}`];
  });
}

async function upgrade(
  fleet: Fleet,
  childrenPerRun?: number
): Promise<{ history: temporal.api.history.v1.IHistory; workflowId: string }> {
  const tq = `patch-order-${Math.random().toString(36).slice(2, 8)}`;
  const fake = fakeFleetAt(fleet, '0.18.0');
  const base = requestFor(fleet);
  const request = childrenPerRun ? { ...base, tuning: { ...base.tuning, childrenPerRun } } : base;
  const worker = await h.worker(tq, fake.activities());
  return worker.runUntil(async () => {
    const handle = await h.env.client.workflow.start(upgradeEngine, {
      taskQueue: tq,
      workflowId: `patch-order-${request.upgradeId}`,
      args: [{ request }],
    });
    await approveAhead(handle, '', 'alice');
    await handle.result();
    // The first run: the one that asked the patches.
    const first = h.env.client.workflow.getHandle(handle.workflowId, handle.firstExecutionRunId);
    return { history: await first.fetchHistory(), workflowId: handle.workflowId };
  });
}

describe("patches asked before the rules' local activity", () => {
  it('image-check-at-preflight: its marker comes before decideRules, and the history replays', async () => {
    const { history, workflowId } = await upgrade(fleetOf(1));
    const order = markers(history);
    expect(order.indexOf('patch:image-check-at-preflight')).toBeGreaterThan(-1);
    expect(order.indexOf('patch:patches-before-rules')).toBeLessThan(order.indexOf('local:decideRules'));
    expect(order.indexOf('patch:image-check-at-preflight')).toBeLessThan(order.indexOf('local:decideRules'));
    await Worker.runReplayHistory({ workflowBundle: h.bundle }, history, workflowId);
  });

  it('continue-after-preflight without the image check: before decideRules too, and the history replays', async () => {
    const { history, workflowId } = await upgrade({ ...fleetOf(3), checkImages: false }, 2);
    const order = markers(history);
    expect(order).not.toContain('patch:image-check-at-preflight');
    expect(order.indexOf('patch:continue-after-preflight')).toBeGreaterThan(-1);
    expect(order.indexOf('patch:continue-after-preflight')).toBeLessThan(order.indexOf('local:decideRules'));
    await Worker.runReplayHistory({ workflowBundle: h.bundle }, history, workflowId);
  });
});
