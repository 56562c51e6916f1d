/**
 * Records workflow histories for the replay test: `npx tsx test/workflow/record-histories.ts`.
 * Run it when a workflow change is released, and keep the old files: replaying them against the
 * new code is what proves the change is safe for upgrades already running (use patched() if not).
 */
import { execa } from 'execa';
import { readFile, writeFile } from 'node:fs/promises';
import { toolPaths } from '../../sandbox/tools';
import { upgradeEngine } from '../../workflows';
import { decideAllUpdate, decideCrdUpdate } from '../../workflows/messages';
import { startHarness, waitForStatus } from './harness';
import { fakeFleetAt, fleetOf, requestFor } from './request';

const out = new URL('../histories/', import.meta.url);
const h = await startHarness();
try {
  const fleet = fleetOf(3);
  const fake = fakeFleetAt(fleet, '0.18.0');
  fake.faults.set('upgradeRelease:worker-3', ['retryable', 'nonRetryable']);
  const worker = await h.worker('record', fake.activities());
  await worker.runUntil(async () => {
    const request = requestFor(fleet, { maxParallel: 3 }, 'recorded');
    const handle = await h.env.client.workflow.start(upgradeEngine, {
      taskQueue: 'record',
      workflowId: 'recorded',
      args: [{ request }],
    });
    await waitForStatus(handle, (s) => s.pendingApprovals.length === 2);
    const child = (name: string) => h.env.client.workflow.getHandle(`recorded/${name}`);
    await child('worker-1').executeUpdate(decideCrdUpdate, {
      args: [{ cluster: 'worker-1', approve: true, by: 'alice' }],
    });
    await handle.executeUpdate(decideAllUpdate, { args: [{ approve: false, by: 'bob', reason: 'recorded reject' }] });
    await handle.result();
    // The same JSON an operator gets from `temporal workflow show -o json` on a real cluster.
    // Replay needs the workflow ID too (children's IDs derive from it): kept in ids.json.
    const ids: Record<string, string> = JSON.parse(await readFile(new URL('ids.json', out), 'utf8').catch(() => '{}'));
    const save = async (name: string, workflowId: string) => {
      const show = await execa(toolPaths().temporal, [
        'workflow',
        'show',
        '--workflow-id',
        workflowId,
        '--address',
        h.env.address,
        '-o',
        'json',
      ]);
      await writeFile(new URL(`${name}.json`, out), show.stdout);
      ids[`${name}.json`] = workflowId;
      await writeFile(new URL('ids.json', out), `${JSON.stringify(ids, null, 2)}\n`);
    };
    await save('upgrade-engine-v1', 'recorded');
    await save('worker-cluster-approved-v1', 'recorded/worker-1');
    await save('worker-cluster-rejected-v1', 'recorded/worker-2');
    await save('worker-cluster-failed-v1', 'recorded/worker-3');
  });
  console.log(`histories written to ${out.pathname}`);
} finally {
  await h.close();
}
