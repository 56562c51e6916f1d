/**
 * `npm run demo`: the README's "run it" command, as a person runs it. It must finish with every
 * cluster upgraded (--yes), and Ctrl-C at the gate must leave no process behind.
 */
import { execa } from 'execa';
import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';

const SERVERS = /kine|kube-apiserver|temporal server start-dev|registry serve/;

/** Command lines of the sandbox's and Temporal's server processes now running. */
function serverProcesses(): Set<string> {
  const found = new Set<string>();
  for (const pid of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    try {
      const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ');
      if (SERVERS.test(cmdline)) found.add(`${pid} ${cmdline}`);
    } catch {
      // the process ended while we looked
    }
  }
  return found;
}

const demo = (args: string[]) =>
  execa(process.execPath, ['--import', 'tsx', 'scripts/demo.ts', ...args], {
    reject: false,
    all: true,
    env: { CI: 'true' },
  });

describe('npm run demo', () => {
  it('--yes upgrades every cluster, prints the UI link and the final table, and leaves no process', async () => {
    const before = serverProcesses();
    const run = await demo(['--yes', '--workers', '2']);
    expect(run.exitCode, run.all).toBe(0);
    expect(run.all).toMatch(/\[demo\] Temporal UI: http:\/\/127\.0\.0\.1:\d+/);
    expect(run.all).toMatch(/approved the CRD step of worker-1/);
    expect(run.all).toMatch(/│ worker-2 +│ worker +│ upgraded +│ +│ 0\.18\.0 │ 0\.19\.2 │/);
    expect(serverProcesses()).toEqual(before);
  });

  it('shows a bad version: --to 0.28.2 --canary 1, the canary fails its health check, is rolled back, no other starts', async () => {
    const run = await demo(['--yes', '--workers', '2', '--to', '0.28.2', '--canary', '1', '--health-timeout', '10s']);
    expect(run.exitCode, run.all).toBe(1);
    expect(run.all).toMatch(
      /worker-1: rolled-back: .*deployment\/skoala-agent: .*ProgressDeadlineExceeded.*; rolled back to revision 1/
    );
    expect(run.all).toMatch(/│ worker-1 +│ worker +│ rolled-back /);
    expect(run.all).toMatch(/│ worker-2 +│ worker +│ not-started .*│ not started: canary worker-1 ended rolled-back/);
    expect(run.all).toContain('[demo] the rollout stopped early: 1 worker cluster(s) not started (see the table)');
  });

  it('--site-registry: charts and images from the Harbor stand-in; 0.27.2 is refused at preflight for its missing image', async () => {
    const before = serverProcesses();
    const run = await demo(['--yes', '--workers', '1', '--site-registry', '--to', '0.27.2']);
    expect(run.exitCode, run.all).toBe(1);
    expect(run.all).toMatch(
      /\[demo\] upgrade failed: preflight failed, nothing was changed: images missing from their registries: 127\.0\.0\.1:\d+\/skoala\/hive:v0\.27\.2 \(not found; needed by control-plane\)/
    );
    expect(serverProcesses()).toEqual(before);
  });

  it('stops at the gate with the exact approve command; Ctrl-C leaves no process behind', async () => {
    const before = serverProcesses();
    const child = demo(['--workers', '1']);
    let out = '';
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no approval prompt:\n${out}`)), 240_000);
      child.all?.on('data', (chunk: Buffer) => {
        out += chunk.toString();
        if (out.includes('--all --by "$USER"')) {
          clearTimeout(timer);
          resolve();
        }
      });
    });
    expect(out).toMatch(
      /TEMPORAL_ADDRESS=127\.0\.0\.1:\d+ npm run approve -- --workflow-id skoala-upgrade-sandbox --all --by "\$USER"/
    );
    expect(serverProcesses().size).toBeGreaterThan(before.size);
    child.kill('SIGINT');
    const run = await child;
    expect(run.exitCode).toBe(130);
    expect(serverProcesses()).toEqual(before);
  });
});
