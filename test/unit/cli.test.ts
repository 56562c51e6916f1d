/**
 * Bad input on the command line: one clear line naming the problem, exit code 2, before any
 * connection is made (TEMPORAL_ADDRESS points nowhere, so reaching Temporal would fail with 3).
 */
import { execa } from 'execa';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { MAX_FLEET_FILE_BYTES, MAX_WORKER_CLUSTERS } from '../../runbook/fleet';

const cli = (args: string[]) =>
  execa(process.execPath, ['--import', 'tsx', 'scripts/cli.ts', ...args], {
    reject: false,
    env: { TEMPORAL_ADDRESS: '127.0.0.1:1' },
  });

let fleet: string;
let badFleet: string;
let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'cli-test-'));
  await writeFile(path.join(dir, 'kc'), 'apiVersion: v1\nkind: Config\n');
  fleet = path.join(dir, 'fleet.yaml');
  await writeFile(
    fleet,
    'name: prod\ncontrolPlane: { name: cp, kubeconfig: kc }\nworkers:\n  - { name: w1, kubeconfig: kc }\n'
  );
  badFleet = path.join(dir, 'bad.yaml');
  await writeFile(
    badFleet,
    'name: prod\ncontrolPlane: { name: cp, kubeconfig: kc }\nworkers:\n  - { name: w1, kubeconfig: kc }\n  - { name: w1, context: other }\n'
  );
});

// Each case is its own CLI process (a second or so apiece): they run side by side.
it.concurrent.for<[string[], string]>([
  [
    ['start-upgrade', '--version', '0.19.2 --set x=y'],
    'skoala-upgrade: --version "0.19.2 --set x=y" is not a version: expected MAJOR.MINOR.PATCH such as 0.19.2',
  ],
  [
    ['start-upgrade', '--version', '0.19.2', '--set', 'x=y'],
    "skoala-upgrade: unknown option '--set' (did you mean --select?)",
  ],
  [
    ['start-upgrade', '--version', 'v0.19.2'],
    'skoala-upgrade: --version "v0.19.2" is not a version: expected MAJOR.MINOR.PATCH such as 0.19.2',
  ],
  [['start-upgrade'], 'skoala-upgrade: --version is required, e.g. --version 0.19.2'],
  [
    ['start-upgrade', '--version', '0.19.2', '--fleet', '/nonexistent/fleet.yaml'],
    'skoala-upgrade: /nonexistent/fleet.yaml: cannot read the fleet file (ENOENT)',
  ],
  [
    ['start-upgrade', '--version', '0.19.2', '--max-parallel', '0'],
    'skoala-upgrade: --max-parallel "0" must be a whole number from 1 to 200',
  ],
  [
    ['start-upgrade', '--version', '0.19.2', '--db-migration', 'sometimes'],
    'skoala-upgrade: --db-migration "sometimes" must be auto, always or never',
  ],
  [['approve', '--all'], 'skoala-upgrade: --by NAME is required: approvals record who gave them'],
  [['approve', '--by', 'me'], 'skoala-upgrade: name one cluster with --cluster NAME, or pass --all'],
  [
    ['approve', '--cluster', 'Worker_1', '--by', 'me'],
    'skoala-upgrade: --cluster "Worker_1" is not a cluster name (lowercase letters, digits, "-")',
  ],
  [
    ['approve', '--cluster', 'w1', '--by', 'me', '--digest', 'abc123'],
    'skoala-upgrade: --digest "abc123" must be sha256:<hex> or at least its first 12 hex digits',
  ],
  [
    ['approve', '--cluster', 'w1', '--by', 'me', '--reject', '--digest', '0123456789ab'],
    'skoala-upgrade: --digest names what is approved: a rejection needs none',
  ],
  [['hold', '--by', 'me'], "skoala-upgrade: hold takes --select 'key=value,...' or --all"],
  [['hold', '--select', 'site in (east', '--by', 'me'], 'skoala-upgrade: --select: unbalanced "(" in "site in (east"'],
  [['hold', '--select', 'site=east'], 'skoala-upgrade: --by NAME is required: hold records who did it'],
  [
    ['release', '--select', 'a=b', '--all', '--by', 'me'],
    "skoala-upgrade: release takes --select 'key=value,...' or --all",
  ],
])('%j exits 2 with one line', async ([args, message], { expect }) => {
  const run = await cli(args);
  expect(run.stderr).toBe(message);
  expect(run.exitCode).toBe(2);
});

describe('fleet files', () => {
  it('an upgrade its starter would leave without enough approvers is refused before starting', async () => {
    const strict = path.join(dir, 'strict.yaml');
    await writeFile(
      strict,
      'name: prod\ncontrolPlane: { name: cp, kubeconfig: kc }\nworkers:\n  - { name: w1, kubeconfig: kc }\n' +
        'approvals: { approvers: [alice, bob], notStarter: true, rules: [{ select: "", distinct: 2 }] }\n'
    );
    const run = await cli(['start-upgrade', '--version', '0.19.2', '--fleet', strict, '--by', 'alice']);
    expect(run.stderr).toBe(
      `skoala-upgrade: ${strict}: approvals: alice may not approve an upgrade they start (approvals.notStarter), which leaves 1 approver(s) (bob) where 2 distinct are needed: let someone else start it`
    );
    expect(run.exitCode).toBe(2);
  });

  it('names the file, the field and the problem', async () => {
    const run = await cli(['start-upgrade', '--version', '0.19.2', '--fleet', badFleet]);
    expect(run.stderr).toBe(`skoala-upgrade: ${badFleet}: workers[1].name: duplicate cluster name "w1"`);
    expect(run.exitCode).toBe(2);
  });

  it('--db-migration always without a Job manifest is refused before starting', async () => {
    const run = await cli(['start-upgrade', '--version', '0.19.2', '--fleet', fleet, '--db-migration', 'always']);
    expect(run.stderr).toBe(
      `skoala-upgrade: ${fleet}: dbMigrationJob: --db-migration always needs the DB-migration Job manifest in the fleet file`
    );
    expect(run.exitCode).toBe(2);
  });

  it('a valid request goes on to Temporal, and says so when it is unreachable (exit 3)', async () => {
    const run = await cli(['start-upgrade', '--version', '0.19.2', '--fleet', fleet]);
    expect(run.stderr).toMatch(
      /^skoala-upgrade: cannot reach Temporal at 127\.0\.0\.1:1 \(set TEMPORAL_ADDRESS, and TEMPORAL_TLS_\* or TEMPORAL_API_KEY if it is secured\): /
    );
    expect(run.exitCode).toBe(3);
  });

  it('a fleet file over the size limit is refused by its size, at once', async () => {
    // 100,000 clusters: read, parsed and checked one by one, this took over 30 s before failing.
    const big = path.join(dir, 'big.yaml');
    const text = `name: prod\ncontrolPlane: { name: cp, kubeconfig: kc }\nworkers:\n${Array.from(
      { length: 100_000 },
      (_, i) => `  - { name: worker-${i}, kubeconfig: kc }\n`
    ).join('')}`;
    await writeFile(big, text);
    const size = Buffer.byteLength(text);
    expect(size).toBeGreaterThan(MAX_FLEET_FILE_BYTES);
    const run = await cli(['plan', '--version', '0.19.2', '--fleet', big]);
    expect(run.stderr).toBe(
      `skoala-upgrade: ${big}: the fleet file is ${(size / 2 ** 20).toFixed(1)} MiB (${size} bytes), more than the 4 MiB limit; split the fleet file`
    );
    expect(run.exitCode).toBe(2); // measured by hand: 1.8 s, mostly Node and tsx starting (was 33 s, then helm)
  });

  it('more workers than one upgrade takes is refused before any file or cluster is looked at', async () => {
    const many = path.join(dir, 'many.yaml');
    const n = MAX_WORKER_CLUSTERS + 1;
    await writeFile(
      many,
      `name: prod\ncontrolPlane: { name: cp, kubeconfig: kc }\nworkers:\n${Array.from(
        { length: n },
        (_, i) => `  - { name: w${i}, kubeconfig: missing-${i} }\n`
      ).join('')}`
    );
    const run = await cli(['start-upgrade', '--version', '0.19.2', '--fleet', many]);
    expect(run.stderr).toBe(
      `skoala-upgrade: ${many}: workers: ${n} clusters is more than the ${MAX_WORKER_CLUSTERS} one upgrade can take; split the fleet file`
    );
    expect(run.exitCode).toBe(2);
  });

  it('a chart repository URL that is not http(s) or oci is refused', async () => {
    const fileUrl = path.join(dir, 'file-url.yaml');
    await writeFile(
      fileUrl,
      'name: prod\nchartRepo: { name: skoala, url: "file:///etc" }\ncontrolPlane: { name: cp, kubeconfig: kc }\nworkers:\n  - { name: w1, kubeconfig: kc }\n'
    );
    const run = await cli(['start-upgrade', '--version', '0.19.2', '--fleet', fileUrl]);
    expect(run.stderr).toBe(
      `skoala-upgrade: ${fileUrl}: chartRepo.url: must be an http://, https:// or oci:// URL with a host (got "file:///etc")`
    );
    expect(run.exitCode).toBe(2);
  });
});
