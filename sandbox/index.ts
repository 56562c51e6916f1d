// One call for tests and the demo: tools, a chart repository, a control-plane cluster and N worker
// clusters, optionally with skoala / skoala-init already installed at some version.
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { stringify } from 'yaml';
import { startClusters, type SandboxCluster } from './cluster';
import { startChartRepo } from './charts';
import { startFixtureRegistry } from './images';
import { startNode, type SandboxNode } from './node';
import { DEFAULT_TOOLS, ensureTools, NODE_TOOLS, type ToolPaths } from './tools';
import { startWorkloadStandIn, type WorkloadStandIn } from './workload-standin';

export type { SandboxCluster, ClusterSet } from './cluster';
export type { ToolPaths } from './tools';
export { startClusters } from './cluster';
export { buildChartRepo, startChartRepo, DEFAULT_CHART_VERSIONS } from './charts';
export { startJobStandIn } from './job-standin';
export { startWorkloadStandIn, type WorkloadStandIn } from './workload-standin';
export { ensureTools, toolPaths, toolsDir } from './tools';
export { BROKEN_IMAGES, ensureFixtureImages } from './images';
export type { SandboxNode } from './node';
export {
  imagesForCharts,
  MISSING_IMAGE,
  startOciRegistry,
  startSecureChartRepo,
  VERSION_WITH_MISSING_IMAGE,
  type OciRegistry,
  type SecureChartRepo,
  type StartOciRegistryOptions,
  type StartSecureChartRepoOptions,
} from './secure-registry';
export { stopAllSandboxProcesses } from './procs';

export const SANDBOX_NAMESPACE = 'skoala-system';
export const DB_MIGRATION_JOB = join(dirname(fileURLToPath(import.meta.url)), 'fixtures', 'db-migration-job.yaml');

export interface Sandbox {
  dir: string;
  tools: ToolPaths;
  /** HELM_CONFIG_HOME / HELM_CACHE_HOME / HELM_DATA_HOME only: merge with process.env (execa does by default). */
  helmEnv: NodeJS.ProcessEnv;
  chartRepo: { url: string; stop(): Promise<void> };
  controlPlane: SandboxCluster;
  workers: SandboxCluster[];
  /** One real node per cluster when started with realNodes (else empty: status stand-ins do the nodes' part). */
  nodes: SandboxNode[];
  /** The fixture image registry real nodes pull from (host:port), when there are any. */
  imageRegistry?: string;
  stop(): Promise<void>;
}

export interface StartSandboxOptions {
  workers: number;
  /** e.g. '0.18.0'; omit to install nothing. */
  installVersion?: string;
  /** Install with a user-supplied value per cluster, so a test can check it survives an upgrade. */
  customValues?: boolean;
  /** Kept by stop(); a temp dir is created (and removed by stop()) when omitted. */
  dir?: string;
  /**
   * A real node (containerd + kubelet, controller manager, scheduler: node.ts) per cluster, pulling
   * the fixture images (images.ts): pods really run, and a broken version breaks for real.
   */
  realNodes?: boolean;
  log?: (line: string) => void;
}

/** Helm keeps its repo list and cache per sandbox: never the user's ~/.config/helm. */
function helmEnvFor(dir: string): NodeJS.ProcessEnv {
  return {
    HELM_CONFIG_HOME: join(dir, 'helm', 'config'),
    HELM_CACHE_HOME: join(dir, 'helm', 'cache'),
    HELM_DATA_HOME: join(dir, 'helm', 'data'),
  };
}

export async function startSandbox(opts: StartSandboxOptions): Promise<Sandbox> {
  const log = opts.log ?? ((l: string) => console.log(l));
  const ownDir = !opts.dir;
  const dir = resolve(opts.dir ?? (await mkdtemp(join(tmpdir(), 'skoala-sandbox-'))));
  await mkdir(dir, { recursive: true });
  const tools = await ensureTools({ log, only: opts.realNodes ? [...DEFAULT_TOOLS, ...NODE_TOOLS] : DEFAULT_TOOLS });
  const helmEnv = helmEnvFor(dir);
  const cleanups: (() => Promise<void>)[] = [];
  const stop = async (): Promise<void> => {
    for (const c of cleanups.reverse()) await c().catch(() => undefined);
    cleanups.length = 0;
    if (ownDir) await rm(dir, { recursive: true, force: true });
  };
  try {
    // The chart repo (helm package) and the clusters start side by side: both are short.
    const names = ['control-plane', ...Array.from({ length: opts.workers }, (_, i) => `worker-${i + 1}`)];
    const [chartRepo, clusters] = await Promise.all([
      startChartRepo({ dir: join(dir, 'chart-repo'), helm: tools.helm, env: helmEnv }).then((r) => {
        cleanups.push(() => r.stop());
        return r;
      }),
      startClusters(names, { dir: join(dir, 'clusters'), tools, log }).then((s) => {
        cleanups.push(() => s.stop());
        return s;
      }),
    ]);
    const [controlPlane, ...workers] = clusters.clusters as [SandboxCluster, ...SandboxCluster[]];
    const sandbox: Sandbox = { dir, tools, helmEnv, chartRepo, controlPlane, workers, nodes: [], stop };
    if (opts.realNodes) {
      const registry = await startFixtureRegistry(tools, join(dir, 'fixture-registry'), log);
      cleanups.push(() => registry.stop());
      sandbox.imageRegistry = registry.host;
      const started = await Promise.allSettled(
        clusters.clusters.map((cluster) =>
          startNode({ cluster, dir: join(dir, 'nodes', cluster.name), tools, registry: registry.host, log })
        )
      );
      for (const r of started) if (r.status === 'fulfilled') sandbox.nodes.push(r.value);
      // Nodes go before their API servers (the kubelet would only log the outage).
      cleanups.push(() => Promise.all(sandbox.nodes.map((n) => n.stop())).then(() => undefined));
      const failed = started.find((r): r is PromiseRejectedResult => r.status === 'rejected');
      if (failed) throw failed.reason;
    }
    if (opts.installVersion) await installAll(sandbox, opts.installVersion, !!opts.customValues, log);
    return sandbox;
  } catch (err) {
    await stop();
    throw err;
  }
}

async function installAll(sb: Sandbox, version: string, custom: boolean, log: (l: string) => void): Promise<void> {
  const install = async (c: SandboxCluster, chart: 'skoala' | 'skoala-init', extra: string[]): Promise<void> => {
    const t0 = Date.now();
    await execa(
      sb.tools.helm,
      [
        'upgrade',
        '--install',
        chart,
        chart,
        '--repo',
        sb.chartRepo.url,
        '--version',
        version,
        '--create-namespace',
        '-n',
        SANDBOX_NAMESPACE,
        '--kubeconfig',
        c.kubeconfig,
        '--kube-context',
        c.context,
        ...extra,
      ],
      { env: sb.helmEnv }
    );
    log(`[sandbox] ${c.name}: ${chart} ${version} installed in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  };
  const cp = sb.controlPlane;
  // Concurrent: most of a skoala-init install is helm polling for its CRDs to be established.
  await Promise.all([
    install(
      cp,
      'skoala',
      custom
        ? ['--set', `hive.configMap.data.database.password=s3cret-${cp.name}`, '--set', `custom.marker=${cp.name}`]
        : []
    ),
    ...sb.workers.map((w) => install(w, 'skoala-init', custom ? ['--set', `custom.marker=${w.name}`] : [])),
  ]);
}

/** Writes the fleet file the upgrade product reads (schema owned by the product; this emits its shape). */
export async function writeFleetFile(sb: Sandbox, path: string, extra: Record<string, unknown> = {}): Promise<string> {
  const ref = (c: SandboxCluster) => ({ name: c.name, kubeconfig: c.kubeconfig, context: c.context });
  const fleet = {
    name: 'sandbox',
    chartRepo: { name: 'skoala', url: sb.chartRepo.url },
    dbMigrationJob: DB_MIGRATION_JOB,
    controlPlane: ref(sb.controlPlane),
    workers: sb.workers.map(ref),
    // The fixture charts name images on release.daocloud.io, which these offline machines cannot
    // reach: the image check runs against the sandbox's own OCI registry (secure-registry.ts)
    // where a test asks for it (test/e2e/site-registry.test.ts).
    checkImages: false,
    ...extra,
  };
  const abs = resolve(path);
  await mkdir(dirname(abs), { recursive: true });
  await writeFile(abs, stringify(fleet));
  return abs;
}

/**
 * One workload stand-in per sandbox cluster, so Deployments roll out (or, for a broken image,
 * never get ready). brokenImages: cluster name -> `<container>:<tag>` entries; a name that is not
 * a cluster of this sandbox throws (a typo would otherwise silently break nothing).
 */
export function startWorkloadStandIns(
  sb: Sandbox,
  brokenImages: Record<string, string[]> = {},
  opts: { intervalMs?: number; log?: (line: string) => void } = {}
): { standIns: Record<string, WorkloadStandIn>; stop(): Promise<void> } {
  const clusters = [sb.controlPlane, ...sb.workers];
  const unknown = Object.keys(brokenImages).filter((n) => !clusters.some((c) => c.name === n));
  if (unknown.length) throw new Error(`brokenImages: no sandbox cluster named ${unknown.join(', ')}`);
  const standIns: Record<string, WorkloadStandIn> = {};
  for (const c of clusters) {
    standIns[c.name] = startWorkloadStandIn({
      kubectl: sb.tools.kubectl,
      kubeconfig: c.kubeconfig,
      cluster: c.name,
      broken: brokenImages[c.name] ?? [],
      ...opts,
    });
  }
  return {
    standIns,
    async stop() {
      await Promise.all(Object.values(standIns).map((s) => s.stop()));
    },
  };
}
