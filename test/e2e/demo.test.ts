/**
 * `npm run demo`: the README's "run it" command, as a person runs it. It must finish with every
 * cluster upgraded (--yes) with none of the Temporal server's own log lines in its output, and
 * without --yes stay up after the upgrade until Ctrl-C, which must leave no process behind.
 */
import { execa } from 'execa';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { defaultPayloadConverter, type Payload } from '@temporalio/common';
import { afterAll, describe, expect, it } from 'vitest';
import {
  launchBrowser,
  userMetadata,
  visibleText,
  waitForText,
  workflowListUrl,
  workflowUrl,
} from '../helpers/browser';

const SERVERS = /kine|kube-apiserver|temporal server start-dev|registry serve/;
/**
 * Every process a demo run starts inherits this variable, with a value of the run's own: servers
 * of other runs on the machine (other test files, other people's) are not counted.
 */
const RUN_MARK = 'SKOALA_DEMO_TEST_RUN';
let runs = 0;
const newMark = () => `${process.pid}-${++runs}`;

/** Command lines of the sandbox's and Temporal's server processes of this run now running. */
function serverProcesses(mark: string): Set<string> {
  const found = new Set<string>();
  for (const pid of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    try {
      const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ');
      if (!SERVERS.test(cmdline)) continue;
      if (readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0').includes(`${RUN_MARK}=${mark}`))
        found.add(`${pid} ${cmdline}`);
    } catch {
      // the process ended while we looked
    }
  }
  return found;
}

const demo = (args: string[], mark = newMark()) =>
  execa(process.execPath, ['--import', 'tsx', 'scripts/demo.ts', ...args], {
    reject: false,
    all: true,
    env: { CI: 'true', [RUN_MARK]: mark },
  });

/** A Temporal server log line: `--log-format pretty` (`time=... level=WARN msg=...`) or JSON. */
const SERVER_LOG_LINE = /level=(DEBUG|INFO|WARN|ERROR)\b|"level":/;
/** The banner `temporal server start-dev` prints on its stdout. */
const SERVER_BANNER = /Temporal CLI \d|Temporal Server: /;

/** The demo keeps its folder (server log, report) after exit: the tests remove theirs (found first thing). */
const demoDirs = new Set<string>();
function serverLogOf(out: string): string {
  const file = /\[demo\] Temporal server log: (\S+)/.exec(out)?.[1];
  expect(file, out).toBeDefined();
  demoDirs.add(path.dirname(file!));
  return file!;
}
afterAll(async () => {
  for (const dir of demoDirs) await rm(dir, { recursive: true, force: true });
});

/**
 * The Temporal UI while worker-1 waits at its gate, in Debian's chromium: the workflow list filtered
 * by SkoalaPhase finds the upgrade (and a filter on another phase does not), the parent's current
 * details name the waiting cluster and the approve command, the child's history shows its activity
 * summaries in the order they ran. Screenshots go to test-output/screenshots/.
 */
async function checkUiAtTheGate(ui: string, address: string): Promise<void> {
  const connection = await Connection.connect({ address });
  const browser = await launchBrowser();
  try {
    const client = new Client({ connection });
    const id = 'skoala-upgrade-sandbox';
    const list = await browser.open(
      workflowListUrl(ui, 'SkoalaPhase = "waiting-approval" AND SkoalaWaitingApproval = "worker-1"')
    );
    await waitForText(list, id, 30_000);
    await browser.screenshot(list, 'ui-list-waiting-approval');
    expect(await visibleText(list)).toContain('upgradeEngine');
    const other = await browser.open(workflowListUrl(ui, 'SkoalaPhase = "done"'));
    await waitForText(other, 'No Workflows Found', 30_000);

    const parentRun = (await client.workflow.getHandle(id).describe()).runId;
    const parent = await browser.open(workflowUrl(ui, id, parentRun, 'user-metadata'));
    const details = await userMetadata(parent, 'current-details', 30_000);
    await browser.screenshot(parent, 'ui-parent-current-details');
    expect(details).toContain('phase waiting-approval');
    expect(details).toMatch(/worker-1\s+CRD approval sha256:[0-9a-f]{12}/);
    expect(details).toContain(`npm run approve -- --workflow-id ${id} --cluster worker-1 --by NAME`);

    const childId = `${id}/worker-1`;
    const childHandle = client.workflow.getHandle(childId);
    const summaries = ((await childHandle.fetchHistory()).events ?? [])
      .filter((e) => e.activityTaskScheduledEventAttributes)
      .flatMap((e) =>
        e.userMetadata?.summary ? [defaultPayloadConverter.fromPayload<string>(e.userMetadata.summary as Payload)] : []
      );
    expect(summaries.length).toBeGreaterThan(3);
    const child = await browser.open(workflowUrl(ui, childId, (await childHandle.describe()).runId, 'history'));
    await waitForText(child, summaries.at(-1)!, 30_000);
    await browser.screenshot(child, 'ui-child-history');
    const text = await visibleText(child);
    const at = summaries.map((sm) => text.indexOf(sm));
    expect(
      at.every((i) => i >= 0),
      `${JSON.stringify(summaries)}\n${text}`
    ).toBe(true);
    // In the order they ran: the UI lists history oldest first or newest first; either way, consistently.
    const sorted = [...at].sort((a, b) => a - b);
    expect([at, [...at].reverse()]).toContainEqual(sorted);
  } finally {
    await browser.close();
    await connection.close();
  }
}

describe('npm run demo', () => {
  it('--yes upgrades every cluster, prints the UI link and the final table, and leaves no process', async () => {
    const mark = newMark();
    const run = await demo(['--yes', '--workers', '2'], mark);
    const log = serverLogOf(run.all);
    expect(run.exitCode, run.all).toBe(0);
    expect(run.all).toMatch(/\[demo\] Temporal UI: http:\/\/127\.0\.0\.1:\d+/);
    expect(run.all).toMatch(/approved the CRD step of worker-1/);
    expect(run.all).toMatch(/│ worker-2 +│ worker +│ upgraded +│ verifyRelease +│ 0\.18\.0 │ 0\.19\.2 │/);
    expect(serverProcesses(mark)).toEqual(new Set());
    // The server's log went to the file the demo named, not to its stdout or stderr; the same
    // patterns find the server's lines in that file (else the absence below proves nothing).
    expect(existsSync(log), log).toBe(true);
    const logText = readFileSync(log, 'utf8');
    expect(logText.split('\n').filter((l) => SERVER_LOG_LINE.test(l)).length, logText).toBeGreaterThan(0);
    expect(logText).toMatch(SERVER_BANNER);
    expect(run.all.split('\n').filter((l) => SERVER_LOG_LINE.test(l))).toEqual([]);
    expect(run.all).not.toMatch(SERVER_BANNER);
    // The run report, written next to the log.
    const report = /\[demo\] report: (\S+)/.exec(run.all)?.[1];
    expect(report, run.all).toBe(path.join(path.dirname(log), 'report.html'));
    const html = readFileSync(report!, 'utf8');
    expect(html).toMatch(/^<!doctype html>/i);
    // A timeline row per cluster, each upgraded; the approvals of the CRD steps, with who gave them.
    for (const c of ['control-plane', 'worker-1', 'worker-2'])
      expect(html).toMatch(
        new RegExp(`<div class="row"><div class="name"><b>${c}</b> <span class="badge[^"]*">upgraded</span>`)
      );
    const approvals = html.slice(html.indexOf('<h2>Approvals</h2>'), html.indexOf('<h3>Approval requests'));
    for (const c of ['worker-1', 'worker-2'])
      expect(approvals).toMatch(
        new RegExp(`<td>${c}</td><td><span class="badge[^"]*">approved</span></td><td>demo --yes</td>`)
      );
  });

  it('shows a bad version: --to 0.28.2 --canary 1, the canary fails its health check, is rolled back, no other starts', async () => {
    const run = await demo(['--yes', '--workers', '2', '--to', '0.28.2', '--canary', '1', '--health-timeout', '10s']);
    serverLogOf(run.all);
    expect(run.exitCode, run.all).toBe(1);
    expect(run.all).toMatch(
      /worker-1: rolled-back \(verifyWorkloads\): .*deployment\/skoala-agent: .*ProgressDeadlineExceeded.*; rolled back to revision 1/
    );
    expect(run.all).toMatch(/│ worker-1 +│ worker +│ rolled-back /);
    expect(run.all).toMatch(/│ worker-2 +│ worker +│ not-started .*│ not started: canary worker-1 ended rolled-back/);
    expect(run.all).toContain('[demo] the rollout stopped early: 1 worker cluster(s) not started (see the table)');
  });

  it('--real-nodes --from 0.19.2 --to 0.19.3: hive crashes in a real pod, skoala is rolled back, its 0.19.2 pods serve', async () => {
    const mark = newMark();
    const run = await demo(
      ['--yes', '--workers', '1', '--real-nodes', '--from', '0.19.2', '--to', '0.19.3', '--health-timeout', '20s'],
      mark
    );
    serverLogOf(run.all);
    expect(run.exitCode, run.all).toBe(1);
    const pods = run.all.split('\n').filter((l) => l.startsWith('[demo]   control-plane: '));
    expect(pods[0]).toBe('[demo]   control-plane: hive v0.19.2 ready, sesame v0.19.2 ready, ui v0.8.0 ready');
    expect(run.all).toMatch(
      /\[demo\] upgrade failed: control plane control-plane failed and was rolled back, no worker cluster was touched: .*deployment\/hive: .*pod hive-\S+: (CrashLoopBackOff|Error, exit 1)/
    );
    // The crashing 0.19.3 pod is gone with the rollback; the 0.19.2 ones serve.
    expect(pods.at(-1)).toBe('[demo]   control-plane: hive v0.19.2 ready, sesame v0.19.2 ready, ui v0.8.0 ready');
    expect(serverProcesses(mark)).toEqual(new Set());
  });

  it('--site-registry: charts and images from the Harbor stand-in; 0.27.2 is refused at preflight for its missing image', async () => {
    const mark = newMark();
    const run = await demo(['--yes', '--workers', '1', '--site-registry', '--to', '0.27.2'], mark);
    serverLogOf(run.all);
    expect(run.exitCode, run.all).toBe(1);
    expect(run.all).toMatch(
      /\[demo\] upgrade failed: preflight failed, nothing was changed: images missing from their registries: 127\.0\.0\.1:\d+\/skoala\/hive:v0\.27\.2 \(not found; needed by control-plane\)/
    );
    expect(serverProcesses(mark)).toEqual(new Set());
  });

  it('stops at the gate with the exact approve command; after the upgrade the UI stays up; Ctrl-C leaves no process behind', async () => {
    const mark = newMark();
    const child = demo(['--workers', '1'], mark);
    let out = '';
    const waiters: (() => void)[] = [];
    child.all?.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      for (const w of waiters) w();
    });
    /** Until the output matches; the match. */
    const waitFor = (re: RegExp, what: string) =>
      new Promise<RegExpExecArray>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no ${what}:\n${out}`)), 240_000);
        const check = () => {
          const m = re.exec(out);
          if (!m) return;
          clearTimeout(timer);
          resolve(m);
        };
        waiters.push(check);
        check();
      });
    serverLogOf((await waitFor(/\[demo\] Temporal server log: \S+/, 'server log path'))[0]);
    const prompt = await waitFor(
      /TEMPORAL_ADDRESS=(127\.0\.0\.1:\d+) npm run approve -- (--workflow-id skoala-upgrade-sandbox --all) --by "\$USER"/,
      'approval prompt'
    );
    // The positive control: the same search finds this run's servers while it runs.
    expect(serverProcesses(mark).size).toBeGreaterThan(0);
    const ui = (await waitFor(/\[demo\] Temporal UI: (http:\S+)/, 'UI link'))[1]!;
    await checkUiAtTheGate(ui, prompt[1]!);
    // The command exactly as printed, $USER as a shell would expand it.
    const approve = await execa('npm', ['run', '-s', 'approve', '--', ...prompt[2]!.split(' '), '--by', 'demo-test'], {
      env: { TEMPORAL_ADDRESS: prompt[1] },
      reject: false,
      all: true,
    });
    expect(approve.exitCode, approve.all).toBe(0);
    const ended = await waitFor(
      /\[demo\] the upgrade ended; the Temporal UI stays up at (http:\/\/127\.0\.0\.1:\d+\/namespaces\/default\/workflows\/skoala-upgrade-sandbox) until Ctrl-C/,
      'end of the upgrade'
    );
    expect(out).toMatch(
      /│ worker-1 +│ worker +│ upgraded +│ verifyRelease +│ 0\.18\.0 │ 0\.19\.2 │.*approved by demo-test/
    );
    // Still up: the UI answers, the server processes run, the demo has not exited.
    expect((await fetch(ended[1]!)).status).toBe(200);
    expect(serverProcesses(mark).size).toBeGreaterThan(0);
    expect(child.exitCode).toBeNull();
    child.kill('SIGINT');
    const run = await child;
    expect(run.exitCode).toBe(130);
    expect(serverProcesses(mark)).toEqual(new Set());
  }, 300_000);

  it('Ctrl-C at the gate is a clean stop: exit 130, no error line, no process left', async () => {
    const mark = newMark();
    const child = demo(['--workers', '1'], mark);
    let out = '';
    const atGate = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no approval prompt:\n${out}`)), 240_000);
      child.all?.on('data', (chunk: Buffer) => {
        out += chunk.toString();
        if (out.includes('waiting for approval of the CRD re-apply')) {
          clearTimeout(timer);
          resolve();
        }
      });
    });
    await atGate;
    serverLogOf(out);
    child.kill('SIGINT');
    const run = await child;
    expect(run.exitCode).toBe(130);
    expect(run.all).toContain('[demo] stopping the worker, the clusters and Temporal...');
    expect(run.all.split('\n').filter((l) => l.startsWith('demo: '))).toEqual([]);
    expect(serverProcesses(mark)).toEqual(new Set());
  }, 300_000);
});
