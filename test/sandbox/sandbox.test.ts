// The sandbox itself, with real binaries: kine + kube-apiserver clusters, the fixture chart repo,
// the Job stand-in, outages (stop/start) and process cleanup.
import { spawn } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { execa } from 'execa';
import { parse } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  DB_MIGRATION_JOB,
  SANDBOX_NAMESPACE,
  startJobStandIn,
  startSandbox,
  writeFleetFile,
  type Sandbox,
  type SandboxCluster,
} from '../../sandbox';
import { ensureTools, type ToolPaths } from '../../sandbox/tools';

const NS = SANDBOX_NAMESPACE;
const quiet = (): void => undefined;

/** pids of kine / kube-apiserver processes whose command line mentions dir. */
async function sandboxPids(dir: string): Promise<number[]> {
  const pids: number[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const cmd = await readFile(`/proc/${entry}/cmdline`, 'utf8').catch(() => '');
    if (cmd.includes(dir) && /kine|kube-apiserver/.test(cmd)) pids.push(Number(entry));
  }
  return pids;
}

let tools: ToolPaths;
let sb: Sandbox;
let dir: string;

const kubectl = (c: SandboxCluster, args: string[], reject = true) =>
  execa(tools.kubectl, ['--kubeconfig', c.kubeconfig, '--context', c.context, ...args], { reject, timeout: 60_000 });
const helm = (args: string[], reject = true) => execa(tools.helm, args, { env: sb.helmEnv, reject, timeout: 60_000 });

beforeAll(async () => {
  tools = await ensureTools({ log: quiet });
  dir = await mkdtemp(join(tmpdir(), 'skoala-sandbox-test-'));
  sb = await startSandbox({ workers: 1, installVersion: '0.18.0', customValues: true, dir, log: quiet });
});

afterAll(async () => {
  await sb?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('sandbox clusters', () => {
  it('start and answer kubectl with a v1.33.13 server', async () => {
    for (const c of [sb.controlPlane, ...sb.workers]) {
      expect(c.server).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
      const ns = await kubectl(c, ['get', 'ns', '-o', 'name']);
      expect(ns.stdout).toContain('namespace/default');
      const v = JSON.parse((await kubectl(c, ['version', '-o', 'json'])).stdout) as {
        serverVersion: { gitVersion: string };
      };
      expect(v.serverVersion.gitVersion).toBe('v1.33.13');
    }
    expect(sb.workers.map((w) => w.context)).toEqual(['worker-1']);
  });

  it('writes a fleet file that points at the clusters', async () => {
    const path = await writeFleetFile(sb, join(dir, 'fleet.yaml'));
    const fleet = parse(await readFile(path, 'utf8')) as Record<string, unknown>;
    expect(fleet).toMatchObject({
      name: 'sandbox',
      chartRepo: { name: 'skoala', url: sb.chartRepo.url },
      dbMigrationJob: DB_MIGRATION_JOB,
      controlPlane: { name: 'control-plane', kubeconfig: sb.controlPlane.kubeconfig, context: 'control-plane' },
      workers: [{ name: 'worker-1', kubeconfig: sb.workers[0]?.kubeconfig, context: 'worker-1' }],
    });
  });
});

describe('fixture charts', () => {
  it('the repo serves every version of both charts', async () => {
    await helm(['repo', 'add', 'skoala', sb.chartRepo.url]);
    const found = JSON.parse((await helm(['search', 'repo', 'skoala', '--versions', '-o', 'json'])).stdout) as {
      name: string;
      version: string;
      app_version: string;
    }[];
    for (const chart of ['skoala/skoala', 'skoala/skoala-init']) {
      const versions = found
        .filter((f) => f.name === chart)
        .map((f) => f.version)
        .sort();
      expect(versions).toEqual(['0.18.0', '0.19.2', '0.19.3', '0.27.2', '0.28.1', '0.28.2', '0.52.1', '0.53.0']);
    }
    expect(found.every((f) => f.version === f.app_version)).toBe(true);
    const shown = await helm(['show', 'chart', '--repo', sb.chartRepo.url, 'skoala-init', '--version', '0.28.1']);
    expect(shown.stdout).toContain('appVersion: 0.28.1');
    const crdsOf = async (v: string) => (await helm(['show', 'crds', 'skoala/skoala-init', '--version', v])).stdout;
    expect(await crdsOf('0.28.1')).not.toContain('mcpbridges.networking.higress.io');
    expect(await crdsOf('0.52.1')).toContain('mcpbridges.networking.higress.io');
  });

  it('installed 0.18.0 with custom values; skoala-init brought its CRDs with the version annotation', async () => {
    const w = sb.workers[0]!;
    const crds = JSON.parse((await kubectl(w, ['get', 'crd', '-o', 'json'])).stdout) as {
      items: { metadata: { name: string; annotations?: Record<string, string> } }[];
    };
    const names = crds.items.map((c) => c.metadata.name);
    expect(names).toEqual(
      expect.arrayContaining([
        'httpproxies.projectcontour.io',
        'gateways.gateway.networking.k8s.io',
        'udproutes.gateway.networking.k8s.io',
      ])
    );
    expect(names).toHaveLength(13); // 5 contour + 8 gateway-api, no higress before 0.52.1
    for (const c of crds.items)
      expect(c.metadata.annotations?.['fixtures.skoala-upgrade/chart-version']).toBe('0.18.0');
    const list = JSON.parse((await helm(['list', '-n', NS, '-o', 'json', '--kubeconfig', w.kubeconfig])).stdout) as {
      chart: string;
      app_version: string;
    }[];
    expect(list).toMatchObject([{ chart: 'skoala-init-0.18.0', app_version: '0.18.0' }]);
    const marker = await kubectl(w, [
      '-n',
      NS,
      'get',
      'cm',
      'skoala-init-marker',
      '-o',
      'jsonpath={.data.custom-marker}',
    ]);
    expect(marker.stdout).toBe('worker-1');
    const cp = sb.controlPlane;
    const pw = await kubectl(cp, ['-n', NS, 'get', 'secret', 'skoala-db', '-o', 'jsonpath={.data.password}']);
    expect(Buffer.from(pw.stdout, 'base64').toString()).toBe('s3cret-control-plane');
    const img = await kubectl(cp, [
      '-n',
      NS,
      'get',
      'deploy',
      'hive',
      '-o',
      'jsonpath={.spec.template.spec.containers[0].image}',
    ]);
    expect(img.stdout).toBe('release.daocloud.io/skoala/hive:v0.18.0');
  });

  it('the admission Jobs make 0.27.2 -> 0.28.1 fail unless they are deleted first', async () => {
    const w = sb.workers[0]!;
    const up = (v: string, reject = true) =>
      helm(
        [
          'upgrade',
          '--install',
          'skoala-init',
          'skoala/skoala-init',
          '--version',
          v,
          '-n',
          NS,
          '--reset-then-reuse-values',
          '--kubeconfig',
          w.kubeconfig,
        ],
        reject
      );
    await up('0.27.2');
    const failed = await up('0.28.1', false);
    expect(failed.exitCode).not.toBe(0);
    expect(failed.stderr).toMatch(/field is immutable/);
    await kubectl(w, [
      '-n',
      NS,
      'delete',
      'jobs',
      'gateway-api-admission',
      'gateway-api-admission-patch',
      '--ignore-not-found',
    ]);
    await up('0.28.1');
    const seata = await kubectl(w, ['-n', NS, 'get', 'deploy', 'seata-operator', '-o', 'name']);
    expect(seata.stdout).toBe('deployment.apps/seata-operator');
  });
});

describe('job stand-in', () => {
  it('completes the DB migration Job, and fails one on request', async () => {
    const cp = sb.controlPlane;
    const ok = startJobStandIn({ kubectl: tools.kubectl, kubeconfig: cp.kubeconfig, namespace: NS, intervalMs: 200 });
    try {
      await kubectl(cp, ['-n', NS, 'apply', '-f', DB_MIGRATION_JOB]);
      await kubectl(cp, ['-n', NS, 'wait', '--for=condition=complete', 'job/skoala-db-upgrade', '--timeout=30s']);
      await ok.stop(); // waits for the current round, whose patch `kubectl wait` may have seen first
      expect(ok.completed).toContain('skoala-db-upgrade');
      const st = JSON.parse(
        (await kubectl(cp, ['-n', NS, 'get', 'job', 'skoala-db-upgrade', '-o', 'jsonpath={.status}'])).stdout
      ) as Record<string, unknown>;
      expect(st).toMatchObject({ succeeded: 1 });
      expect(st.active ?? 0).toBe(0); // 0 is omitted from the JSON (omitempty)
      expect(Date.parse(String(st.completionTime))).toBeGreaterThanOrEqual(Date.parse(String(st.startTime)));
    } finally {
      await ok.stop();
    }
    await kubectl(cp, ['create', 'ns', 'fail-test']);
    const bad = startJobStandIn({
      kubectl: tools.kubectl,
      kubeconfig: cp.kubeconfig,
      namespace: 'fail-test',
      outcome: 'fail',
      failReason: 'BackoffLimitExceeded',
      intervalMs: 200,
    });
    try {
      await kubectl(cp, ['-n', 'fail-test', 'apply', '-f', DB_MIGRATION_JOB]);
      await kubectl(cp, [
        '-n',
        'fail-test',
        'wait',
        '--for=condition=failed',
        'job/skoala-db-upgrade',
        '--timeout=30s',
      ]);
      const reason = await kubectl(cp, [
        '-n',
        'fail-test',
        'get',
        'job',
        'skoala-db-upgrade',
        '-o',
        'jsonpath={.status.conditions[?(@.type=="Failed")].reason}',
      ]);
      expect(reason.stdout).toBe('BackoffLimitExceeded');
    } finally {
      await bad.stop();
    }
  });
});

describe('outages and cleanup', () => {
  it('a stopped cluster is unreachable, and comes back on the same port with its data', async () => {
    const w = sb.workers[0]!;
    await kubectl(w, ['-n', 'default', 'create', 'configmap', 'survivor', '--from-literal=k=v']);
    await w.stop();
    const down = await kubectl(w, ['get', 'ns', '--request-timeout=3s'], false);
    expect(down.exitCode).not.toBe(0);
    await w.start();
    const back = await kubectl(w, ['-n', 'default', 'get', 'configmap', 'survivor', '-o', 'jsonpath={.data.k}']);
    expect(back.stdout).toBe('v');
  });

  it('stop() leaves no kine/kube-apiserver behind', async () => {
    expect((await sandboxPids(dir)).length).toBe(4);
    await sb.stop();
    expect(await sandboxPids(dir)).toEqual([]);
  });

  it('SIGTERM to a process running a sandbox ends its kine/kube-apiserver', async () => {
    const childDir = await mkdtemp(join(tmpdir(), 'skoala-sandbox-sigterm-'));
    try {
      const script = join(childDir, 'child.mts');
      await writeFile(
        script,
        `import { startSandbox } from ${JSON.stringify(resolve('sandbox/index.ts'))};\n` +
          `await startSandbox({ workers: 0, dir: ${JSON.stringify(join(childDir, 'sb'))}, log: () => undefined });\n` +
          `console.log('READY');\nsetInterval(() => undefined, 1000);\n`
      );
      // node --import tsx: one process (the tsx CLI would put a relay process in between).
      const child = spawn(process.execPath, ['--import', 'tsx', script], { stdio: ['ignore', 'pipe', 'inherit'] });
      const exited = new Promise<number | null>((res) => child.once('exit', (code) => res(code)));
      await new Promise<void>((res, rej) => {
        child.stdout.on('data', (b: Buffer) => b.toString().includes('READY') && res());
        void exited.then((code) => rej(new Error(`child exited (${code}) before READY`)));
      });
      expect((await sandboxPids(childDir)).length).toBe(2);
      child.kill('SIGTERM');
      expect(await exited).toBe(143);
      expect(await sandboxPids(childDir)).toEqual([]);
    } finally {
      await rm(childDir, { recursive: true, force: true });
    }
  });
});
