/**
 * The skoala-upgrade CLI. This file only declares the commands and prints what they return; one
 * catch at the bottom turns errors into one line and an exit code.
 */
import { Command, CommanderError, Option } from 'commander';
import { approve, validateApprove } from './commands/approve';
import { cancel } from './commands/cancel';
import { retryOrSkip, validateClusterCommand } from './commands/retry-skip';
import { holdOrRelease, pauseOrResume, validateHold, validatePause } from './commands/pause-resume';
import { rollback } from './commands/rollback';
import { report, validateReport } from './commands/report';
import { buildRequest, plan } from './commands/plan';
import { startUpgrade } from './commands/start-upgrade';
import { status } from './commands/status';
import { EXIT, ExitError } from './lib/errors';
import { follow, type FollowEnd } from './lib/follow';
import { renderPlan, renderStatus } from './lib/render';
import { connectClient, temporalEnv } from './lib/temporal';

const print = (line: string) => console.log(line);
const json = (data: unknown) => console.log(JSON.stringify(data, null, 2));

const upgradeFlags = (cmd: Command) =>
  cmd
    .option('--version <version>', 'target engine version, e.g. 0.19.2 (skoala and skoala-init both go there)')
    .option('--fleet <file>', 'fleet file', 'fleet.yaml')
    .option('--allow-downgrade', 'allow a target older than an installed release')
    .option('--allow-install', 'install skoala / skoala-init where missing, instead of refusing')
    .addOption(
      new Option('--db-migration <mode>', 'run the DB-migration Job: auto (by the runbook rules), always, never')
    )
    .option('--ui-version <version>', 'set ui.image.tag (the UI has its own version line)')
    .option('--force-crd-reapply', 're-apply CRDs even where the chart manages them (>= 0.53.0)')
    .option('--max-parallel <n>', 'worker clusters upgraded at once (default 5)')
    .option('--health-timeout <duration>', 'how long workloads may take to roll out after each upgrade (default 10m)')
    .option(
      '--on-failure <policy>',
      'rollback (default: helm rollback a failed cluster), stop (leave it as it failed) or pause (leave it, pause the rollout and wait for retry, skip or resume)'
    )
    .option('--canary <n|names>', 'worker clusters that go first, all the way (a count or a comma list)')
    .option('--max-failures <n|p%>', 'failed worker clusters tolerated before no new one starts (default 0)')
    .option('--retry-failed', 'try again clusters an earlier run of this upgrade rolled back')
    .option('--select <selector>', "only worker clusters whose fleet-file labels match, e.g. 'site=east,tier!=prod'")
    .option('--batches <sizes>', 'upgrade in waves of these sizes, e.g. 1,5,25%,100% (the last size repeats)')
    .option('--soak <duration>', 'wait this long between two waves (durable timer), e.g. 30m')
    .option('--by <name>', 'who starts the upgrade (default: $USER); the fleet policy may bar them from approving it')
    .option('--json', 'print JSON');

/** Exit status of a followed upgrade: anything but a clean finish or a wait for approval is 1. */
function reportEnd(end: FollowEnd, workflowId: string): number {
  if (end.kind === 'failed') {
    print(`upgrade failed: ${end.message}`);
    return EXIT.upgradeFailed;
  }
  if (!end.onScreen && end.status) print(renderStatus(end.status));
  if (end.kind === 'cancelled') print('upgrade cancelled');
  if (end.kind === 'running' && end.waitingFor) {
    print('\nWaiting for approval of the CRD re-apply. Approve with one of:');
    for (const c of end.waitingFor)
      print(`  npm run approve -- --workflow-id ${workflowId} --cluster ${c} --by "$USER"`);
    print(
      `  npm run approve -- --workflow-id ${workflowId} --all --by "$USER"     (add --reject to skip the CRD step)`
    );
    return EXIT.ok;
  }
  const bad =
    end.kind === 'completed'
      ? end.result.counts.failed +
        end.result.counts['rolled-back'] +
        end.result.counts.rejected +
        end.result.counts.cancelled +
        end.result.counts['not-started'] +
        end.result.counts.skipped
      : end.kind === 'cancelled'
        ? 1
        : 0;
  return bad > 0 ? EXIT.upgradeFailed : EXIT.ok;
}

const program = new Command('skoala-upgrade').description(
  'Upgrade skoala and skoala-init across a fleet as one Temporal workflow'
);
program.exitOverride().configureOutput({ writeErr: () => {} });

upgradeFlags(program.command('start-upgrade').description('start (or attach to) the upgrade of a fleet'))
  .option('--follow', 'show progress until done or waiting for approval')
  .option('--dry-run', 'print the plan and start nothing')
  .action(async (opts) => {
    if (opts.dryRun) {
      const result = await plan(opts);
      if (result.images?.missing.length) process.exitCode = EXIT.upgradeFailed;
      return opts.json
        ? json(result)
        : print(renderPlan(result.plan, result.crds, result.images, { diffs: result.diffs }));
    }
    const request = await buildRequest(opts); // bad input fails here, before any connection
    const t = temporalEnv();
    const client = await connectClient(t);
    const started = await startUpgrade(request, client, t);
    if (opts.json && !opts.follow) return json(started);
    print(`${started.attached ? 'attached to the running upgrade' : 'started upgrade'} ${started.workflowId}`);
    print(`Temporal UI: ${started.url}`);
    if (started.searchAttributesMissing) console.error(`note: ${started.searchAttributesMissing}`);
    if (opts.follow) process.exitCode = reportEnd(await follow(client, started.workflowId), started.workflowId);
  });

upgradeFlags(program.command('plan').description('read the clusters and print the plan (read-only)'))
  .option('--diff', 'print the full unified diff of every changed resource and value (default: a compact summary)')
  .action(async (opts) => {
    const result = await plan(opts);
    // The plan is printed either way; exit 1 says the upgrade would be refused at preflight.
    if (result.images?.missing.length) process.exitCode = EXIT.upgradeFailed;
    if (opts.json) json(result);
    else print(renderPlan(result.plan, result.crds, result.images, { diffs: result.diffs, full: opts.diff }));
  });

program
  .command('approve')
  .description('approve (or --reject) the CRD re-apply of one cluster or of all waiting ones')
  .option('--cluster <name>', 'the worker cluster to decide')
  .option('--all', 'every cluster waiting now (with --ahead: every cluster, also those not there yet)')
  .option('--ahead', 'approve ahead of the gates: those waiting now and the others as they reach it')
  .option('--select <selector>', "with --ahead: the clusters whose labels match, e.g. 'site=east'")
  .option('--reject', 'skip the CRD step (the cluster ends "rejected")')
  .option('--by <name>', 'who decides (recorded in history and result)')
  .option('--reason <text>', 'why')
  .option(
    '--digest <sha256>',
    'the digest of the CRD change you saw (default: the one this command shows and approves)'
  )
  .option('--workflow-id <id>', 'the upgrade (default: the one running)')
  .option('--json', 'print JSON')
  .action(async (opts) => {
    validateApprove(opts);
    const client = await connectClient(temporalEnv());
    const result = await approve(opts, client);
    if (opts.json) return json(result);
    for (const w of result.approvedWhat)
      print(
        `${w.cluster}: ${w.digest}${w.preview ? `\n  ${w.preview}` : ''}${w.changes?.length ? `\n  what the upgrade changed:\n${w.changes.map((l) => `    ${l}`).join('\n')}` : ''}`
      );
    print(
      result.answer && !result.answer.includes('CRD step')
        ? `${result.answer} (${result.workflowId})`
        : `${result.approved ? 'approved' : 'rejected'} the CRD step of ${result.clusters.join(', ') || 'no cluster'} (${result.workflowId})`
    );
    for (const n of result.notDecided) print(`  not decided: ${n.cluster}: ${n.reason}`);
    if (result.ahead !== undefined)
      print(
        `  approved ahead for ${result.ahead === 'all' ? 'every cluster' : `clusters matching ${result.ahead}`}: their gates pass when they open`
      );
  });

for (const action of ['pause', 'resume'] as const)
  program
    .command(action)
    .description(
      action === 'pause'
        ? 'start no new worker cluster (those running finish) until resume'
        : 'start worker clusters again after a pause'
    )
    .option('--by <name>', 'who does it (recorded in history)')
    .option('--reason <text>', 'why')
    .option('--workflow-id <id>', 'the upgrade (default: the one running)')
    .action(async (opts) => {
      validatePause(opts);
      const { workflowId, answer } = await pauseOrResume(action, opts, await connectClient(temporalEnv()));
      print(`${workflowId}: ${answer}`);
    });

for (const action of ['hold', 'release'] as const)
  program
    .command(action)
    .description(
      action === 'hold'
        ? 'keep the worker clusters a selector matches from starting (those running go on) until release'
        : 'let held clusters start again: the hold with this --select, or --all holds'
    )
    .option('--select <selector>', "label selector, e.g. 'site=east' (as given to hold)")
    .option('--all', action === 'hold' ? 'every worker cluster' : 'every hold')
    .option('--by <name>', 'who does it (recorded in history)')
    .option('--reason <text>', 'why')
    .option('--workflow-id <id>', 'the upgrade (default: the one running)')
    .action(async (opts) => {
      validateHold(action, opts);
      const { workflowId, answer } = await holdOrRelease(action, opts, await connectClient(temporalEnv()));
      print(`${workflowId}: ${answer}`);
    });

for (const action of ['retry', 'skip'] as const)
  program
    .command(action)
    .description(
      action === 'retry'
        ? 'start a failed worker cluster again, without restarting the upgrade'
        : 'leave out a worker cluster that failed or has not started (it ends skipped)'
    )
    .option('--cluster <name>', 'the worker cluster')
    .option('--by <name>', 'who does it (recorded in history)')
    .option('--reason <text>', action === 'skip' ? 'why (required: status shows it)' : 'why')
    .option('--workflow-id <id>', 'the upgrade (default: the one running)')
    .action(async (opts) => {
      validateClusterCommand(action, opts);
      const { workflowId, answer } = await retryOrSkip(action, opts, await connectClient(temporalEnv()));
      print(`${workflowId}: ${answer}`);
    });

program
  .command('rollback')
  .description('put clusters back to the revision they had before the upgrade (refused where the release moved since)')
  .option('--cluster <name>', 'one cluster of the upgrade')
  .option('--all', 'every cluster the upgrade changed')
  .option('--by <name>', 'who asks (recorded)')
  .option('--workflow-id <id>', "the upgrade (default: this fleet's)")
  .option('--fleet <file>', 'fleet file', 'fleet.yaml')
  .option(
    '--after-db-restore',
    'the skoala database was restored from its pre-upgrade backup: roll back the control plane even though the DB-migration Job ran'
  )
  .option('--json', 'print JSON')
  .action(async (opts) => {
    const t = temporalEnv();
    const result = await rollback(opts, await connectClient(t), t);
    if (opts.json) return json(result);
    print(`${result.workflowId}:`);
    for (const r of result.results) print(`  ${r.cluster}: ${r.outcome}${r.error ? `: ${r.error}` : ''}`);
    if (result.results.some((r) => r.outcome === 'refused' || r.outcome === 'failed'))
      process.exitCode = EXIT.upgradeFailed;
  });

program
  .command('cancel')
  .description('cancel the upgrade: a running helm finishes, nothing new starts, every cluster ends in a named state')
  .option('--workflow-id <id>', 'the upgrade (default: the one running)')
  .option('--no-wait', 'return once the cancel is requested')
  .option('--json', 'print JSON')
  .action(async (opts) => {
    const result = await cancel(opts, await connectClient(temporalEnv()));
    if (opts.json) return json(result);
    print(`${result.workflowId}: ${result.status.toLowerCase()}`);
    if (result.final) print(renderStatus(result.final));
  });

program
  .command('status')
  .description("phase, each cluster's current step, pending approvals and failures")
  .option('--workflow-id <id>', 'the upgrade (default: the one running)')
  .option('--json', 'print JSON')
  .action(async (opts) => {
    const { workflowId, state } = await status(opts, await connectClient(temporalEnv()));
    if (opts.json) return json({ workflowId, ...state });
    if (state.kind === 'failed') print(`${workflowId}: failed: ${state.message}`);
    if (state.status) print(renderStatus(state.status));
    if (state.kind === 'running' && state.status.failures.length > 0) process.exitCode = EXIT.upgradeFailed;
  });

program
  .command('report')
  .description('write a self-contained HTML report of an upgrade (finished or running) from its workflow histories')
  .option('--workflow-id <id>', 'the upgrade (default: the one running)')
  .option('--out <file>', 'where to write it (default: skoala-report-<workflow id>.html in the current directory)')
  .option('--json', 'print JSON')
  .action(async (opts) => {
    validateReport(opts); // a bad --out fails here, before any connection
    const result = await report(opts, await connectClient(temporalEnv()));
    if (opts.json) return json(result);
    print(`${result.workflowId} (${result.status}): report of ${result.clusters} cluster(s) written to ${result.file}`);
  });

try {
  await program.parseAsync(process.argv);
  process.exit(process.exitCode ?? 0); // the Temporal connection would keep the process alive
} catch (err) {
  if (err instanceof CommanderError) {
    if (err.code === 'commander.helpDisplayed' || err.code === 'commander.help') process.exit(0);
    // One line: commander puts its "(Did you mean --x?)" on a second one.
    const oneLine = err.message
      .replace(/^error: /, '')
      .replace(/\s*\n\s*\(Did you mean/, ' (did you mean')
      .split('\n')[0];
    console.error(`skoala-upgrade: ${oneLine}`);
    process.exit(EXIT.badInput);
  }
  if (err instanceof ExitError) {
    console.error(`skoala-upgrade: ${err.message}`);
    process.exit(err.exitCode);
  }
  console.error(`skoala-upgrade: unexpected error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
  process.exit(EXIT.upgradeFailed);
}
