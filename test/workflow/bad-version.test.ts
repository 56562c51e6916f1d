/**
 * A bad version stops early, on a real Temporal dev server (activity doubles inject the unhealthy
 * workloads; the end-to-end suite shows the same on sandbox clusters): rollback of a failed
 * control plane, no automatic rollback after a DB-migration Job, canaries, the failure budget.
 */
import { WorkflowFailedError } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rollbackClusters, upgradeEngine } from '../../workflows';
import { statusQuery } from '../../workflows/messages';
import { approveWaiting } from './approve';
import { readUpgrade } from '../../scripts/lib/upgrade-state';
import type { UpgradeRequest } from '../../runbook/types';
import type { FakeFleet } from './fake-activities';
import { startHarness, type Harness } from './harness';
import { fakeFleetAt, fleetOf, requestFor } from './request';

let h: Harness;
beforeAll(async () => {
  h = await startHarness();
});
afterAll(async () => {
  await h?.close();
});

let n = 0;
const queue = () => `bad-${Date.now()}-${n++}`;

async function run(fake: FakeFleet, request: UpgradeRequest) {
  const tq = queue();
  const worker = await h.worker(tq, fake.activities());
  return worker.runUntil(async () => {
    const handle = await h.env.client.workflow.start(upgradeEngine, {
      taskQueue: tq,
      workflowId: `wf-${request.upgradeId}`,
      args: [{ request }],
    });
    let stop = false;
    const approver = (async () => {
      while (!stop) {
        await approveWaiting(handle, 'test').catch(() => undefined);
        await new Promise((r) => setTimeout(r, 100));
      }
    })();
    try {
      const result = await handle.result().catch((e: unknown) => e as WorkflowFailedError);
      return {
        result,
        status: await handle.query(statusQuery),
        state: await readUpgrade(h.env.client, handle.workflowId),
        handle,
      };
    } finally {
      stop = true;
      await approver;
    }
  });
}

const unhealthy = (fake: FakeFleet, cluster: string) => fake.faults.set(`verifyWorkloads:${cluster}`, ['nonRetryable']);
const opts = { onFailure: 'rollback' as const, maxFailures: 0 };

describe('a bad version', () => {
  it('stops at the control plane and rolls skoala back; no worker cluster is touched', async () => {
    const fleet = fleetOf(2);
    const fake = fakeFleetAt(fleet, '0.19.2');
    fake.chartVersions.push('0.19.3');
    unhealthy(fake, 'control-plane');
    const { result, status, state } = await run(fake, requestFor(fleet, { targetVersion: '0.19.3', ...opts }));
    expect(result).toBeInstanceOf(WorkflowFailedError);
    // `npm run status` of the FAILED upgrade: its message and the final per-cluster table.
    expect(state).toMatchObject({ kind: 'failed', status: { controlPlane: { state: 'rolled-back' } } });
    expect((result as WorkflowFailedError).cause?.message).toMatch(
      /^control plane control-plane failed and was rolled back, no worker cluster was touched: .*injected nonRetryable failure in verifyWorkloads.*; rolled back to revision 1$/
    );
    expect(status.controlPlane.state).toBe('rolled-back');
    expect(fake.count('rollbackToRevision', 'control-plane')).toBe(1);
    // Checked again after the rollback, at the old version.
    expect(fake.calls.filter((c) => c.activity === 'verifyWorkloads').map((c) => [c.cluster, !!c.failed])).toEqual([
      ['control-plane', true],
      ['control-plane', false],
    ]);
    expect(fake.calls.filter((c) => c.cluster?.startsWith('worker') && c.activity !== 'preflightCluster')).toEqual([]);
  });

  it('after a DB-migration Job: no automatic rollback, the exact manual steps instead', async () => {
    const fleet = fleetOf(1);
    const fake = fakeFleetAt(fleet, '0.18.0');
    unhealthy(fake, 'control-plane');
    const { result } = await run(fake, requestFor(fleet, { targetVersion: '0.19.2', ...opts }));
    const message = (result as WorkflowFailedError).cause?.message ?? '';
    expect(message).toContain('NOT rolled back automatically: the DB-migration Job already moved the database schema');
    expect(message).toContain(
      '(2) helm --kubeconfig /nonexistent/control-plane.kubeconfig --kube-context control-plane rollback skoala 1 -n skoala-system'
    );
    expect(fake.count('runDbMigrationJob')).toBe(1);
    expect(fake.count('rollbackToRevision')).toBe(0);
  });

  it('--on-failure stop leaves the failed cluster as it failed', async () => {
    const fleet = fleetOf(2);
    const fake = fakeFleetAt(fleet, '0.19.2');
    fake.chartVersions.push('0.27.2');
    unhealthy(fake, 'worker-1');
    const { result } = await run(
      fake,
      requestFor(fleet, { targetVersion: '0.27.2', onFailure: 'stop', maxFailures: 5 })
    );
    expect((result as { workers: { outcome: string }[] }).workers.map((w) => w.outcome)).toEqual([
      'failed',
      'upgraded',
    ]);
    expect(fake.count('rollbackToRevision')).toBe(0);
  });

  it('a refusal before helm ran (values changed by someone) is not rolled back: nothing of ours to undo', async () => {
    const fleet = fleetOf(1);
    const fake = fakeFleetAt(fleet, '0.19.2');
    fake.chartVersions.push('0.27.2');
    fake.faults.set('upgradeRelease:worker-1', ['valuesChanged']);
    const { result } = await run(fake, requestFor(fleet, { targetVersion: '0.27.2', ...opts }));
    const worker = (result as { workers: { outcome: string; error?: string }[] }).workers[0];
    expect(worker).toMatchObject({
      outcome: 'failed',
      error: expect.stringContaining('values changed since the plan'),
    });
    expect(fake.count('rollbackToRevision')).toBe(0);
  });

  it('a failure inside upgradeRelease before helm changed anything (e.g. the chart pull) ends failed, not rolled back', async () => {
    const fleet = fleetOf(1);
    const fake = fakeFleetAt(fleet, '0.19.2');
    fake.chartVersions.push('0.27.2');
    // A plain failure of the activity (no refusal type): the release stays at its planned revision.
    fake.faults.set('upgradeRelease:worker-1', ['nonRetryable']);
    const { result, status } = await run(fake, requestFor(fleet, { targetVersion: '0.27.2', ...opts }));
    const worker = (result as { workers: { outcome: string; error?: string }[] }).workers[0];
    expect(worker?.outcome).toBe('failed');
    expect(worker?.error).toContain('injected nonRetryable failure in upgradeRelease');
    expect(worker?.error).not.toContain('rolled back');
    expect(status.workers[0]).toMatchObject({ state: 'failed', step: 'upgradeRelease' });
    // The activity looked and found nothing to undo: no rollback record on the cluster.
    expect(fake.count('rollbackToRevision', 'worker-1')).toBe(1);
    expect(fake.clusters['worker-1']?.rolledBack).toBeUndefined();
  });

  it('a failed canary is rolled back and no other cluster starts', async () => {
    const fleet = fleetOf(3);
    const fake = fakeFleetAt(fleet, '0.27.2');
    fake.chartVersions.push('0.28.2');
    unhealthy(fake, 'worker-2');
    const { result } = await run(
      fake,
      requestFor(fleet, { targetVersion: '0.28.2', ...opts, canaries: ['worker-2'], maxParallel: 3 })
    );
    const workers = (result as { workers: { cluster: string; outcome: string; error?: string }[] }).workers;
    expect(workers.map((w) => [w.cluster, w.outcome])).toEqual([
      ['worker-1', 'not-started'],
      ['worker-2', 'rolled-back'],
      ['worker-3', 'not-started'],
    ]);
    expect(workers[0]?.error).toMatch(/^not started: canary worker-2 ended rolled-back/);
    expect(
      fake.calls.filter((c) => ['worker-1', 'worker-3'].includes(c.cluster ?? '') && c.activity !== 'preflightCluster')
    ).toEqual([]);
  });

  it('--max-failures 1: two broken clusters out of four stop the rollout after the second', async () => {
    const fleet = fleetOf(4);
    const fake = fakeFleetAt(fleet, '0.27.2');
    fake.chartVersions.push('0.28.2');
    unhealthy(fake, 'worker-1');
    unhealthy(fake, 'worker-2');
    const { result } = await run(
      fake,
      requestFor(fleet, { targetVersion: '0.28.2', onFailure: 'rollback', maxFailures: 1, maxParallel: 1 })
    );
    const workers = (result as { workers: { cluster: string; outcome: string; error?: string }[] }).workers;
    expect(workers.map((w) => [w.cluster, w.outcome])).toEqual([
      ['worker-1', 'rolled-back'],
      ['worker-2', 'rolled-back'],
      ['worker-3', 'not-started'],
      ['worker-4', 'not-started'],
    ]);
    expect(workers[2]?.error).toBe(
      'not started: 2 worker cluster(s) failed (worker-1, worker-2), more than --max-failures 1'
    );
  });

  it('a rerun of the same version continues with exactly the clusters never started; --retry-failed tries the rest', async () => {
    const fleet = fleetOf(3);
    const fake = fakeFleetAt(fleet, '0.27.2');
    fake.chartVersions.push('0.28.2');
    unhealthy(fake, 'worker-1');
    const request = requestFor(fleet, { targetVersion: '0.28.2', ...opts, maxParallel: 1 }, 'rerun-bad');
    const first = (await run(fake, request)).result as { workers: { outcome: string }[] };
    expect(first.workers.map((w) => w.outcome)).toEqual(['rolled-back', 'not-started', 'not-started']);

    // Same upgrade again (the cause is not fixed for worker-1): worker-1 is left alone, the rest go on.
    const second = (await run(fake, { ...request, upgradeId: 'rerun-bad' })).result as {
      workers: { cluster: string; outcome: string; error?: string }[];
    };
    expect(second.workers.map((w) => [w.cluster, w.outcome])).toEqual([
      ['worker-1', 'not-started'],
      ['worker-2', 'upgraded'],
      ['worker-3', 'upgraded'],
    ]);
    expect(second.workers[0]?.error).toBe(
      'not started: an earlier run of this upgrade rolled it back; pass --retry-failed to try it again'
    );
    expect(fake.count('upgradeRelease', 'worker-1')).toBe(1);

    // --retry-failed: worker-1 is tried again (and, healthy now, upgraded).
    const third = (await run(fake, { ...request, options: { ...request.options, retryFailed: true } })).result as {
      workers: { outcome: string }[];
    };
    expect(third.workers.map((w) => w.outcome)).toEqual(['upgraded', 'already-at-target', 'already-at-target']);
    expect(fake.count('upgradeRelease', 'worker-1')).toBe(2);
  });
});

describe('npm run rollback (rollbackClusters)', () => {
  it('rolls back what the upgrade changed; a cluster it never changed (cancelled before helm) is unchanged, with no record', async () => {
    const fleet = fleetOf(2);
    const fake = fakeFleetAt(fleet, '0.27.2');
    fake.chartVersions.push('0.28.1');
    // worker-1 was upgraded (revision 2); worker-2 was cancelled before its upgrade began (still at revision 1).
    const w1 = fake.clusters['worker-1'];
    if (w1) Object.assign(w1, { chartVersion: '0.28.1', revision: 2 });
    const tq = queue();
    const worker = await h.worker(tq, fake.activities());
    const results = await worker.runUntil(
      h.env.client.workflow.execute(rollbackClusters, {
        taskQueue: tq,
        workflowId: `rollback-${tq}`,
        args: [
          {
            upgradeId: 'u-rollback',
            version: '0.28.1',
            by: 'alice',
            healthTimeoutMs: 5_000,
            targets: fleet.workers.map((cluster) => ({
              cluster,
              release: 'skoala-init' as const,
              revision: 1,
              version: '0.27.2',
            })),
          },
        ],
      })
    );
    expect(results).toEqual([
      { cluster: 'worker-1', outcome: 'rolled-back' },
      { cluster: 'worker-2', outcome: 'unchanged' },
    ]);
    expect(fake.clusters['worker-1']?.rolledBack).toMatchObject({ cause: 'rolled back by alice (npm run rollback)' });
    expect(fake.clusters['worker-2']?.rolledBack).toBeUndefined();
    // Nothing at all happened on worker-2: no Jobs deleted, no health check.
    expect(fake.calls.filter((c) => c.cluster === 'worker-2').map((c) => c.activity)).toEqual(['rollbackToRevision']);
  });
});
