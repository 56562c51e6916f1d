/**
 * Maintenance windows on the time-skipping test server: a cluster outside its window waits on a
 * durable timer (status says when the window opens) and starts inside it, two days of workflow
 * time later, in a second or so of real time. Workflow times come from the children's own clocks.
 */
import { bundleWorkflowCode, DefaultLogger, Runtime, type WorkflowBundleWithSourceMap } from '@temporalio/worker';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Fleet, MaintenanceWindow, UpgradeResult, Weekday } from '../../runbook/types';
import { createWorker, workflowsPath } from '../../worker/create-worker';
import { upgradeEngine } from '../../workflows';
import { startTimeSkipping } from '../helpers/time-skipping';
import { approveAhead } from './approve';
import { waitForStatus } from './harness';
import { fakeFleetAt, fleetOf, requestFor } from './request';

Runtime.install({ logger: new DefaultLogger('WARN') });

const noop = () => {};
const quietLogger = { trace: noop, debug: noop, info: noop, warn: noop, error: noop, log: noop };

let env: TestWorkflowEnvironment;
let bundle: WorkflowBundleWithSourceMap;
beforeAll(async () => {
  [env, bundle] = await Promise.all([startTimeSkipping(), bundleWorkflowCode({ workflowsPath, logger: quietLogger })]);
});
afterAll(async () => {
  await env?.teardown();
});

const DAYS: Weekday[] = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
const pad = (n: number) => String(n).padStart(2, '0');

/** A one-hour window opening at `at` (a whole minute), written in `timeZone` with a fixed offset from UTC. */
function windowAt(
  at: Date,
  timeZone: string,
  offsetHours: number,
  cover: Partial<MaintenanceWindow>
): MaintenanceWindow {
  const local = new Date(at.getTime() + offsetHours * 3_600_000);
  return {
    ...cover,
    days: [DAYS[local.getUTCDay()] as Weekday],
    start: `${pad(local.getUTCHours())}:${pad(local.getUTCMinutes())}`,
    durationMs: 3_600_000,
    timeZone,
  };
}

describe('maintenance windows', () => {
  it('a cluster outside its window waits durably, shows when it opens, and starts inside it', async () => {
    // Two days ahead, on a whole minute: both windows open at this instant, one written in UTC,
    // one in Asia/Shanghai (UTC+8 all year) for the clusters labelled tz=asia.
    const opens = new Date(Math.ceil((await env.currentTimeMs()) / 60_000) * 60_000 + 2 * 86_400_000);
    const fleet: Fleet = fleetOf(3);
    fleet.workers = fleet.workers.map((w) => (w.name === 'worker-3' ? { ...w, labels: { tz: 'asia' } } : w));
    fleet.windows = [
      windowAt(opens, 'UTC', 0, { clusters: ['worker-2'] }),
      windowAt(opens, 'Asia/Shanghai', 8, { select: 'tz=asia' }),
    ];
    const fake = fakeFleetAt(fleet, '0.18.0');
    const taskQueue = 'windows';
    const worker = await createWorker({
      connection: env.nativeConnection,
      taskQueue,
      activities: fake.activities(),
      workflowBundle: bundle,
      shutdownGraceTime: '1s',
    });
    const result = await worker.runUntil(async () => {
      const handle = await env.client.workflow.start(upgradeEngine, {
        taskQueue,
        workflowId: 'windows-upgrade',
        args: [{ request: requestFor(fleet, { maxParallel: 3 }) }],
      });
      await approveAhead(handle, '', 'alice');
      // worker-1 has no window: it upgrades now. The others wait, and say until when.
      const waiting = await waitForStatus(
        handle,
        (s) => s.workers.find((w) => w.cluster === 'worker-1')?.state === 'upgraded',
        60_000
      );
      const because = Object.fromEntries(waiting.workers.map((w) => [w.cluster, w.waitingFor]));
      expect(because['worker-2']).toBe(
        `waiting for window, opens at ${opens.toISOString()} (${fleet.windows?.[0]?.days[0]} ${fleet.windows?.[0]?.start} for 1h (UTC))`
      );
      expect(because['worker-3']).toMatch(
        new RegExp(
          `^waiting for window, opens at ${opens.toISOString().replace(/[.]/g, '\\.')} \\(.* \\(Asia/Shanghai\\)\\)$`
        )
      );
      expect(waiting.workers.filter((w) => w.state === 'pending').map((w) => w.cluster)).toEqual([
        'worker-2',
        'worker-3',
      ]);
      // Awaiting the result lets the test server skip the two days of the window timer.
      const started = Date.now();
      const r = (await handle.result()) as UpgradeResult;
      expect(Date.now() - started).toBeLessThan(60_000);
      return r;
    });
    const startedAt = Object.fromEntries(result.workers.map((w) => [w.cluster, Date.parse(w.startedAt ?? '')]));
    expect(result.workers.map((w) => w.outcome)).toEqual(['upgraded', 'upgraded', 'upgraded']);
    expect(startedAt['worker-1']).toBeLessThan(opens.getTime());
    for (const c of ['worker-2', 'worker-3']) {
      expect(startedAt[c]).toBeGreaterThanOrEqual(opens.getTime());
      expect(startedAt[c]).toBeLessThan(opens.getTime() + 3_600_000);
    }
  });
});
