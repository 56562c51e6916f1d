/**
 * 1,000 worker clusters for real orchestration (a dev server, activity doubles): waves, approvals
 * given ahead by selector before the first gate, so no person approves round after round; each
 * parent run's history stays under 4,096 events. Prints its figures.
 */
import { DefaultLogger, Runtime } from '@temporalio/worker';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { UpgradeResult } from '../../runbook/types';
import { upgradeEngine } from '../../workflows';

import { approveAhead } from './approve';
import { startHarness, type Harness } from './harness';
import { fakeFleetAt, fleetOf, requestFor } from './request';

const CLUSTERS = 1000;
let h: Harness;
beforeAll(async () => {
  // Thousands of INFO lines (one per activity and gate) would cost more than the orchestration.
  Runtime.install({ logger: new DefaultLogger('WARN') });
  h = await startHarness();
});
afterAll(async () => {
  await h?.close();
});

describe('1,000 worker clusters', () => {
  it('in waves, approved ahead by selector: every cluster upgraded, no manual rounds, each run under 4,096 events', async () => {
    const fleet = fleetOf(CLUSTERS);
    const regions = ['eu', 'us', 'ap'];
    fleet.workers = fleet.workers.map((w, i) => ({ ...w, labels: { region: regions[i % 3] as string } }));
    const fake = fakeFleetAt(fleet, '0.18.0');
    const base = requestFor(fleet, { maxParallel: 50, batches: [10, 490, 500] }, `thousand-${Date.now()}`);
    const request = { ...base, tuning: { ...base.tuning, approvalReminder: '1 hour', childrenPerRun: 400 } };
    const worker = await h.worker('thousand', fake.activities());
    const t0 = Date.now();
    const result = await worker.runUntil(async () => {
      const handle = await h.env.client.workflow.start(upgradeEngine, {
        taskQueue: 'thousand',
        workflowId: request.upgradeId,
        args: [{ request }],
      });
      // Two ahead approvals by selector, given once, cover the whole fleet.
      await approveAhead(handle, 'region in (eu,us)', 'alice');
      await approveAhead(handle, 'region=ap', 'bob');
      return (await handle.result()) as UpgradeResult;
    });
    const seconds = (Date.now() - t0) / 1000;

    const runs: number[] = [];
    for await (const e of h.env.client.workflow.list({ query: `WorkflowId = '${request.upgradeId}'` }))
      runs.push((await h.env.client.workflow.getHandle(e.workflowId, e.runId).fetchHistory()).events?.length ?? 0);
    console.log(
      `1,000 clusters in 3 waves: ${seconds.toFixed(1)} s (${Math.round((CLUSTERS / seconds) * 60)} clusters/min), ` +
        `${runs.length} parent runs, events per run: ${runs.join(', ')} (largest ${Math.max(...runs)})`
    );
    expect(result.counts.upgraded).toBe(CLUSTERS + 1);
    expect(Math.max(...runs)).toBeLessThan(4096);
    // Every gate was passed by an approval given ahead, by who gave the one that covers it.
    const by = new Map<string, number>();
    for (const w of result.workers) by.set(w.approval?.by ?? 'nobody', (by.get(w.approval?.by ?? 'nobody') ?? 0) + 1);
    const ap = fleet.workers.filter((w) => w.labels?.region === 'ap').length;
    expect(Object.fromEntries(by)).toEqual({ alice: CLUSTERS - ap, bob: ap });
    // Waves in order: no cluster of a wave started before every cluster of the one before finished.
    const upgrades = new Map(
      fake.calls
        .filter((c) => c.activity === 'upgradeRelease' && c.cluster !== 'control-plane')
        .map((c) => [c.cluster as string, c] as const)
    );
    const wave = (from: number, to: number) => fleet.workers.slice(from, to).map((w) => upgrades.get(w.name));
    const ends = (cs: ReturnType<typeof wave>) => Math.max(...cs.map((c) => c?.end ?? Infinity));
    const starts = (cs: ReturnType<typeof wave>) => Math.min(...cs.map((c) => c?.start ?? -Infinity));
    expect(starts(wave(10, 500))).toBeGreaterThan(ends(wave(0, 10)));
    expect(starts(wave(500, 1000))).toBeGreaterThan(ends(wave(10, 500)));
  }, 600_000);
});
