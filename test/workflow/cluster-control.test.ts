/**
 * Retry and skip one worker cluster (updates on the parent) and `--on-failure pause`, on a real dev
 * server with activity doubles. The end-to-end case on sandbox clusters is in
 * test/e2e/bad-version.test.ts; this file covers the orderings that are slow to reach there.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { UpgradeRequest, UpgradeResult } from '../../runbook/types';
import { upgradeEngine } from '../../workflows';
import { pauseUpdate, resumeUpdate, retryClusterUpdate, skipClusterUpdate } from '../../workflows/messages';
import { approveAhead, approveWaiting } from './approve';
import { renderStatus, statusOfResult } from '../../scripts/lib/render';
import { startAttributes } from '../../scripts/lib/search-attributes';
import { readUpgrade } from '../../scripts/lib/upgrade-state';
import { refusal, startHarness, waitForStatus, type Harness } from './harness';
import { fakeFleetAt, fleetOf, requestFor } from './request';

let h: Harness;
beforeAll(async () => {
  h = await startHarness();
});
afterAll(async () => {
  await h?.close();
});

let n = 0;
const queue = () => `q-cluster-control-${Date.now()}-${n++}`;
const start = (request: UpgradeRequest, taskQueue: string, indexed = false) =>
  h.env.client.workflow.start(upgradeEngine, {
    taskQueue,
    workflowId: `wf-${request.upgradeId}`,
    args: [{ request }],
    // As start-upgrade does where the namespace has them (the test server registers them).
    ...(indexed ? { typedSearchAttributes: startAttributes(request.fleet.name, request.options.targetVersion) } : {}),
  });

/** The Skoala* search attributes the server has for a workflow now. */
async function indexed(workflowId: string): Promise<Record<string, unknown>> {
  const d = await h.env.client.workflow.getHandle(workflowId).describe();
  return Object.fromEntries(
    d.typedSearchAttributes.getAll().flatMap((p) => (p.key.name.startsWith('Skoala') ? [[p.key.name, p.value]] : []))
  );
}

describe('retry and skip one cluster', () => {
  it('skipping a failed canary is a decision: the rollout goes on, and status says so', async () => {
    const fleet = fleetOf(2);
    const fake = fakeFleetAt(fleet, '0.18.0');
    fake.faults.set('upgradeRelease:worker-1', ['nonRetryable']);
    const tq = queue();
    await (
      await h.worker(tq, fake.activities())
    ).runUntil(async () => {
      const handle = await start(requestFor(fleet, { onFailure: 'pause', canaries: ['worker-1'] }), tq);
      await approveAhead(handle, '', 'alice', 'reviewed');
      await waitForStatus(handle, (s) => s.failures.length === 1, 30_000);
      expect(
        await handle.executeUpdate(skipClusterUpdate, {
          args: [{ cluster: 'worker-1', by: 'bob', reason: 'its site is being rebuilt' }],
        })
      ).toBe('worker-1 skipped; a canary set aside: the rollout goes on without it');
      const result = (await handle.result()) as UpgradeResult;
      expect(result.workers.map((w) => [w.cluster, w.outcome])).toEqual([
        ['worker-1', 'skipped'],
        ['worker-2', 'upgraded'],
      ]);
      // The final table's step column: the last step each reached.
      const table = renderStatus(statusOfResult(result));
      expect(table).toMatch(/worker-2\s*│\s*worker\s*│\s*upgraded\s*│\s*verifyRelease/);
      expect(result.workers[0]?.error).toMatch(
        /^skipped by bob: its site is being rebuilt \(it had failed: .*\); a canary set aside: the rollout goes on without it$/
      );
    });
  });

  it('a retried cluster is seen at its gate again: its new run counts from 1, and the parent listens to it', async () => {
    const fleet = fleetOf(1);
    const fake = fakeFleetAt(fleet, '0.18.0');
    // The first attempt reaches the gate, is approved, then fails after it (the CRD apply refused).
    fake.faults.set('reapplyCrds:worker-1', ['nonRetryable']);
    const tq = queue();
    await (
      await h.worker(tq, fake.activities())
    ).runUntil(async () => {
      const handle = await start(requestFor(fleet, { onFailure: 'pause' }), tq);
      await waitForStatus(handle, (s) => s.pendingApprovals.includes('worker-1'), 30_000);
      expect((await approveWaiting(handle, 'alice')).decided).toEqual(['worker-1']);
      await waitForStatus(handle, (s) => s.failures.length === 1, 30_000);
      await handle.executeUpdate(retryClusterUpdate, { args: [{ cluster: 'worker-1', by: 'bob' }] });
      // The second run's "waiting" reaches the parent: status, approve --all and the result agree.
      const waiting = await waitForStatus(handle, (s) => s.pendingApprovals.includes('worker-1'), 30_000);
      expect(waiting.workers[0]?.state).toBe('waiting-approval');
      expect((await approveWaiting(handle, 'alice')).decided).toEqual(['worker-1']);
      const result = (await handle.result()) as UpgradeResult;
      expect(result.workers.map((w) => w.outcome)).toEqual(['upgraded']);
    });
  });

  it('--on-failure pause: the upgrade waits for failed clusters; a retry starts at once, a skip ends it, the pause lifts', async () => {
    const fleet = fleetOf(4);
    const fake = fakeFleetAt(fleet, '0.18.0');
    fake.faults.set('upgradeRelease:worker-1', ['nonRetryable']);
    fake.faults.set('upgradeRelease:worker-2', ['nonRetryable']);
    const tq = queue();
    await (
      await h.worker(tq, fake.activities())
    ).runUntil(async () => {
      const handle = await start(requestFor(fleet, { maxParallel: 2, onFailure: 'pause' }), tq, true);
      await approveAhead(handle, '', 'alice', 'reviewed');
      const paused = await waitForStatus(handle, (s) => s.failures.length === 2, 30_000);
      expect(paused.rollout?.paused?.by).toBe('on-failure pause');
      expect(paused.workers.map((w) => w.state)).toEqual(['failed', 'failed', 'pending', 'pending']);
      // The UI's list can find it: paused, with its failed clusters; each child by its cluster and phase.
      await expect
        .poll(() => indexed(handle.workflowId))
        .toMatchObject({
          SkoalaPhase: 'paused',
          SkoalaFailedClusters: ['worker-1', 'worker-2'],
          SkoalaFleet: 'test',
          SkoalaVersion: '0.19.2',
        });
      expect(await indexed(`${handle.workflowId}/worker-2`)).toMatchObject({
        SkoalaCluster: 'worker-2',
        SkoalaPhase: 'failed',
      });

      const who = { by: 'bob' };
      expect(await refusal(handle.executeUpdate(retryClusterUpdate, { args: [{ cluster: 'worker-3', ...who }] }))).toBe(
        'worker-3 has not started yet (the rollout is paused by on-failure pause): nothing to retry'
      );
      expect(await refusal(handle.executeUpdate(skipClusterUpdate, { args: [{ cluster: 'worker-1', ...who }] }))).toBe(
        'say why the cluster is skipped (--reason)'
      );
      expect(await handle.executeUpdate(retryClusterUpdate, { args: [{ cluster: 'worker-1', ...who }] })).toBe(
        'worker-1 will start again'
      );
      expect(
        await refusal(handle.executeUpdate(retryClusterUpdate, { args: [{ cluster: 'worker-1', ...who }] }))
      ).toMatch(/^worker-1 (is already queued to retry|is running.*|has already ended upgraded: nothing to retry)/);
      await waitForStatus(handle, (s) => s.workers[0]?.state === 'upgraded', 30_000);
      // worker-2 still failed: the rollout stays paused, worker-3 and worker-4 wait.
      const still = await handle.query('status');
      expect(still).toMatchObject({ rollout: { paused: { by: 'on-failure pause' } } });
      expect(fake.count('upgradeRelease', 'worker-3')).toBe(0);

      expect(
        await handle.executeUpdate(skipClusterUpdate, {
          args: [{ cluster: 'worker-2', by: 'carol', reason: 'decommissioned' }],
        })
      ).toBe('worker-2 skipped');
      const result = (await handle.result()) as UpgradeResult;
      expect(result.workers.map((r) => [r.cluster, r.outcome])).toEqual([
        ['worker-1', 'upgraded'],
        ['worker-2', 'skipped'],
        ['worker-3', 'upgraded'],
        ['worker-4', 'upgraded'],
      ]);
      expect(result.workers[1]?.error).toMatch(/^skipped by carol: decommissioned \(it had failed: /);
      expect(result.counts).toMatchObject({ upgraded: 4, skipped: 1, failed: 0 });
      const final = await indexed(handle.workflowId);
      expect(final).toMatchObject({ SkoalaPhase: 'done' });
      expect(final).not.toHaveProperty('SkoalaFailedClusters'); // skipped: no longer failed
      expect(await indexed(`${handle.workflowId}/worker-1`)).toMatchObject({ SkoalaPhase: 'upgraded' });
      // The retried cluster ran its upgrade twice (failed, then done), the skipped one once.
      expect(fake.calls.filter((c) => c.activity === 'upgradeRelease' && c.cluster === 'worker-1')).toHaveLength(2);
      expect(fake.calls.filter((c) => c.activity === 'upgradeRelease' && c.cluster === 'worker-2')).toHaveLength(1);
    });
  });

  it("skip a cluster not started yet; a person's pause holds a retry back; resume accepts the failures", async () => {
    const fleet = fleetOf(3);
    const fake = fakeFleetAt(fleet, '0.18.0');
    fake.faults.set('upgradeRelease:worker-1', ['nonRetryable']);
    const release3 = fake.hold('upgradeRelease', 'worker-2');
    const tq = queue();
    const worker = await h.worker(tq, fake.activities());
    // An assertion failing while worker-2's step is held would leave the worker waiting on it forever.
    const steps = async () => {
      const handle = await start(requestFor(fleet, { maxParallel: 1, onFailure: 'stop' }), tq);
      await approveAhead(handle, '', 'alice', 'reviewed');
      await waitForStatus(handle, (s) => s.workers[0]?.state === 'failed' && s.workers[1]?.state === 'running', 30_000);
      expect(
        await refusal(
          handle.executeUpdate(skipClusterUpdate, { args: [{ cluster: 'worker-2', by: 'bob', reason: 'x' }] })
        )
      ).toBe('worker-2 is running: a failing step retries by itself; skip applies once the cluster has failed');
      expect(
        await handle.executeUpdate(skipClusterUpdate, {
          args: [{ cluster: 'worker-3', by: 'bob', reason: 'maintenance' }],
        })
      ).toBe('worker-3 skipped: it will not start');
      await handle.executeUpdate(pauseUpdate, { args: [{ by: 'dave', reason: 'change freeze' }] });
      expect(await handle.executeUpdate(retryClusterUpdate, { args: [{ cluster: 'worker-1', by: 'bob' }] })).toBe(
        'worker-1 will start again once the rollout resumes (paused by dave)'
      );
      release3();
      await waitForStatus(handle, (s) => s.workers[1]?.state === 'upgraded', 30_000);
      expect(fake.count('upgradeRelease', 'worker-1')).toBe(0); // held back by dave's pause
      await handle.executeUpdate(resumeUpdate, { args: [{ by: 'dave' }] });
      const result = (await handle.result()) as UpgradeResult;
      expect(result.workers.map((r) => [r.cluster, r.outcome])).toEqual([
        ['worker-1', 'upgraded'],
        ['worker-2', 'upgraded'],
        ['worker-3', 'skipped'],
      ]);
      expect(result.workers[2]?.error).toBe('skipped by bob: maintenance');
      // The upgrade has ended: the server refuses the update (the CLI says how it ended: e2e).
      await expect(
        handle.executeUpdate(retryClusterUpdate, { args: [{ cluster: 'worker-1', by: 'bob' }] })
      ).rejects.toThrow('workflow execution already completed');
    };
    await worker.runUntil(() => steps().finally(release3));
  });

  it('a retried cluster keeps its word: a stop that comes while it waits for the resume leaves the run open for it', async () => {
    // Found by the rollout model (test/unit/rollout-model.test.ts): the upgrade ended with worker-1
    // "not started" although its retry had answered that it would start once the rollout resumed.
    const fleet = fleetOf(3);
    const fake = fakeFleetAt(fleet, '0.18.0');
    fake.faults.set('upgradeRelease:worker-1', ['nonRetryable']);
    fake.faults.set('upgradeRelease:worker-2', ['nonRetryable']);
    const release2 = fake.hold('upgradeRelease', 'worker-2');
    const tq = queue();
    const worker = await h.worker(tq, fake.activities());
    const steps = async () => {
      const handle = await start(requestFor(fleet, { maxParallel: 2, maxFailures: 0, onFailure: 'stop' }), tq);
      await approveAhead(handle, '', 'alice', 'reviewed');
      await waitForStatus(handle, (s) => s.workers[0]?.state === 'failed' && s.workers[1]?.state === 'running', 30_000);
      await handle.executeUpdate(pauseUpdate, { args: [{ by: 'dave', reason: 'change freeze' }] });
      expect(await handle.executeUpdate(retryClusterUpdate, { args: [{ cluster: 'worker-1', by: 'bob' }] })).toBe(
        'worker-1 will start again once the rollout resumes (paused by dave)'
      );
      release2(); // worker-2 fails: one failure, more than --max-failures 0, stops the rollout
      await waitForStatus(handle, (s) => s.workers[1]?.state === 'failed', 30_000);
      await handle.executeUpdate(resumeUpdate, { args: [{ by: 'dave' }] });
      const result = (await handle.result()) as UpgradeResult;
      expect(result.workers.map((r) => [r.cluster, r.outcome])).toEqual([
        ['worker-1', 'upgraded'],
        ['worker-2', 'failed'],
        ['worker-3', 'not-started'],
      ]);
      expect(result.workers[2]?.error).toMatch(/^not started: 1 worker cluster\(s\) failed \(worker-2\)/);
    };
    await worker.runUntil(() => steps().finally(release2));
  });

  it('status names a cluster whose step fails and retries: "retrying: <last error>"', async () => {
    const fleet = fleetOf(1);
    const fake = fakeFleetAt(fleet, '0.18.0');
    fake.faults.set('upgradeRelease:worker-1', ['retryable']);
    const tq = queue();
    await (
      await h.worker(tq, fake.activities())
    ).runUntil(async () => {
      const request = requestFor(fleet, { maxParallel: 1 });
      // A backoff long enough to read the status inside it.
      request.tuning = { ...request.tuning, retryInitialInterval: '4s' };
      const handle = await start(request, tq);
      await approveAhead(handle, '', 'alice', 'reviewed');
      await expect
        .poll(async () => (await fetchState(handle.workflowId)).workers[0]?.retrying, { timeout: 20_000 })
        .toEqual({
          activity: 'upgradeRelease',
          attempt: 2,
          error: 'injected retryable failure in upgradeRelease on worker-1',
        });
      const table = renderStatus(await fetchState(handle.workflowId));
      expect(table).toMatch(
        /│ worker-1 +│ worker +│ running .*│ retrying: injected retryable failure in upgradeRelease on worker-1 /
      );
      const result = (await handle.result()) as UpgradeResult;
      expect(result.workers[0]?.outcome).toBe('upgraded'); // the retry went through by itself
    });
  });
});

/** The status `npm run status` reads: the live query, plus the running clusters' retrying steps. */
async function fetchState(workflowId: string) {
  const state = await readUpgrade(h.env.client, workflowId);
  if (!state.status) throw new Error(`no status: ${state.kind}`);
  return state.status;
}
