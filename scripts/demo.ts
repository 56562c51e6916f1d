/**
 * `npm run demo [-- --yes] [--workers N]`: the whole product on one machine. An embedded Temporal
 * dev server with its UI, a worker, sandbox clusters at 0.18.0; starts the upgrade to 0.19.2, shows
 * progress, stops at the approval gate (or approves by itself with --yes), prints the result.
 * Without --yes everything stays up after the upgrade ends, to explore it in the Temporal UI, until
 * Ctrl-C; with --yes the demo exits. Ctrl-C stops everything it started. The Temporal server's own
 * log goes to a file in the demo's folder (kept after exit), never to the terminal.
 */
import { DefaultLogger, Runtime } from '@temporalio/worker';
import { Command } from 'commander';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { approve } from './commands/approve';
import { buildRequest } from './commands/plan';
import { writeReport } from './commands/report';
import { startUpgrade } from './commands/start-upgrade';
import { EXIT, ExitError } from './lib/errors';
import { follow } from './lib/follow';
import { startLocalStack, type LocalStack } from './lib/local-stack';
import { renderStatus } from './lib/render';
import { workflowUrl } from './lib/temporal';
import { ensureTools, SANDBOX_NAMESPACE } from '../sandbox';
import { DEFAULT_TOOLS, NODE_TOOLS } from '../sandbox/tools';
import { settledPodLines } from './lib/demo-pods';
import { freePort } from '../sandbox/procs';

const opts = new Command('demo')
  .option('--yes', 'approve the CRD step by itself')
  .option('--workers <n>', 'worker clusters', '3')
  .option('--from <version>', 'version installed first', '0.18.0')
  .option(
    '--to <version>',
    'target version (0.19.3 and 0.28.2 are bad versions: a workload never becomes ready)',
    '0.19.2'
  )
  .option('--canary <n|names>', 'worker clusters that go first (as start-upgrade)')
  .option('--max-failures <n|p%>', 'failed worker clusters tolerated (as start-upgrade)')
  .option('--on-failure <policy>', 'rollback, stop or pause (as start-upgrade)')
  // The sandbox's workload stand-in rolls a healthy release out in a second: a bad one is known fast.
  .option('--health-timeout <duration>', 'as start-upgrade', '30s')
  .option(
    '--site-registry',
    "charts and images from a stand-in for the site's Harbor: an OCI registry with TLS and a robot account, images checked at preflight (0.27.2 lacks one)"
  )
  .option(
    '--real-nodes',
    'a real node per cluster (containerd + kubelet): pods really run the fixture images, and a bad version crashes for real'
  )
  .parse()
  .opts<{
    yes?: boolean;
    workers: string;
    from: string;
    to: string;
    canary?: string;
    maxFailures?: string;
    onFailure?: string;
    healthTimeout: string;
    siteRegistry?: boolean;
    realNodes?: boolean;
  }>();

// The worker's INFO lines would drown the demo's own progress.
Runtime.install({ logger: new DefaultLogger('WARN') });

const say = (line: string) => console.log(`[demo] ${line}`);
let stack: LocalStack | undefined;
let stopping = false;
async function shutdown(code: number): Promise<never> {
  if (!stopping) {
    stopping = true;
    say('stopping the worker, the clusters and Temporal...');
    await stack?.stop();
  }
  process.exit(code);
}
process.on('SIGINT', () => void shutdown(130));
process.on('SIGTERM', () => void shutdown(143));

try {
  const workers = Number(opts.workers);
  if (!Number.isInteger(workers) || workers < 1 || workers > 20)
    throw new ExitError(`--workers "${opts.workers}" must be from 1 to 20`);
  say('tools (first run builds kube-apiserver and kine: minutes; later runs: seconds)');
  await ensureTools({ log: (l) => say(l), only: opts.realNodes ? [...DEFAULT_TOOLS, ...NODE_TOOLS] : DEFAULT_TOOLS });
  const uiPort = await freePort();
  // Its own folder, kept after exit: the Temporal server's log (and the report) stay readable.
  const dir = await mkdtemp(path.join(tmpdir(), 'skoala-demo-'));
  say(`starting Temporal, ${workers + 1} clusters and the chart repository; installing ${opts.from}...`);
  stack = await startLocalStack({
    workers,
    installVersion: opts.from,
    customValues: true,
    uiPort,
    dir,
    ...(opts.siteRegistry ? { siteRegistryVersions: [...new Set([opts.from, opts.to])] } : {}),
    ...(opts.realNodes ? { realNodes: true } : {}),
    log: () => {},
  });
  const showPods = async (when: string) => {
    if (!opts.realNodes || !stack) return;
    say(`pods ${when}:`);
    for (const line of await settledPodLines(stack.sandbox, SANDBOX_NAMESPACE)) say(`  ${line}`);
  };
  await showPods(`at ${opts.from}`);
  await stack.startWorker();
  const t = stack.env;
  say(`Temporal UI: ${t.uiUrl}`);
  say(`Temporal server log: ${stack.temporalLog}`);
  say(`fleet file: ${stack.fleetFile}`);

  const request = await buildRequest({
    version: opts.to,
    fleet: stack.fleetFile,
    canary: opts.canary,
    maxFailures: opts.maxFailures,
    onFailure: opts.onFailure,
    healthTimeout: opts.healthTimeout,
  });
  const started = await startUpgrade(request, stack.temporal.client, t);
  say(`started ${started.workflowId}: ${workflowUrl(t, started.workflowId)}`);
  let told = false;
  const end = await follow(stack.temporal.client, started.workflowId, {
    untilApproval: false,
    out: (l) => say(l),
    onStatus: async (s) => {
      if (s.pendingApprovals.length === 0) return;
      if (opts.yes) {
        const r = await approve(
          { all: true, by: 'demo --yes', reason: 'demo', workflowId: started.workflowId },
          stack!.temporal.client
        ).catch(() => undefined);
        if (r) say(`approved the CRD step of ${r.clusters.join(', ')}`);
      } else if (!told) {
        told = true;
        say('waiting for approval of the CRD re-apply. In another terminal, run:');
        say(
          `  TEMPORAL_ADDRESS=${t.address} npm run approve -- --workflow-id ${started.workflowId} --all --by "$USER"`
        );
        say('  (or --cluster worker-1; add --reject to skip the CRD step; or use the Temporal UI / temporal CLI)');
      }
    },
  });
  await showPods('now');
  let code: number;
  if (end.kind === 'failed') {
    say(`upgrade failed: ${end.message}`);
    code = EXIT.upgradeFailed;
  } else {
    if (end.status) console.log(renderStatus(end.status));
    const stoppedEarly = end.status?.workers.filter((w) => w.state === 'not-started').length ?? 0;
    if (stoppedEarly > 0)
      say(`the rollout stopped early: ${stoppedEarly} worker cluster(s) not started (see the table)`);
    const ok = end.kind === 'completed' && end.result.counts.upgraded === workers + 1;
    code = ok ? EXIT.ok : EXIT.upgradeFailed;
  }
  // The run report (plan, per-cluster timeline, approvals, failures) next to the server log. A
  // report that cannot be written does not change how the upgrade ended.
  try {
    const report = await writeReport(stack.temporal.client, started.workflowId, path.join(dir, 'report.html'));
    say(`report: ${report.file}`);
  } catch (err) {
    say(`report not written: ${err instanceof Error ? err.message : String(err)}`);
  }
  if (!opts.yes) {
    // To explore the ended upgrade in the UI: its histories, current details, search attributes.
    say(`Temporal UI: ${t.uiUrl}`);
    say(`the upgrade ended; the Temporal UI stays up at ${workflowUrl(t, started.workflowId)} until Ctrl-C`);
    // The SIGINT handler ends the process; the interval keeps the event loop (and top-level await) alive.
    await new Promise<never>(() => setInterval(() => undefined, 1 << 30));
  }
  await shutdown(code);
} catch (err) {
  // Ctrl-C while following: the stack going away fails the follow loop. That is the clean stop
  // under way (its handler exits when everything is stopped), not an error to print.
  if (stopping) await new Promise<never>(() => setInterval(() => undefined, 1 << 30));
  console.error(
    `demo: ${err instanceof ExitError ? err.message : err instanceof Error ? (err.stack ?? err.message) : String(err)}`
  );
  await shutdown(err instanceof ExitError ? err.exitCode : EXIT.upgradeFailed);
}
