/**
 * Records workflow histories for the replay test: `npx tsx test/workflow/record-histories.ts`.
 * Run it when a workflow change is released, and keep the old files: replaying them against the
 * new code is what proves the change is safe for upgrades already running (use patched() if not).
 *
 * One upgrade of 3 workers covers: approve by the child's update, reject by approve-all (with its
 * answers), a retried, then unhealthy and rolled-back cluster on a per-site task queue (v4; v3: a
 * failed one), health checks, and continue-as-new (2 children
 * per run): every run of the parent is saved (v3: the first one only reads the fleet). v5: the
 * image check at preflight (one per task queue) and backups kept in the cluster. v6: also a rollout
 * in waves with a soak, an approval given ahead by selector, and a pause and resume. v7: approvals
 * naming digests, and a gated upgrade: two distinct approvers, an approval refused after the CRD
 * preview changed, a hold and its release, a maintenance window, reminders to a webhook. v8: search
 * attributes upserted by parent and children, `--on-failure pause`, a cluster retried and one skipped.
 * v9 (`recovery`): a failed canary skipped (the rollout goes on), a retry that waits through a
 * person's pause while a stop comes, then starts on the resume, and a gate whose deadline fires
 * while an approval is being checked.
 */
import { execa } from 'execa';
import { readFile, writeFile } from 'node:fs/promises';
import { toolPaths } from '../../sandbox/tools';
import { upgradeEngine } from '../../workflows';
import type { Fleet, Weekday } from '../../runbook/types';
import { startWebhookReceiver } from '../../sandbox/webhook-receiver';
import {
  decideAllUpdate,
  decideCrdUpdate,
  gateQuery,
  holdUpdate,
  pauseUpdate,
  releaseUpdate,
  resumeUpdate,
  retryClusterUpdate,
  skipClusterUpdate,
} from '../../workflows/messages';
import { startAttributes } from '../../scripts/lib/search-attributes';
import { approveAhead, approveGate, approveWaiting } from './approve';
import { startHarness, waitForStatus } from './harness';
import { fakeFleetAt, fleetOf, requestFor } from './request';

const VERSION = 'v9';
/** `npx tsx test/workflow/record-histories.ts recovery`: record only that scenario (v9's; v8's: cluster-control; gate-deadline). */
const only = process.argv[2];

function expectFirst(runs: string[], firstRunId: string): void {
  if (runs[0] !== firstRunId) throw new Error(`runs listed out of order: ${runs.join(', ')}`);
}
const out = new URL('../histories/', import.meta.url);
const h = await startHarness();
// The same JSON an operator gets from `temporal workflow show -o json` on a real cluster.
// Replay needs the workflow ID too (children's IDs derive from it): kept in ids.json.
const ids: Record<string, string> = JSON.parse(await readFile(new URL('ids.json', out), 'utf8').catch(() => '{}'));
const save = async (name: string, workflowId: string, runId?: string) => {
  const show = await execa(toolPaths().temporal, [
    'workflow',
    'show',
    '--workflow-id',
    workflowId,
    ...(runId ? ['--run-id', runId] : []),
    '--address',
    h.env.address,
    '-o',
    'json',
  ]);
  await writeFile(new URL(`${name}.json`, out), show.stdout);
  ids[`${name}.json`] = workflowId;
  await writeFile(new URL('ids.json', out), `${JSON.stringify(ids, null, 2)}\n`);
};
try {
  if (only === 'cluster-control' || only === 'recovery' || only === 'gate-deadline') {
    await (only === 'recovery'
      ? recordRecovery()
      : only === 'gate-deadline'
        ? recordGateDeadline()
        : recordClusterControl());
    console.log(`histories written to ${out.pathname}`);
    process.exit(0);
  }
  const fleet = fleetOf(3);
  fleet.workers[2] = { ...(fleet.workers[2] as (typeof fleet.workers)[number]), taskQueue: 'record-site' };
  fleet.backupStore = 'cluster';
  const fake = fakeFleetAt(fleet, '0.18.0');
  // v4: worker-3 is retried, then unhealthy, and rolled back (health checks and rollbacks in history).
  fake.faults.set('upgradeRelease:worker-3', ['retryable']);
  fake.faults.set('verifyWorkloads:worker-3', ['nonRetryable']);
  const [central, site] = await Promise.all([
    h.worker('record', fake.activities()),
    h.worker('record-site', fake.activities()),
  ]);
  await site.runUntil(() =>
    central.runUntil(async () => {
      const request = requestFor(fleet, { maxParallel: 2, onFailure: 'rollback' }, 'recorded');
      request.tuning = { ...request.tuning, childrenPerRun: 2 };
      const handle = await h.env.client.workflow.start(upgradeEngine, {
        taskQueue: 'record',
        workflowId: 'recorded',
        args: [{ request }],
      });
      const firstRunId = handle.firstExecutionRunId;
      await waitForStatus(handle, (s) => s.pendingApprovals.length === 2);
      const child = (name: string) => h.env.client.workflow.getHandle(`recorded/${name}`);
      await approveGate(child('worker-1'), 'worker-1', 'alice');
      await handle.executeUpdate(decideAllUpdate, { args: [{ approve: false, by: 'bob', reason: 'recorded reject' }] });
      await handle.result();
      const runs: string[] = [];
      for await (const e of h.env.client.workflow.list({ query: `WorkflowId = 'recorded'` })) runs.push(e.runId);
      runs.reverse(); // oldest first
      expectFirst(runs, firstRunId);
      for (const [i, runId] of runs.entries())
        await save(
          `upgrade-engine-${i + 1 < runs.length ? 'continued' : 'final'}-run${i + 1}-${VERSION}`,
          'recorded',
          runId
        );
      await save(`worker-cluster-approved-${VERSION}`, 'recorded/worker-1');
      await save(`worker-cluster-rejected-${VERSION}`, 'recorded/worker-2');
      await save(`worker-cluster-rolled-back-at-site-${VERSION}`, 'recorded/worker-3');
    })
  );
  await recordWaves();
  await recordGates();
  await recordClusterControl();
  console.log(`histories written to ${out.pathname}`);
} finally {
  await h.close();
}

/** v6: two waves with a soak, an approval ahead for site=east, the west cluster approved at its gate, a pause and resume. */
async function recordWaves(): Promise<void> {
  const fleet = fleetOf(3);
  fleet.workers = fleet.workers.map((w, i) => ({ ...w, labels: { site: i === 1 ? 'west' : 'east' } }));
  const fake = fakeFleetAt(fleet, '0.18.0', 200);
  const worker = await h.worker('record-waves', fake.activities());
  await worker.runUntil(async () => {
    const request = requestFor(fleet, { maxParallel: 2, batches: [1, 2], soakMs: 1_000 }, 'recorded-waves');
    const handle = await h.env.client.workflow.start(upgradeEngine, {
      taskQueue: 'record-waves',
      workflowId: 'recorded-waves',
      args: [{ request }],
    });
    await approveAhead(handle, 'site=east', 'alice');
    await waitForStatus(handle, (s) => s.rollout?.soakingUntil !== undefined);
    await handle.executeUpdate(pauseUpdate, { args: [{ by: 'bob', reason: 'recorded pause' }] });
    await new Promise((r) => setTimeout(r, 1_500));
    await handle.executeUpdate(resumeUpdate, { args: [{ by: 'bob' }] });
    await waitForStatus(handle, (s) => s.pendingApprovals.includes('worker-2'));
    await approveWaiting(handle, 'carol');
    await handle.result();
    await save(`upgrade-engine-waves-${VERSION}`, 'recorded-waves');
  });
}

/**
 * v7: worker-1 (tier=prod) needs two approvers: bob, then carol with a digest the cluster's change
 * has outdated (refused after the re-check, which also voids bob's), then bob and carol again; worker-2 is held and released;
 * worker-3 waits for a window opening at the next whole minute; reminders go to a webhook.
 */
async function recordGates(): Promise<void> {
  const hook = await startWebhookReceiver();
  const fleet: Fleet = {
    ...fleetOf(3),
    approvals: { rules: [{ select: 'tier=prod', distinct: 2 }], remindEveryMs: 2_000 },
    notify: { url: hook.url },
  };
  fleet.workers = fleet.workers.map((w, i) => ({ ...w, labels: { tier: i === 0 ? 'prod' : 'dev' } }));
  const opens = new Date(Math.ceil((Date.now() + 5_000) / 60_000) * 60_000);
  const day = (['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'] as const)[opens.getUTCDay()] as Weekday;
  const hhmm = `${String(opens.getUTCHours()).padStart(2, '0')}:${String(opens.getUTCMinutes()).padStart(2, '0')}`;
  fleet.windows = [{ clusters: ['worker-3'], days: [day], start: hhmm, durationMs: 3_600_000, timeZone: 'UTC' }];
  const fake = fakeFleetAt(fleet, '0.18.0', 100);
  const worker = await h.worker('record-gates', fake.activities());
  try {
    await worker.runUntil(async () => {
      const handle = await h.env.client.workflow.start(upgradeEngine, {
        taskQueue: 'record-gates',
        workflowId: 'recorded-gates',
        args: [{ request: requestFor(fleet, { maxParallel: 3, startedBy: 'erin' }, 'recorded-gates') }],
      });
      await handle.executeUpdate(holdUpdate, { args: [{ selector: 'tier=dev', by: 'bob', reason: 'recorded hold' }] });
      await waitForStatus(handle, (s) => s.pendingApprovals.includes('worker-1'));
      const w1 = h.env.client.workflow.getHandle('recorded-gates/worker-1');
      await approveGate(w1, 'worker-1', 'bob');
      const seen = (await w1.query(gateQuery)).gate?.digest as string;
      fake.crdChanges.set('worker-1', [
        { cluster: 'worker-1', crd: 'recorded.example.io', action: 'change', customResources: 0, conflicts: [] },
      ]);
      await w1
        .executeUpdate(decideCrdUpdate, { args: [{ cluster: 'worker-1', approve: true, by: 'carol', digest: seen }] })
        .then(
          () => {
            throw new Error('the outdated digest was accepted');
          },
          () => undefined
        );
      await new Promise((r) => setTimeout(r, 2_500)); // a reminder
      // bob's approval was of the old change: both approve the new one.
      await approveGate(w1, 'worker-1', 'bob');
      await approveGate(w1, 'worker-1', 'carol');
      await handle.executeUpdate(releaseUpdate, { args: [{ selector: 'tier=dev', by: 'bob' }] });
      await approveAhead(handle, 'tier=dev', 'dave');
      await handle.result();
      await save(`upgrade-engine-gates-${VERSION}`, 'recorded-gates');
      await save(`worker-cluster-two-approvers-${VERSION}`, 'recorded-gates/worker-1');
    });
  } finally {
    await hook.close();
  }
}

/**
 * v8: started with the Skoala* search attributes; worker-1 and worker-2 fail under `--on-failure
 * pause`; worker-1 is retried (its second child run is saved) and approved at its gate, worker-2
 * skipped; the pause lifts, worker-3 goes through its gate.
 */
async function recordClusterControl(): Promise<void> {
  const fleet = fleetOf(3);
  const fake = fakeFleetAt(fleet, '0.18.0', 100);
  fake.faults.set('upgradeRelease:worker-1', ['nonRetryable']);
  fake.faults.set('upgradeRelease:worker-2', ['nonRetryable']);
  const worker = await h.worker('record-control', fake.activities());
  await worker.runUntil(async () => {
    const request = requestFor(fleet, { maxParallel: 2, onFailure: 'pause' }, 'recorded-control');
    const handle = await h.env.client.workflow.start(upgradeEngine, {
      taskQueue: 'record-control',
      workflowId: 'recorded-control',
      args: [{ request }],
      typedSearchAttributes: startAttributes(fleet.name, request.options.targetVersion),
    });
    await waitForStatus(handle, (s) => s.failures.length === 2);
    await handle.executeUpdate(retryClusterUpdate, {
      args: [{ cluster: 'worker-1', by: 'bob', reason: 'recorded retry' }],
    });
    // Its gate opens (with its preview and what the upgrade changed): approved there.
    await waitForStatus(handle, (s) => s.pendingApprovals.includes('worker-1'));
    await approveWaiting(handle, 'alice');
    await waitForStatus(handle, (s) => s.workers[0]?.state === 'upgraded');
    await handle.executeUpdate(skipClusterUpdate, {
      args: [{ cluster: 'worker-2', by: 'bob', reason: 'recorded skip' }],
    });
    await waitForStatus(handle, (s) => s.pendingApprovals.includes('worker-3'));
    await approveWaiting(handle, 'alice');
    await handle.result();
    await save(`upgrade-engine-cluster-control-${VERSION}`, 'recorded-control');
    await save(`worker-cluster-retried-${VERSION}`, 'recorded-control/worker-1');
  });
}

/**
 * v9: the skipped-canary rule and a retried cluster that keeps its word (patches
 * `skipped-canary-goes-on`, `retried-cluster-always-starts`), each in one upgrade.
 */
async function recordRecovery(): Promise<void> {
  const canaryFleet = fleetOf(2);
  const canary = fakeFleetAt(canaryFleet, '0.18.0', 100);
  canary.faults.set('upgradeRelease:worker-1', ['nonRetryable']);
  const fleet = fleetOf(3);
  const fake = fakeFleetAt(fleet, '0.18.0', 100);
  fake.faults.set('upgradeRelease:worker-1', ['nonRetryable']);
  fake.faults.set('upgradeRelease:worker-2', ['nonRetryable']);
  const release2 = fake.hold('upgradeRelease', 'worker-2');
  await (
    await h.worker('record-canary', canary.activities())
  ).runUntil(async () => {
    const request = requestFor(canaryFleet, { onFailure: 'pause', canaries: ['worker-1'] }, 'recorded-canary');
    const handle = await h.env.client.workflow.start(upgradeEngine, {
      taskQueue: 'record-canary',
      workflowId: 'recorded-canary',
      args: [{ request }],
    });
    await approveAhead(handle, '', 'alice', 'recorded');
    await waitForStatus(handle, (s) => s.failures.length === 1);
    await handle.executeUpdate(skipClusterUpdate, {
      args: [{ cluster: 'worker-1', by: 'bob', reason: 'recorded skip' }],
    });
    await handle.result();
    await save(`upgrade-engine-skipped-canary-${VERSION}`, 'recorded-canary');
  });
  await (
    await h.worker('record-retry', fake.activities())
  ).runUntil(async () => {
    const request = requestFor(fleet, { maxParallel: 2, maxFailures: 0, onFailure: 'stop' }, 'recorded-retry');
    const handle = await h.env.client.workflow.start(upgradeEngine, {
      taskQueue: 'record-retry',
      workflowId: 'recorded-retry',
      args: [{ request }],
    });
    await approveAhead(handle, '', 'alice', 'recorded');
    await waitForStatus(handle, (s) => s.workers[0]?.state === 'failed' && s.workers[1]?.state === 'running');
    await handle.executeUpdate(pauseUpdate, { args: [{ by: 'dave', reason: 'recorded pause' }] });
    await handle.executeUpdate(retryClusterUpdate, { args: [{ cluster: 'worker-1', by: 'bob' }] });
    release2();
    await waitForStatus(handle, (s) => s.workers[1]?.state === 'failed');
    await handle.executeUpdate(resumeUpdate, { args: [{ by: 'dave' }] });
    await handle.result();
    await save(`upgrade-engine-retry-keeps-its-word-${VERSION}`, 'recorded-retry');
  });
  await recordGateDeadline();
}

/**
 * v9: the gate's deadline firing while an approval's re-check of the preview runs (patch
 * `gate-deadline-waits-for-check`): the approval decides, the child's history holds both.
 */
async function recordGateDeadline(): Promise<void> {
  const gateFleet: Fleet = {
    ...fleetOf(1),
    approvals: { deadlineMs: 3_000, onDeadline: 'fail', remindEveryMs: 60_000 },
  };
  const gate = fakeFleetAt(gateFleet, '0.18.0', 100);
  await (
    await h.worker('record-deadline', gate.activities())
  ).runUntil(async () => {
    const request = requestFor(gateFleet, {}, 'recorded-deadline');
    const handle = await h.env.client.workflow.start(upgradeEngine, {
      taskQueue: 'record-deadline',
      workflowId: 'recorded-deadline',
      args: [{ request }],
    });
    await waitForStatus(handle, (s) => s.pendingApprovals.includes('worker-1'), 30_000);
    const child = h.env.client.workflow.getHandle('recorded-deadline/worker-1');
    const digest = (await child.query(gateQuery)).gate?.digest;
    const release = gate.hold('previewCrdChanges', 'worker-1');
    const answer = child.executeUpdate(decideCrdUpdate, {
      args: [{ cluster: 'worker-1', approve: true, by: 'alice', ...(digest ? { digest } : {}) }],
    });
    await new Promise((r) => setTimeout(r, 4_000));
    release();
    const told = await answer;
    if (!told.startsWith('worker-1: CRD step approved by alice')) throw new Error(`told: ${told}`);
    await handle.result();
    await save(`worker-cluster-deadline-waits-for-check-${VERSION}`, 'recorded-deadline/worker-1');
  });
}
