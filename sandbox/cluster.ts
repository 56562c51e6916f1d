// Real local Kubernetes API servers for tests and the demo: one kine (pure-Go SQLite) plus one
// kube-apiserver per simulated cluster, on loopback ports only, envtest style (no kubelet, no
// controllers). See shared/toolchain.md for why these flags.
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { request } from 'node:https';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { execa } from 'execa';
import { stringify } from 'yaml';
import { freePort, portBindable, spawnTracked, terminate, waitPortFree, waitUntilReady, type Tracked } from './procs';
import { toolPaths, type ToolPaths } from './tools';

export interface SandboxCluster {
  name: string;
  kubeconfig: string;
  context: string;
  server: string; // https://127.0.0.1:PORT
  /** Stops kine + apiserver (simulates an outage); the data is kept. */
  stop(): Promise<void>;
  /** Restarts on the SAME ports with the same data; resolves when /readyz is ok. */
  start(): Promise<void>;
}

export interface ClusterSet {
  dir: string;
  clusters: SandboxCluster[];
  stop(): Promise<void>;
}

type Log = (line: string) => void;

const READY_TIMEOUT_MS = 90_000;
// kine's default SQLite parameters (WAL, busy timeout): an explicit endpoint replaces them.
const SQLITE_PARAMS =
  '_journal_mode=WAL&_busy_timeout=30000&_synchronous=NORMAL&_txlock=immediate&_stmt_cache_size=20&cache=shared';

/** GET https://127.0.0.1:port/path with the bearer token; resolves with the status (0 = no answer). */
function httpsStatus(port: number, path: string, token: string): Promise<number> {
  return new Promise((res) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        path,
        method: 'GET',
        rejectUnauthorized: false,
        timeout: 5000,
        headers: { Authorization: `Bearer ${token}` },
      },
      (r) => {
        r.resume();
        res(r.statusCode ?? 0);
      }
    );
    req.on('error', () => res(0));
    req.on('timeout', () => req.destroy());
    req.end();
  });
}

function tcpOpen(port: number): Promise<boolean> {
  return new Promise((res) => {
    const s = connect({ host: '127.0.0.1', port });
    s.once('connect', () => {
      s.destroy();
      res(true);
    });
    s.once('error', () => res(false));
  });
}

class Cluster implements SandboxCluster {
  readonly context: string;
  readonly kubeconfig: string;
  server: string;
  /** Set once kine and the apiserver have run: from then on their ports are this cluster's. */
  private started = false;
  private kine?: Tracked;
  private apiserver?: Tracked;

  constructor(
    readonly name: string,
    private readonly dir: string,
    private kinePort: number,
    private apiPort: number,
    private readonly token: string,
    private readonly tools: ToolPaths,
    private readonly log: Log
  ) {
    this.context = name;
    this.kubeconfig = join(dir, 'kubeconfig');
    this.server = `https://127.0.0.1:${apiPort}`;
  }

  /** One-time files: SA key pair (openssl), token file, kubeconfig. Kept across restarts. */
  async prepare(): Promise<void> {
    await mkdir(join(this.dir, 'kine'), { recursive: true });
    await mkdir(join(this.dir, 'certs'), { recursive: true });
    const key = join(this.dir, 'sa.key');
    if (!existsSync(key)) {
      await execa('openssl', ['genrsa', '-out', key, '2048'], { stderr: 'ignore' });
      await execa('openssl', ['rsa', '-in', key, '-pubout', '-out', join(this.dir, 'sa.pub')], { stderr: 'ignore' });
    }
    await writeFile(join(this.dir, 'tokens.csv'), `${this.token},admin,admin,"system:masters"\n`, { mode: 0o600 });
    await this.writeKubeconfig();
  }

  private async writeKubeconfig(): Promise<void> {
    const kc = {
      apiVersion: 'v1',
      kind: 'Config',
      // The serving cert is self-signed by the apiserver at first start; skipping verification
      // keeps the kubeconfig valid before that cert exists (loopback only).
      clusters: [{ name: this.name, cluster: { server: this.server, 'insecure-skip-tls-verify': true } }],
      users: [{ name: `${this.name}-admin`, user: { token: this.token } }],
      contexts: [{ name: this.name, context: { cluster: this.name, user: `${this.name}-admin` } }],
      'current-context': this.name,
    };
    await writeFile(this.kubeconfig, stringify(kc), { mode: 0o600 });
  }

  private apiserverArgs(): string[] {
    const d = this.dir;
    return [
      `--etcd-servers=http://127.0.0.1:${this.kinePort}`,
      `--secure-port=${this.apiPort}`,
      '--bind-address=127.0.0.1',
      '--advertise-address=127.0.0.1',
      `--cert-dir=${join(d, 'certs')}`,
      '--service-cluster-ip-range=10.0.0.0/24',
      '--authorization-mode=RBAC',
      '--disable-admission-plugins=ServiceAccount',
      `--service-account-issuer=https://127.0.0.1:${this.apiPort}/`,
      `--service-account-key-file=${join(d, 'sa.pub')}`,
      `--service-account-signing-key-file=${join(d, 'sa.key')}`,
      `--token-auth-file=${join(d, 'tokens.csv')}`,
      // A real node (node.ts) registers its host IP: `kubectl logs` reaches its kubelet there.
      '--kubelet-preferred-address-types=InternalIP,Hostname',
      // Less CPU/memory on a 2-core machine running several of these: no APF queues, no
      // profiling endpoints, no endpoint reconciler writing the kubernetes Service every 10 s.
      '--enable-priority-and-fairness=false',
      '--profiling=false',
      '--endpoint-reconciler-type=none',
      '--v=1',
    ];
  }

  async start(): Promise<void> {
    const alive = (t?: Tracked): boolean => !!t && t.child.exitCode === null && t.child.signalCode === null;
    if (alive(this.apiserver) && alive(this.kine)) return;
    await this.stop(); // a half-dead pair (one crashed) restarts as a whole
    const t0 = Date.now();
    if (!this.started) {
      // The ports were free when chosen, but another process may have bound one since (a Temporal
      // server starting alongside binds ports of its own): choose again while nothing uses them.
      while (!(await portBindable(this.kinePort)) || !(await portBindable(this.apiPort))) {
        [this.kinePort, this.apiPort] = [await freePort(), await freePort()];
        this.server = `https://127.0.0.1:${this.apiPort}`;
        await this.writeKubeconfig();
      }
    }
    this.started = true;
    await Promise.all([waitPortFree(this.kinePort), waitPortFree(this.apiPort)]);
    const d = this.dir;
    this.kine = spawnTracked(
      `kine:${this.name}`,
      this.tools.kine,
      [
        `--listen-address=127.0.0.1:${this.kinePort}`,
        '--metrics-bind-address=0',
        `--endpoint=sqlite://${join(d, 'kine', 'state.db')}?${SQLITE_PARAMS}`,
      ],
      join(d, 'kine.log'),
      d
    );
    await this.waitFor('kine', this.kine, () => tcpOpen(this.kinePort), 30_000);
    this.apiserver = spawnTracked(
      `kube-apiserver:${this.name}`,
      this.tools.kubeApiserver,
      this.apiserverArgs(),
      join(d, 'apiserver.log'),
      d
    );
    await this.waitFor(
      'kube-apiserver /readyz',
      this.apiserver,
      async () => (await httpsStatus(this.apiPort, '/readyz', this.token)) === 200,
      READY_TIMEOUT_MS
    );
    this.log(`[cluster] ${this.name} ready at ${this.server} in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  }

  /** Waits for the process to answer; on failure, stops the pair first (no half-started cluster). */
  private async waitFor(what: string, proc: Tracked, check: () => Promise<boolean>, timeoutMs: number): Promise<void> {
    try {
      await waitUntilReady(`${this.name}: ${what}`, proc, check, timeoutMs);
    } catch (err) {
      await this.stop();
      throw err;
    }
  }

  async stop(): Promise<void> {
    const [api, kine] = [this.apiserver, this.kine];
    this.apiserver = undefined;
    this.kine = undefined;
    // apiserver first, so it does not log storage errors from a vanished kine.
    if (api) await terminate(api);
    if (kine) await terminate(kine);
  }

  /** RSS in KiB of kine + apiserver (from /proc), for memory measurements. */
  rssKiB(): Promise<number> {
    const pids = [this.kine?.child.pid, this.apiserver?.child.pid].filter((p): p is number => !!p);
    const one = async (pid: number): Promise<number> => {
      const status = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => '');
      return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
    };
    return Promise.all(pids.map(one)).then((v) => v.reduce((a, b) => a + b, 0));
  }
}

/**
 * Starts one kine + kube-apiserver per name, concurrently, each with a kubeconfig whose context is
 * the cluster name. The set's dir is kept by stop(); callers own its removal.
 */
export async function startClusters(
  names: string[],
  opts: { dir?: string; tools?: ToolPaths; log?: Log } = {}
): Promise<ClusterSet> {
  const log = opts.log ?? ((l: string) => console.log(l));
  const dir = resolve(opts.dir ?? (await mkdtemp(join(tmpdir(), 'skoala-clusters-'))));
  const tools = opts.tools ?? toolPaths();
  const clusters: Cluster[] = [];
  const taken = new Set<number>();
  const port = async (): Promise<number> => {
    for (;;) {
      const p = await freePort();
      if (!taken.has(p)) {
        taken.add(p);
        return p;
      }
    }
  };
  for (const name of names) {
    const [kinePort, apiPort] = [await port(), await port()];
    clusters.push(new Cluster(name, join(dir, name), kinePort, apiPort, randomBytes(16).toString('hex'), tools, log));
  }
  const stop = async (): Promise<void> => {
    await Promise.all(clusters.map((c) => c.stop()));
  };
  try {
    await Promise.all(clusters.map((c) => c.prepare()));
    await Promise.all(clusters.map((c) => c.start()));
  } catch (err) {
    await stop();
    if (!opts.dir) await rm(dir, { recursive: true, force: true }); // nobody else knows this temp dir
    throw err;
  }
  return { dir, clusters, stop };
}

export { Cluster as SandboxClusterImpl };
