// Fixture images that really run, for sandbox clusters with a real node (node.ts). Every image the
// fixture charts name (each component at each fixture version, the admission and DB-migration Jobs'
// images) and the pod sandbox's pause image are one static binary (images/fixture-server.c,
// images/pause.c) under their own names and tags, each with an image config saying how that
// version behaves: serves and becomes ready, never becomes ready, or crashes at start. One image
// is left out on purpose (MISSING_IMAGE): its pods end in ErrImagePull.
//
// Built once into the tools cache as a registry's storage folder (keyed by a hash of everything
// that shapes it), then served read-only by one `registry` process per sandbox on loopback.
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import pLimit from 'p-limit';
import { buildChartRepo, DEFAULT_CHART_VERSIONS } from './charts';
import { freePort, sleep, spawnTracked, tailFile, terminate, type Tracked } from './procs';
import { imagesForCharts, MISSING_IMAGE } from './secure-registry';
import { toolsDir, type ToolPaths } from './tools';

const HERE = dirname(fileURLToPath(import.meta.url));
const SOURCES = ['images/fixture-server.c', 'images/pause.c', 'chart-sources.ts', 'fixtures/db-migration-job.yaml'];

/** How a fixture version breaks (or dawdles) for real: in every cluster that runs it. */
export const BROKEN_IMAGES: Record<string, 'crash' | 'unready' | 'slow'> = {
  // 0.19.3: the control plane's hive exits at start (CrashLoopBackOff).
  'skoala/hive:v0.19.3': 'crash',
  // 0.28.2: a worker cluster's agent runs but never becomes ready.
  'skoala/skoala-agent:v0.28.2': 'unready',
  // 0.53.0's agent never becomes ready, and 0.52.1's worker-cluster components take 60 s: a
  // rollback from 0.53.0 that waits for its pods stays pending long enough to be interrupted
  // (test/e2e/rollback-killed.test.ts).
  'skoala/skoala-agent:v0.53.0': 'unready',
  'skoala/skoala-agent:v0.52.1': 'slow',
  'skoala/nacos-operator:v0.52.1': 'slow',
  'skoala/sentinel-operator:v0.52.1': 'slow',
  'skoala/seata-operator:v0.52.1': 'slow',
};

/** The pause image containerd runs for every pod (mirrored like the others: see node.ts). */
export const PAUSE_IMAGE = 'registry.k8s.io/pause:3.10';
/** Hosts whose images the sandbox registry answers for (containerd's mirror: see node.ts). */
export const MIRRORED_HOSTS = ['release.daocloud.io', 'registry.k8s.io'];

type Log = (line: string) => void;

export interface FixtureRegistry {
  /** 127.0.0.1:PORT, plain HTTP, read-only. */
  host: string;
  /** Every ref it has (without host), e.g. `skoala/hive:v0.19.2`. */
  refs: string[];
  stop(): Promise<void>;
}

async function sourceHash(): Promise<string> {
  const h = createHash('sha256');
  for (const f of SOURCES) h.update(f).update(await readFile(join(HERE, f)));
  h.update(JSON.stringify({ BROKEN_IMAGES, MISSING_IMAGE, DEFAULT_CHART_VERSIONS, PAUSE_IMAGE }));
  return h.digest('hex').slice(0, 16);
}

function registryConfig(storage: string, host: string, readonly: boolean): string {
  return JSON.stringify({
    version: 0.1,
    log: { level: 'warn', accesslog: { disabled: true } },
    storage: {
      filesystem: { rootdirectory: storage },
      maintenance: { uploadpurging: { enabled: false }, readonly: { enabled: readonly } },
    },
    http: { addr: host },
  });
}

async function serve(
  registry: string,
  storage: string,
  dir: string,
  readonly: boolean
): Promise<Tracked & { host: string }> {
  const host = `127.0.0.1:${await freePort()}`;
  await mkdir(dir, { recursive: true });
  const config = join(dir, 'registry.json');
  await writeFile(config, registryConfig(storage, host, readonly));
  const proc = spawnTracked(`registry:${host}`, registry, ['serve', config], join(dir, 'registry.log'), dir);
  for (let i = 0; ; i++) {
    const ok = await fetch(`http://${host}/v2/`).then(
      (r) => r.ok,
      () => false
    );
    if (ok) return Object.assign(proc, { host });
    if (i > 200 || proc.child.exitCode !== null) {
      await terminate(proc);
      throw new Error(`fixture registry did not start: ${await tailFile(proc.logFile)}`);
    }
    await sleep(100);
  }
}

/** Every image ref the fixture charts render (all versions), plus the DB-migration Job's. */
async function chartImages(tools: Pick<ToolPaths, 'helm'>, work: string): Promise<string[]> {
  const env = { HELM_CONFIG_HOME: join(work, 'h'), HELM_CACHE_HOME: join(work, 'h'), HELM_DATA_HOME: join(work, 'h') };
  const charts = join(work, 'charts');
  await buildChartRepo({ dir: charts, helm: tools.helm, env });
  const tgzs = (await readdir(charts)).filter((f) => f.endsWith('.tgz')).map((f) => join(charts, f));
  const host = 'release.daocloud.io';
  const refs = new Set([...(await imagesForCharts(tools.helm, tgzs, host, env)).values()].flat());
  const job = await readFile(join(HERE, 'fixtures', 'db-migration-job.yaml'), 'utf8');
  for (const m of job.matchAll(/image:\s*release\.daocloud\.io\/(\S+)/g)) refs.add(m[1] as string);
  refs.delete(MISSING_IMAGE);
  return [...refs].sort();
}

/** Builds the images into the tools cache unless they are there; returns the storage folder. */
export async function ensureFixtureImages(
  tools: Pick<ToolPaths, 'helm' | 'crane' | 'registry'>,
  log: Log = () => undefined
): Promise<{ storage: string; refs: string[] }> {
  const target = join(toolsDir(), `fixture-images-${await sourceHash()}`);
  if (existsSync(join(target, 'refs.json')))
    return { storage: join(target, 'storage'), refs: JSON.parse(await readFile(join(target, 'refs.json'), 'utf8')) };
  const t0 = Date.now();
  await mkdir(toolsDir(), { recursive: true });
  const work = await mkdtemp(join(toolsDir(), '.tmp-fixture-images-'));
  let reg: (Tracked & { host: string }) | undefined;
  try {
    const root = join(work, 'rootfs');
    await mkdir(root);
    await Promise.all(
      ['fixture-server', 'pause'].map((b) =>
        execa('gcc', ['-static', '-O2', '-o', join(root, b), join(HERE, 'images', `${b}.c`)])
      )
    );
    const layer = join(work, 'layer.tar');
    await execa('tar', [
      '--owner=0',
      '--group=0',
      '--numeric-owner',
      '-C',
      root,
      '-cf',
      layer,
      'fixture-server',
      'pause',
    ]);
    const [refs, r] = await Promise.all([
      chartImages(tools, work),
      serve(tools.registry, join(work, 'out', 'storage'), join(work, 'registry'), false),
    ]);
    reg = r;
    const crane = (args: string[]) => execa(tools.crane, [...args, '--insecure']);
    const base = `${reg.host}/fixture/base:1`;
    await crane(['append', '-f', layer, '-t', base, '--platform', 'linux/amd64']);
    const limit = pLimit(4);
    const mutate = (ref: string, entrypoint: string, env: string[]) =>
      limit(() =>
        crane([
          'mutate',
          base,
          '--entrypoint',
          entrypoint,
          ...env.flatMap((e) => ['--env', e]),
          '--set-platform',
          'linux/amd64',
          '-t',
          `${reg?.host}/${ref}`,
        ])
      );
    await Promise.all([
      mutate(PAUSE_IMAGE.slice(PAUSE_IMAGE.indexOf('/') + 1), '/pause', []),
      ...refs.map((ref) =>
        mutate(ref, '/fixture-server', [`FIXTURE_IMAGE=${ref}`, `FIXTURE_MODE=${BROKEN_IMAGES[ref] ?? 'ready'}`])
      ),
    ]);
    await terminate(reg);
    reg = undefined;
    await writeFile(join(work, 'out', 'refs.json'), `${JSON.stringify(refs, null, 1)}\n`);
    await rm(target, { recursive: true, force: true });
    await rename(join(work, 'out'), target);
    log(`[images] ${refs.length} fixture images + pause built in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    return { storage: join(target, 'storage'), refs };
  } finally {
    if (reg) await terminate(reg);
    await rm(work, { recursive: true, force: true });
  }
}

/** Serves the fixture images read-only on loopback (plain HTTP) until stop(). */
export async function startFixtureRegistry(
  tools: Pick<ToolPaths, 'helm' | 'crane' | 'registry'>,
  dir: string,
  log: Log = () => undefined
): Promise<FixtureRegistry> {
  const { storage, refs } = await ensureFixtureImages(tools, log);
  const reg = await serve(tools.registry, storage, dir, true);
  return { host: reg.host, refs, stop: () => terminate(reg) };
}
