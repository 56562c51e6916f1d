/**
 * A worker process dies (SIGKILL) in the middle of a quick step: the step's heartbeat stops, the
 * server times the attempt out after the 10 s heartbeat timeout, and a second worker runs the retry.
 * Before heartbeats on quick steps, the retry waited for the 3-minute start-to-close timeout.
 */
import { Worker } from '@temporalio/worker';
import { execa } from 'execa';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { upgradeEngine } from '../../workflows';

import { approveWaiting } from './approve';
import { startHarness, waitForStatus, type Harness } from './harness';
import { fakeFleetAt, fleetOf, requestFor } from './request';

let h: Harness;
beforeAll(async () => {
  h = await startHarness();
});
afterAll(async () => {
  await h?.close();
});

const script = fileURLToPath(new URL('./activity-worker.ts', import.meta.url));

describe('a worker killed during a quick step', () => {
  it('the retry starts on another worker within 15 s and the upgrade finishes', async () => {
    const fleet = fleetOf(1);
    const site = `site-${Date.now()}`;
    fleet.workers[0] = { ...(fleet.workers[0] as (typeof fleet.workers)[number]), taskQueue: site };
    const central = fakeFleetAt(fleet, '0.18.0');
    const second = fakeFleetAt(fleet, '0.18.0');
    const tq = `central-${Date.now()}`;
    // Workflows run in this process; worker-1's activities run only on the site's queue.
    const main = await h.worker(tq, central.activities());
    const siteWorkflows = await Worker.create({
      connection: h.env.nativeConnection,
      taskQueue: site,
      workflowBundle: h.bundle,
    });
    // One process (no npx/sh wrapper), so SIGKILL kills the worker itself.
    const doomed = execa(process.execPath, ['--import', 'tsx', script, h.env.address, site], {
      reject: false,
      buffer: false,
    });
    const holding = new Promise<void>((resolve) =>
      doomed.stdout?.on('data', (d: Buffer) => d.toString().includes('HOLDING') && resolve())
    );
    const result = await main.runUntil(() =>
      siteWorkflows.runUntil(async () => {
        const handle = await h.env.client.workflow.start(upgradeEngine, {
          taskQueue: tq,
          workflowId: `death-${Date.now()}`,
          args: [{ request: requestFor(fleet) }],
        });
        await holding;
        doomed.kill('SIGKILL');
        await doomed;
        const killedAt = Date.now();
        const rescuer = await Worker.create({
          connection: h.env.nativeConnection,
          taskQueue: site,
          activities: second.activities(),
        });
        return rescuer.runUntil(async () => {
          await waitForStatus(handle, (s) => s.pendingApprovals.length === 1, 60_000);
          const retry = second.calls.find((c) => c.activity === 'addChartRepo');
          expect(retry?.attempt).toBe(2);
          expect((retry?.start ?? Infinity) - killedAt).toBeLessThan(15_000);
          await approveWaiting(handle, 'test');
          return handle.result();
        });
      })
    );
    expect(result.workers.map((w) => w.outcome)).toEqual(['upgraded']);
    // Steps before the kill are not repeated by the second worker.
    expect(second.count('backupValues')).toBe(0);
    expect(second.count('upgradeRelease', 'worker-1')).toBe(1);
  });
});
