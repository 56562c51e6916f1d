/**
 * The Temporal server goes away mid-upgrade (two clusters at their gates) and comes back with its
 * persisted state: a new worker finishes the upgrade and no completed step runs again.
 */
import { Client, Connection, type WorkflowUpdateFailedError } from '@temporalio/client';
import { bundleWorkflowCode } from '@temporalio/worker';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { startDevServer } from '../../scripts/lib/dev-server';
import { EXIT, ExitError } from '../../scripts/lib/errors';
import { sendUpdate } from '../../scripts/lib/send-update';
import { pauseUpdate } from '../../workflows/messages';
import { freePort } from '../../sandbox/procs';
import { createWorker, workflowsPath } from '../../worker/create-worker';
import { upgradeEngine } from '../../workflows';

import { approveWaiting } from './approve';
import { waitForStatus } from './harness';
import { fakeFleetAt, fleetOf, requestFor } from './request';

describe('Temporal server restart', () => {
  it('an upgrade waiting at its gates survives the server going down and finishes after', async () => {
    const dbFilename = path.join(await mkdtemp(path.join(tmpdir(), 'temporal-db-')), 'temporal.db');
    const port = await freePort();
    const bundle = await bundleWorkflowCode({
      workflowsPath,
      logger: { trace() {}, debug() {}, info() {}, warn() {}, error() {}, log() {} },
    });
    const fleet = fleetOf(3);
    const fake = fakeFleetAt(fleet, '0.18.0');
    const request = requestFor(fleet, { maxParallel: 2 });
    const workflowId = `restart-${request.upgradeId}`;

    const first = await startDevServer({ port, dbFilename });
    try {
      const worker = await createWorker({
        connection: first.nativeConnection,
        taskQueue: 'restart',
        activities: fake.activities(),
        workflowBundle: bundle,
        shutdownGraceTime: '1s',
      });
      await worker.runUntil(async () => {
        const handle = await first.client.workflow.start(upgradeEngine, {
          taskQueue: 'restart',
          workflowId,
          args: [{ request }],
        });
        await waitForStatus(handle, (s) => s.pendingApprovals.length === 2);
      });
    } finally {
      await first.teardown(); // the server process is gone; only its SQLite file remains
    }
    const stepsBefore = fake.calls.filter((c) => !c.failed).length;

    const second = await startDevServer({ port, dbFilename });
    try {
      const worker = await createWorker({
        connection: second.nativeConnection,
        taskQueue: 'restart',
        activities: fake.activities(),
        workflowBundle: bundle,
        shutdownGraceTime: '1s',
      });
      const result = await worker.runUntil(async () => {
        const handle = second.client.workflow.getHandle<typeof upgradeEngine>(workflowId);
        // Each call answers only the clusters it decided (the children confirm), so the count is exact
        // however the parent's view of who waits lags behind the children.
        const decided = new Set<string>();
        while (decided.size < 3) {
          await waitForStatus(handle, (s) => s.pendingApprovals.some((c) => !decided.has(c)), 60_000);
          const r = await approveWaiting(handle, 'after-restart').catch((e: WorkflowUpdateFailedError) => {
            if (e.cause?.message !== 'no cluster is waiting for approval') throw e;
            return { decided: [], notDecided: [] };
          });
          for (const c of r.decided) {
            expect(decided.has(c), `${c} reported decided twice`).toBe(false);
            decided.add(c);
          }
        }
        return handle.result();
      });
      expect(stepsBefore).toBeGreaterThan(0);
      expect(result.workers.map((w) => [w.outcome, w.approval?.by])).toEqual(
        Array(3).fill(['upgraded', 'after-restart'])
      );
      for (const name of ['control-plane', 'worker-1', 'worker-2', 'worker-3']) {
        expect(fake.count('upgradeRelease', name), name).toBe(1);
        expect(fake.count('backupValues', name), name).toBe(1);
      }
    } finally {
      await second.teardown();
    }
  });

  it('a CLI update never hangs: a dead server gets one line after the deadline, the same client reaches the restarted one', async () => {
    const dbFilename = path.join(await mkdtemp(path.join(tmpdir(), 'temporal-db-')), 'temporal.db');
    const port = await freePort();
    const bundle = await bundleWorkflowCode({
      workflowsPath,
      logger: { trace() {}, debug() {}, info() {}, warn() {}, error() {}, log() {} },
    });
    const fleet = fleetOf(1);
    const fake = fakeFleetAt(fleet, '0.18.0');
    const request = requestFor(fleet);
    const workflowId = `no-hang-${request.upgradeId}`;
    const run = (env: Awaited<ReturnType<typeof startDevServer>>, body: () => Promise<void>) =>
      createWorker({
        connection: env.nativeConnection,
        taskQueue: 'no-hang',
        activities: fake.activities(),
        workflowBundle: bundle,
        shutdownGraceTime: '1s',
      }).then((w) => w.runUntil(body));

    const first = await startDevServer({ port, dbFilename });
    // The CLI's client, kept across the server's death (as `approve`'s function keeps one).
    const connection = await Connection.connect({ address: `127.0.0.1:${port}` });
    const client = new Client({ connection });
    const handle = client.workflow.getHandle(workflowId);
    try {
      await run(first, async () => {
        await first.client.workflow.start(upgradeEngine, { taskQueue: 'no-hang', workflowId, args: [{ request }] });
        await waitForStatus(first.client.workflow.getHandle(workflowId), (s) => s.pendingApprovals.length === 1);
      });
    } finally {
      await first.teardown();
    }
    const t0 = Date.now();
    const err = await sendUpdate(client, handle, pauseUpdate, [{ by: 'alice' }], {
      deadlineMs: 6_000,
      tryMs: 2_000,
    }).catch((e: unknown) => e as ExitError);
    expect(Date.now() - t0).toBeLessThan(20_000);
    expect(err).toBeInstanceOf(ExitError);
    expect((err as ExitError).exitCode).toBe(EXIT.unreachable);
    expect((err as ExitError).message).toMatch(
      new RegExp(`^sent pause to ${workflowId}; no answer within 6 s \\(.*\\): check \`npm run status\`$`)
    );

    const second = await startDevServer({ port, dbFilename });
    try {
      await run(second, async () => {
        // The same client, the server back: the update goes through (and only once).
        expect(await sendUpdate(client, handle, pauseUpdate, [{ by: 'alice' }])).toMatch(/paused/);
        const s = await waitForStatus(second.client.workflow.getHandle(workflowId), (x) => !!x.rollout?.paused);
        expect(s.rollout?.paused?.by).toBe('alice');
        await second.client.workflow.getHandle(workflowId).cancel();
      });
    } finally {
      await connection.close();
      await second.teardown();
    }
  });
});
