/**
 * Fan-out benchmark: `npm run bench -- --clusters 1000 --max-parallel 50`. Measures how the
 * orchestration scales with the fleet (a real dev server, instant activity doubles, so the
 * figures are Temporal's and the workflows', not helm's): wall time, clusters per minute, how
 * many runs continue-as-new made, the largest parent history, the worker process's peak RSS.
 * Prints figures; asserts nothing.
 */
import { DefaultLogger, Runtime } from '@temporalio/worker';
import { Command } from 'commander';
import { upgradeEngine } from '../../workflows';

import { approveWaiting } from '../workflow/approve';
import { startHarness } from '../workflow/harness';
import { fakeFleetAt, fleetOf, requestFor } from '../workflow/request';

const o = new Command('bench')
  .option('--clusters <n>', 'worker clusters', '200')
  .option('--max-parallel <n>', 'children at once', '50')
  .option('--children-per-run <n>', 'continue-as-new after this many children', '200')
  .parse()
  .opts<{ clusters: string; maxParallel: string; childrenPerRun: string }>();

Runtime.install({ logger: new DefaultLogger('ERROR') }); // one line per approval would drown the figures
const h = await startHarness();
let peakRss = 0;
const sampler = setInterval(() => (peakRss = Math.max(peakRss, process.memoryUsage().rss)), 200);
try {
  const fleet = fleetOf(Number(o.clusters));
  const fake = fakeFleetAt(fleet, '0.18.0');
  const base = requestFor(fleet, { maxParallel: Number(o.maxParallel) }, `bench-${Date.now()}`);
  const request = {
    ...base,
    tuning: { ...base.tuning, approvalReminder: '1 hour', childrenPerRun: Number(o.childrenPerRun) },
  };
  const worker = await h.worker('bench', fake.activities());
  const t0 = Date.now();
  const result = await worker.runUntil(async () => {
    const handle = await h.env.client.workflow.start(upgradeEngine, {
      taskQueue: 'bench',
      workflowId: request.upgradeId,
      args: [{ request }],
    });
    let done = false;
    const approver = (async () => {
      while (!done) {
        await approveWaiting(handle, 'bench').catch(() => undefined);
        await new Promise((r) => setTimeout(r, 250));
      }
    })();
    const r = await handle.result();
    done = true;
    await approver;
    return r;
  });
  const seconds = (Date.now() - t0) / 1000;
  const runs: number[] = [];
  let largest: Record<string, number> = {};
  for await (const e of h.env.client.workflow.list({ query: `WorkflowId = '${request.upgradeId}'` })) {
    const events = (await h.env.client.workflow.getHandle(e.workflowId, e.runId).fetchHistory()).events ?? [];
    if (events.length > Math.max(0, ...runs)) {
      largest = {};
      for (const ev of events) {
        const type = String(ev.eventType ?? '?').replace('EVENT_TYPE_', '');
        largest[type] = (largest[type] ?? 0) + 1;
      }
    }
    runs.push(events.length);
  }
  console.log(
    `clusters:                ${o.clusters} (+1 control plane), max parallel ${o.maxParallel}, continue-as-new every ${o.childrenPerRun}`
  );
  console.log(`outcomes:                ${JSON.stringify(result.counts)}`);
  console.log(
    `wall time:               ${seconds.toFixed(1)} s (${((Number(o.clusters) / seconds) * 60).toFixed(0)} clusters/min)`
  );
  console.log(`activity executions:     ${fake.calls.length}`);
  console.log(
    `parent runs:             ${runs.length}; largest parent history: ${Math.max(...runs)} events (target < 4,096 per run; server limit 51,200)`
  );
  console.log(
    `  its events by type:    ${Object.entries(largest)
      .sort((a, b) => b[1] - a[1])
      .map(([t, n]) => `${t} ${n}`)
      .join(', ')}`
  );
  console.log(`worker+client peak RSS:  ${(peakRss / 2 ** 20).toFixed(0)} MiB`);
} finally {
  clearInterval(sampler);
  await h.close();
}
