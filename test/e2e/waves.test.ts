/**
 * A large-fleet rollout on real clusters, small: the fleet file labels the workers by site,
 * `--select site=east` upgrades only the east ones, in two waves (`--batches 1,100%`) with a soak
 * between them, approved ahead for all, so nobody waits at a gate. Then the rest of the fleet goes
 * to the same version, and the east clusters show as already at the target.
 */
import type { Client } from '@temporalio/client';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { approve } from '../../scripts/commands/approve';
import { buildRequest } from '../../scripts/commands/plan';
import { startUpgrade } from '../../scripts/commands/start-upgrade';
import { startLocalStack, type LocalStack } from '../../scripts/lib/local-stack';
import { writeFleetFile } from '../../sandbox';
import { waitForStatus } from '../workflow/harness';
import { kube, NS } from './kube';

let stack: LocalStack;
let client: Client;
let k: ReturnType<typeof kube>;
let fleetFile: string;
const SOAK_MS = 4_000;
const SITES: Record<string, string> = { 'worker-1': 'east', 'worker-2': 'east', 'worker-3': 'west' };

beforeAll(async () => {
  stack = await startLocalStack({ workers: 3, installVersion: '0.18.0', log: () => {} });
  await stack.startWorker();
  client = stack.temporal.client;
  k = kube(stack);
  const ref = (c: (typeof stack.sandbox.workers)[number]) => ({
    name: c.name,
    kubeconfig: c.kubeconfig,
    context: c.context,
    labels: { site: SITES[c.name] as string, tier: 'prod' },
  });
  fleetFile = await writeFleetFile(stack.sandbox, path.join(stack.sandbox.dir, 'labelled-fleet.yaml'), {
    workers: stack.sandbox.workers.map(ref),
  });
}, 300_000);
afterAll(async () => {
  await stack?.stop();
});

/** When helm recorded the newest revision of a worker's release (its `updated` time). */
async function lastUpdated(name: string): Promise<number> {
  const c = stack.sandbox.workers.find((w) => w.name === name) as (typeof stack.sandbox.workers)[number];
  const history = JSON.parse(await k.helm(c, ['history', 'skoala-init', '-n', NS, '-o', 'json'])) as {
    updated: string;
  }[];
  return Date.parse((history.at(-1) as { updated: string }).updated);
}

const chartOf = async (name: string) =>
  (await k.release(stack.sandbox.workers.find((w) => w.name === name) as never, 'skoala-init'))?.chart;

describe('waves, soak and a selector on sandbox clusters', () => {
  it('--select site=east --batches 1,100% --soak: east only, one wave after the other, the soak between', async () => {
    const request = await buildRequest({
      version: '0.19.2',
      fleet: fleetFile,
      select: 'site=east',
      batches: '1,100%',
      soak: '10s',
    });
    expect(request.fleet.workers.map((w) => w.name)).toEqual(['worker-1', 'worker-2']);
    expect(request.options).toMatchObject({ select: 'site=east', batches: [1, 1], soakMs: 10_000 });
    request.options.soakMs = SOAK_MS; // shorter than the CLI allows, to keep the suite fast
    request.tuning = { retryInitialInterval: '1s', retryMaximumAttempts: 10, approvalReminder: '10s' };
    const started = await startUpgrade(request, client, stack.env);
    const handle = client.workflow.getHandle(started.workflowId);
    // Approved ahead for every cluster of this upgrade: no gate waits for a person.
    await waitForStatus(handle, (s) => s.phase !== 'preflight', 60_000);
    await approve(
      { ahead: true, all: true, by: 'e2e', reason: 'fleet preview reviewed', workflowId: started.workflowId },
      client
    );
    const soaking = await waitForStatus(handle, (s) => s.rollout?.soakingUntil !== undefined, 120_000);
    expect(soaking.rollout).toMatchObject({ wave: 2, waves: 2 });
    expect(soaking.workers.find((w) => w.cluster === 'worker-1')?.state).toBe('upgraded');
    expect(soaking.workers.find((w) => w.cluster === 'worker-2')?.state).toBe('pending');

    const result = (await handle.result()) as { counts: { upgraded: number }; workers: { cluster: string }[] };
    expect(result.counts.upgraded).toBe(3); // control plane + the two east workers
    expect(result.workers.map((w) => w.cluster)).toEqual(['worker-1', 'worker-2']);
    // worker-2's upgrade came at least the soak after worker-1's (helm's own revision times).
    expect((await lastUpdated('worker-2')) - (await lastUpdated('worker-1'))).toBeGreaterThanOrEqual(SOAK_MS);
    expect(await chartOf('worker-3')).toBe('skoala-init-0.18.0');
  }, 300_000);

  it('the rest of the fleet to the same version: the east clusters are already at the target', async () => {
    const request = await buildRequest({ version: '0.19.2', fleet: fleetFile, select: 'site notin (east)' });
    request.tuning = { retryInitialInterval: '1s', retryMaximumAttempts: 10, approvalReminder: '10s' };
    const started = await startUpgrade(request, client, stack.env);
    const handle = client.workflow.getHandle(started.workflowId);
    await approve({ ahead: true, select: 'site=west', by: 'e2e', workflowId: started.workflowId }, client);
    const result = (await handle.result()) as {
      controlPlane: { outcome: string };
      workers: { cluster: string; outcome: string }[];
    };
    expect(result.controlPlane.outcome).toBe('already-at-target');
    expect(result.workers).toEqual([expect.objectContaining({ cluster: 'worker-3', outcome: 'upgraded' })]);
    expect(await chartOf('worker-3')).toBe('skoala-init-0.19.2');

    // And the whole fleet once more: every cluster is already there.
    const all = await buildRequest({ version: '0.19.2', fleet: fleetFile });
    const again = await startUpgrade(all, client, stack.env);
    const final = (await client.workflow.getHandle(again.workflowId).result()) as {
      workers: { cluster: string; outcome: string }[];
    };
    expect(final.workers.map((w) => [w.cluster, w.outcome])).toEqual([
      ['worker-1', 'already-at-target'],
      ['worker-2', 'already-at-target'],
      ['worker-3', 'already-at-target'],
    ]);
  }, 300_000);
});
