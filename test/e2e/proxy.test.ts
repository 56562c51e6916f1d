/**
 * Proxies reach helm and kubectl unchanged, through the product's own code paths: the `plan` CLI
 * (a child process, as a user runs it) and the activities as worker/main.ts builds them.
 *
 * The clusters are addressed by names only the loopback CONNECT proxy resolves
 * (`<cluster>.skoala.invalid`), so a call that succeeds went through the proxy, and one that
 * bypasses it fails. That also sidesteps Go's rule that HTTPS_PROXY never applies to loopback
 * servers (checked below too, since the README warns about it): a kubeconfig's `proxy-url` does.
 */
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { execa } from 'execa';
import { parse, stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createActivities } from '../../activities';
import { createRunner } from '../../activities/exec';
import { startSandbox, writeFleetFile, type Sandbox, type SandboxCluster } from '../../sandbox';
import { startConnectProxy, type ConnectProxy } from '../../sandbox/connect-proxy';

const NS = 'skoala-system';
const DOMAIN = 'skoala.invalid';
const PROXY_VARS = ['HTTPS_PROXY', 'https_proxy', 'HTTP_PROXY', 'http_proxy', 'NO_PROXY', 'no_proxy'] as const;
type Proxies = Partial<Record<'HTTPS_PROXY' | 'HTTP_PROXY' | 'NO_PROXY', string>>;

/** The proxy variables exactly as given, upper and lower case, and nothing inherited from this process. */
function proxyEnv(p: Proxies): NodeJS.ProcessEnv {
  return {
    HTTPS_PROXY: p.HTTPS_PROXY ?? '',
    https_proxy: p.HTTPS_PROXY ?? '',
    HTTP_PROXY: p.HTTP_PROXY ?? '',
    http_proxy: p.HTTP_PROXY ?? '',
    NO_PROXY: p.NO_PROXY ?? '',
    no_proxy: p.NO_PROXY ?? '',
  };
}

const hostOf = (c: SandboxCluster): string => `${c.name}.${DOMAIN}`;
const portOf = (c: SandboxCluster): string => new URL(c.server).port;
/** What the proxy counts for a cluster reached by name. */
const tunnelOf = (c: SandboxCluster): string => `${hostOf(c)}:${portOf(c)}`;

/** Tunnels opened since `before`, by target. */
function since(proxy: ConnectProxy, before: Record<string, number>): Record<string, number> {
  const now = proxy.tunnels();
  return Object.fromEntries(
    Object.entries(now)
      .map(([k, v]): [string, number] => [k, v - (before[k] ?? 0)])
      .filter(([, v]) => v > 0)
  );
}

describe('proxies for helm and kubectl', () => {
  let sb: Sandbox;
  let proxy: ConnectProxy;
  let clusters: SandboxCluster[];
  /** Kubeconfigs per cluster: server by name (plain), by name + proxy-url, loopback + proxy-url, loopback. */
  const kc: Record<'byName' | 'byNameProxyUrl' | 'loopbackProxyUrl' | 'loopback', Record<string, string>> = {
    byName: {},
    byNameProxyUrl: {},
    loopbackProxyUrl: {},
    loopback: {},
  };
  let fleetByName: string;
  let fleetProxyUrl: string;
  /** Clusters and the chart repository (http://charts.skoala.invalid:P) by name. */
  let fleetAllByName: string;
  let chartsTarget: string;

  beforeAll(async () => {
    sb = await startSandbox({ workers: 1, installVersion: '0.18.0', log: () => {} });
    clusters = [sb.controlPlane, ...sb.workers];
    const charts = new URL(sb.chartRepo.url);
    chartsTarget = `charts.${DOMAIN}:${charts.port}`;
    proxy = await startConnectProxy({
      hosts: {
        ...Object.fromEntries(clusters.map((c) => [hostOf(c), '127.0.0.1'])),
        [`charts.${DOMAIN}`]: '127.0.0.1',
      },
    });
    const dir = path.join(sb.dir, 'proxied');
    await mkdir(dir, { recursive: true });
    for (const c of clusters) {
      const original = parse(await readFile(c.kubeconfig, 'utf8')) as {
        clusters: { name: string; cluster: Record<string, unknown> }[];
      };
      const variant = async (kind: keyof typeof kc, server: string, proxyUrl?: string): Promise<void> => {
        const doc = structuredClone(original);
        for (const entry of doc.clusters) {
          entry.cluster.server = server;
          if (proxyUrl) entry.cluster['proxy-url'] = proxyUrl;
        }
        const file = path.join(dir, `${c.name}.${kind}.yaml`);
        await writeFile(file, stringify(doc), { mode: 0o600 });
        kc[kind][c.name] = file;
      };
      const byName = `https://${hostOf(c)}:${portOf(c)}`;
      await variant('byName', byName);
      await variant('byNameProxyUrl', byName, proxy.url);
      await variant('loopbackProxyUrl', c.server, proxy.url);
      await variant('loopback', c.server);
    }
    const fleetWith = (kind: keyof typeof kc, file: string, extra: Record<string, unknown> = {}) => {
      const ref = (c: SandboxCluster) => ({ name: c.name, kubeconfig: kc[kind][c.name], context: c.context });
      return writeFleetFile(sb, path.join(dir, file), {
        controlPlane: ref(sb.controlPlane),
        workers: sb.workers.map(ref),
        ...extra,
      });
    };
    fleetByName = await fleetWith('byName', 'fleet-by-name.yaml');
    fleetProxyUrl = await fleetWith('byNameProxyUrl', 'fleet-proxy-url.yaml');
    fleetAllByName = await fleetWith('byName', 'fleet-all-by-name.yaml', {
      chartRepo: { name: 'skoala', url: `http://${chartsTarget}` },
    });
  });

  afterAll(async () => {
    await proxy?.stop();
    await sb?.stop();
  });

  /** `npm run plan` as a user runs it: a child process with exactly this environment (proxies included). */
  function plan(fleet: string, proxies: Proxies, helmEnv: NodeJS.ProcessEnv = sb.helmEnv) {
    const env: NodeJS.ProcessEnv = { ...process.env, ...proxyEnv(proxies) };
    return execa(
      process.execPath,
      ['--import', 'tsx', 'scripts/cli.ts', 'plan', '--version', '0.19.2', '--fleet', fleet],
      {
        reject: false,
        all: true,
        extendEnv: false,
        env: {
          ...env,
          ...helmEnv,
          SKOALA_HELM: sb.tools.helm,
          SKOALA_KUBECTL: sb.tools.kubectl,
          TEMPORAL_ADDRESS: '127.0.0.1:1', // planning needs no Temporal
        },
      }
    );
  }

  const expectFullPlan = (out: string): void => {
    expect(out).toContain('control-plane (control-plane, skoala 0.18.0 -> 0.19.2):');
    // The CRD preview: a server-side dry run on the worker cluster, through the proxy too.
    expect(out).toMatch(
      /worker-1 \(worker, skoala-init 0\.18\.0 -> 0\.19\.2\):[\s\S]*CRD httpproxies\.projectcontour\.io: change, 0 custom resource\(s\)/
    );
  };

  it("a kubeconfig's proxy-url: every helm and kubectl call of `plan` goes through the proxy", async () => {
    const before = proxy.tunnels();
    const run = await plan(fleetProxyUrl, {}); // no proxy variables at all
    expect(run.exitCode, run.all).toBe(0);
    expectFullPlan(run.stdout);
    const opened = since(proxy, before);
    // Each cluster's API server, by the name only the proxy resolves; nothing else went through it.
    expect(Object.keys(opened).sort()).toEqual(clusters.map(tunnelOf).sort());
  });

  it('without the proxy those names do not resolve: the same plan fails and the proxy sees nothing', async () => {
    const before = proxy.tunnels();
    const run = await plan(fleetByName, {});
    expect(run.exitCode).not.toBe(0);
    expect(run.all).toContain(DOMAIN);
    expect(since(proxy, before)).toEqual({});
  });

  it('HTTPS_PROXY and NO_PROXY in the environment reach helm and kubectl unchanged (plan CLI)', async () => {
    let before = proxy.tunnels();
    // The chart repository is on 127.0.0.1: NO_PROXY names it, as a site would name its own hosts.
    const ok = await plan(fleetByName, { HTTPS_PROXY: proxy.url, NO_PROXY: '127.0.0.1,localhost' });
    expect(ok.exitCode, ok.all).toBe(0);
    expectFullPlan(ok.stdout);
    expect(Object.keys(since(proxy, before)).sort()).toEqual(clusters.map(tunnelOf).sort());

    // NO_PROXY excluding the clusters' domain: helm and kubectl dial directly, and fail to resolve.
    before = proxy.tunnels();
    const excluded = await plan(fleetByName, { HTTPS_PROXY: proxy.url, NO_PROXY: `127.0.0.1,.${DOMAIN}` });
    expect(excluded.exitCode).not.toBe(0);
    expect(excluded.all).toMatch(/no such host|lookup/);
    expect(since(proxy, before)).toEqual({});
  });

  it('HTTP_PROXY reaches helm for an http:// chart repository (plan CLI)', async () => {
    // A helm home of its own: the repository is added under the same name with another URL.
    const home = path.join(sb.dir, 'helm-by-name');
    const helmEnv = {
      HELM_CONFIG_HOME: path.join(home, 'config'),
      HELM_CACHE_HOME: path.join(home, 'cache'),
      HELM_DATA_HOME: path.join(home, 'data'),
    };
    const before = { tunnels: proxy.tunnels(), forwarded: proxy.forwarded() };
    // The repository's index names its charts at 127.0.0.1 (loopback: fetched directly).
    const proxies = { HTTPS_PROXY: proxy.url, HTTP_PROXY: proxy.url, NO_PROXY: '127.0.0.1' };
    const ok = await plan(fleetAllByName, proxies, helmEnv);
    expect(ok.exitCode, ok.all).toBe(0);
    expectFullPlan(ok.stdout);
    const forwarded = Object.entries(proxy.forwarded()).filter(([k, v]) => v > (before.forwarded[k] ?? 0));
    expect(forwarded.map(([k]) => k)).toEqual([chartsTarget]);
    expect(Object.keys(since(proxy, before.tunnels)).sort()).toEqual(clusters.map(tunnelOf).sort());

    // Without HTTP_PROXY, helm cannot reach the repository by that name: the plan stops at the chart check.
    const noHttp = await plan(fleetAllByName, { HTTPS_PROXY: proxy.url, NO_PROXY: '127.0.0.1' }, helmEnv);
    expect(noHttp.exitCode).not.toBe(0);
    expect(noHttp.all).toContain(`charts.${DOMAIN}`);
  });

  it("the worker's activities (built as worker/main.ts builds them) pass the process's proxies on", async () => {
    // worker/main.ts: createActivities(workerConfig()) with no `env`, so helm and kubectl inherit
    // process.env. Set the proxies there, as a container or a systemd unit would.
    const saved = Object.fromEntries([...PROXY_VARS, ...Object.keys(sb.helmEnv)].map((k) => [k, process.env[k]]));
    const setEnv = (vars: NodeJS.ProcessEnv): void => {
      for (const [k, v] of Object.entries(vars)) {
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
      }
    };
    const workDir = path.join(sb.dir, 'worker-work');
    const w1 = sb.workers[0] as SandboxCluster;
    try {
      setEnv({ ...sb.helmEnv, ...proxyEnv({ HTTPS_PROXY: proxy.url, NO_PROXY: '127.0.0.1,localhost' }) });
      const acts = createActivities({
        helm: sb.tools.helm,
        kubectl: sb.tools.kubectl,
        backupDir: path.join(sb.dir, 'worker-backups'),
        workDir,
      });
      const preflight = () =>
        acts.preflightCluster({
          upgradeId: 'skoala-upgrade-sandbox-0.19.2',
          cluster: { name: w1.name, kubeconfig: kc.byName[w1.name], context: w1.context, namespace: NS },
          release: 'skoala-init',
        });
      let before = proxy.tunnels();
      const facts = await preflight(); // kubectl version, then helm history and reads of the cluster
      expect(facts.kubeVersion).toMatch(/^1\.33\./);
      expect(facts.release).toMatchObject({ installed: true, chartVersion: '0.18.0' });
      expect(Object.keys(since(proxy, before))).toEqual([tunnelOf(w1)]);

      setEnv(proxyEnv({ HTTPS_PROXY: proxy.url, NO_PROXY: `.${DOMAIN}` }));
      before = proxy.tunnels();
      await expect(preflight()).rejects.toThrow(DOMAIN);
      expect(since(proxy, before)).toEqual({});
    } finally {
      setEnv(saved);
      await rm(workDir, { recursive: true, force: true });
    }
  });

  it("helm and kubectl each use a kubeconfig's proxy-url, even for a loopback server", async () => {
    const cp = sb.controlPlane;
    const run = createRunner({
      helm: sb.tools.helm,
      kubectl: sb.tools.kubectl,
      env: { ...sb.helmEnv, ...proxyEnv({}) },
    });
    const loopbackTarget = `127.0.0.1:${portOf(cp)}`;
    let before = proxy.tunnels();
    await run('kubectl', [
      '--kubeconfig',
      kc.loopbackProxyUrl[cp.name] as string,
      'get',
      'namespace',
      NS,
      '-o',
      'name',
    ]);
    expect(since(proxy, before)).toEqual({ [loopbackTarget]: expect.any(Number) });
    before = proxy.tunnels();
    const { stdout } = await run('helm', [
      '--kubeconfig',
      kc.loopbackProxyUrl[cp.name] as string,
      'list',
      '-n',
      NS,
      '-q',
    ]);
    expect(stdout.trim()).toBe('skoala');
    expect(since(proxy, before)).toEqual({ [loopbackTarget]: expect.any(Number) });
  });

  it('HTTPS_PROXY is never used for a loopback server (Go net/http), as the README warns', async () => {
    const cp = sb.controlPlane;
    const run = createRunner({
      helm: sb.tools.helm,
      kubectl: sb.tools.kubectl,
      env: { ...sb.helmEnv, ...proxyEnv({ HTTPS_PROXY: proxy.url }) },
    });
    const before = proxy.tunnels();
    await run('kubectl', ['--kubeconfig', kc.loopback[cp.name] as string, 'get', 'namespace', NS, '-o', 'name']);
    const { stdout } = await run('helm', ['--kubeconfig', kc.loopback[cp.name] as string, 'list', '-n', NS, '-q']);
    expect(stdout.trim()).toBe('skoala');
    expect(since(proxy, before)).toEqual({});
  });
});
