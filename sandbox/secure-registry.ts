// Secured artifact sources for the sandbox, as a site with its own CA and credentials runs them:
//
//   startSecureChartRepo({ dir, helm, ca, username, password, env?, versions?, certName?, log? })
//     -> Promise<SecureChartRepo { url, dir, caFile, username, stop() }>
//     The fixture charts (buildChartRepo) served over HTTPS by node:https on 127.0.0.1 (free port),
//     server cert from the test CA, HTTP basic auth required (401 + `WWW-Authenticate: Basic`),
//     index written with `helm repo index --url https://127.0.0.1:PORT`.
//     Client side: `helm repo add NAME URL --username U --password-stdin --ca-file CA`.
//
//   startOciRegistry({ dir, tools, ca, username, password, env?, versions?, imageVersions?, certName?,
//                      log? })
//     -> Promise<OciRegistry { host, chartUrl, caFile, username, images, missingImage, logFile, stop() }>
//     distribution's `registry serve` with TLS (test CA) and htpasswd (bcrypt) auth, storage in dir.
//     Filled with the real clients: the fixture charts via `helm registry login` + `helm push` to
//     oci://HOST/charts, and one tiny image per ref the charts render (`helm template` with
//     global.imageRegistry=HOST) via `crane auth login` + `crane append` / `crane tag`, except
//     MISSING_IMAGE. Client side: helm needs `--ca-file CA` on every OCI command (login, push,
//     pull, show, install, upgrade): the login stores credentials only, never the CA. Without the
//     flag, SSL_CERT_FILE=CA works too (Go's system pool reads it); crane has no CA flag, only that.
//
//   MISSING_IMAGE ('skoala/hive:v0.27.2') / VERSION_WITH_MISSING_IMAGE ('0.27.2'): the one image
//   the registry lacks, so an image preflight for that version has something to find.
//   imagesForCharts(helm, tgzs, host, env?): image refs (without host) the packaged charts render.
//
// Passwords go to helm and crane on stdin, never in argv. Both servers stop with stop(); their
// files stay in dir (the caller owns it).
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { createServer, request, type Server } from 'node:https';
import { join, resolve } from 'node:path';
import bcrypt from 'bcryptjs';
import { execa } from 'execa';
import pLimit from 'p-limit';
import { parseAllDocuments } from 'yaml';
import { buildChartRepo, DEFAULT_CHART_VERSIONS, sendRepoFile } from './charts';
import { freePort, sleep, spawnTracked, tailFile, terminate, type Tracked } from './procs';
import type { TestCa } from './test-ca';
import type { ToolPaths } from './tools';

/** The image (ref without registry host) the OCI registry deliberately lacks. */
export const MISSING_IMAGE = 'skoala/hive:v0.27.2';
/** The chart version whose rendered images include MISSING_IMAGE (and no other missing one). */
export const VERSION_WITH_MISSING_IMAGE = '0.27.2';

type Log = (line: string) => void;

export interface SecureChartRepo {
  /** https://127.0.0.1:PORT (what the index's chart URLs start with). */
  url: string;
  /** Served folder: packaged charts and index.yaml. */
  dir: string;
  /** PEM of the CA that signed the server certificate: the client's --ca-file. */
  caFile: string;
  username: string;
  stop(): Promise<void>;
}

export interface StartSecureChartRepoOptions {
  /** Served folder (created); the charts are packaged into it. */
  dir: string;
  helm: string;
  /** Issues the server certificate (name `certName`, SANs 127.0.0.1 + localhost). */
  ca: TestCa;
  username: string;
  password: string;
  /** Helm's env for package/index (HELM_*_HOME); merged with process.env. */
  env?: NodeJS.ProcessEnv;
  /** Chart versions (default DEFAULT_CHART_VERSIONS). */
  versions?: string[];
  /** File-name stem of the issued certificate in the CA folder (default 'chart-repo'). */
  certName?: string;
  log?: Log;
}

export interface OciRegistry {
  /** 127.0.0.1:PORT: the registry host in image refs and for `helm registry login`. */
  host: string;
  /** oci://127.0.0.1:PORT/charts: `helm show chart ${chartUrl}/skoala --version V --ca-file CA`. */
  chartUrl: string;
  caFile: string;
  username: string;
  /** Image refs without host (e.g. `skoala/hive:v0.19.2`) that were pushed, sorted. */
  images: string[];
  /** Always MISSING_IMAGE: rendered by VERSION_WITH_MISSING_IMAGE's chart, never pushed. */
  missingImage: string;
  /** The registry's own log. */
  logFile: string;
  stop(): Promise<void>;
}

export interface StartOciRegistryOptions {
  /** Registry storage, config, htpasswd, logs, packaged charts, docker config (created). */
  dir: string;
  tools: Pick<ToolPaths, 'helm' | 'crane' | 'registry'>;
  ca: TestCa;
  username: string;
  password: string;
  /**
   * Helm's HELM_*_HOME for `helm registry login` / `helm push`: the login stays in that config, so
   * pass the sandbox's helmEnv to leave its helm logged in. Default: private folders in dir.
   */
  env?: NodeJS.ProcessEnv;
  /** Chart versions pushed to oci://HOST/charts (default DEFAULT_CHART_VERSIONS). */
  versions?: string[];
  /**
   * Versions whose rendered images are pushed (default: `versions`). Fewer keeps a test fast; the
   * images a left-out version alone renders are then missing too.
   */
  imageVersions?: string[];
  /** File-name stem of the issued certificate in the CA folder (default 'oci-registry'). */
  certName?: string;
  log?: Log;
}

const secs = (t0: number): string => `${((Date.now() - t0) / 1000).toFixed(1)} s`;

/**
 * bcrypt cost of the htpasswd entry. The registry checks the password on every request (no
 * session), and a helm push makes several: 6 is ~16x cheaper than the usual 10 and still bcrypt.
 */
const BCRYPT_COST = 6;

function checkCreds(username: string, password: string): void {
  if (!username || username.includes(':')) throw new Error(`invalid username ${JSON.stringify(username)}`);
  if (!password) throw new Error('empty password');
}

function basicAuthOk(header: string | undefined, expected: Buffer): boolean {
  const m = /^Basic\s+(\S+)$/i.exec(header ?? '');
  if (!m?.[1]) return false;
  const got = Buffer.from(m[1], 'base64');
  return got.length === expected.length && timingSafeEqual(got, expected);
}

function listen(server: Server): Promise<number> {
  return new Promise((res, rej) => {
    server.once('error', rej);
    server.listen(0, '127.0.0.1', () => {
      const addr = server.address();
      res(typeof addr === 'object' && addr ? addr.port : 0);
    });
  });
}

/** Builds the fixture repo in dir and serves it over HTTPS with basic auth (see the file header). */
export async function startSecureChartRepo(opts: StartSecureChartRepoOptions): Promise<SecureChartRepo> {
  checkCreds(opts.username, opts.password);
  const log = opts.log ?? (() => undefined);
  const t0 = Date.now();
  const dir = resolve(opts.dir);
  await mkdir(dir, { recursive: true });
  const cert = await opts.ca.issue(opts.certName ?? 'chart-repo');
  const expected = Buffer.from(`${opts.username}:${opts.password}`);
  const server = createServer({ cert: await readFile(cert.cert), key: await readFile(cert.key) }, (req, res) => {
    const fail = (code: number, headers: Record<string, string> = {}): void => {
      res.writeHead(code, headers).end();
    };
    if (!basicAuthOk(req.headers.authorization, expected)) {
      return fail(401, { 'WWW-Authenticate': 'Basic realm="skoala-chart-repo", charset="UTF-8"' });
    }
    sendRepoFile(dir, req, res);
  });
  const port = await listen(server);
  const url = `https://127.0.0.1:${port}`;
  const stop = (): Promise<void> =>
    new Promise((res) => {
      server.closeAllConnections();
      server.close(() => res());
    });
  try {
    await buildChartRepo({ dir, helm: opts.helm, env: opts.env, versions: opts.versions, url });
  } catch (err) {
    await stop();
    throw err;
  }
  log(`[secure-chart-repo] serving ${url} in ${secs(t0)}`);
  return { url, dir, caFile: opts.ca.caCert, username: opts.username, stop };
}

/** Collects every string under an `image` key (containers, initContainers, anything). */
function collectImages(node: unknown, out: Set<string>): void {
  if (Array.isArray(node)) {
    for (const n of node) collectImages(n, out);
  } else if (node && typeof node === 'object') {
    for (const [k, v] of Object.entries(node)) {
      if (k === 'image' && typeof v === 'string') out.add(v);
      else collectImages(v, out);
    }
  }
}

/**
 * Image refs (without `host/`) that the packaged charts render with global.imageRegistry=host, per
 * chart file, via `helm template` (skoala and skoala-init both read that value).
 */
export async function imagesForCharts(
  helm: string,
  tgzs: string[],
  host: string,
  env?: NodeJS.ProcessEnv
): Promise<Map<string, string[]>> {
  const limit = pLimit(4);
  const result = new Map<string, string[]>();
  await Promise.all(
    tgzs.map((tgz) =>
      limit(async () => {
        const r = await execa(helm, ['template', 'fixture', tgz, '--set', `global.imageRegistry=${host}`], { env });
        const images = new Set<string>();
        for (const doc of parseAllDocuments(r.stdout)) collectImages(doc.toJS(), images);
        const refs = [...images].map((img) => {
          if (!img.startsWith(`${host}/`)) throw new Error(`${tgz} renders ${img}, not from ${host}`);
          return img.slice(host.length + 1);
        });
        result.set(tgz, refs.sort());
      })
    )
  );
  return result;
}

/** Resolves with the HTTP status of GET https://host/v2/ trusting only caPem (0 = no answer). */
function v2Status(host: string, caPem: Buffer): Promise<number> {
  const [hostname, port] = host.split(':');
  return new Promise((res) => {
    const req = request(
      { host: hostname, port: Number(port), path: '/v2/', method: 'GET', ca: caPem, timeout: 5000 },
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

async function waitRegistry(proc: Tracked, host: string, caPem: Buffer, timeoutMs = 30_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  let exit: string | undefined;
  void proc.exited.then((e) => (exit = e));
  for (;;) {
    // 401 is "up, TLS with our cert, auth on": exactly what a client must see first.
    if ((await v2Status(host, caPem)) === 401) return;
    if (exit !== undefined || Date.now() > end) {
      const why = exit !== undefined ? `exited (${exit})` : `no 401 from /v2/ after ${timeoutMs / 1000} s`;
      const tail = await tailFile(proc.logFile);
      await terminate(proc);
      throw new Error(`OCI registry ${host}: ${why}; last lines of ${proc.logFile}:\n${tail}`);
    }
    await sleep(150);
  }
}

function registryConfig(o: { dir: string; host: string; cert: string; key: string; htpasswd: string }): string {
  // JSON is YAML: no quoting surprises with paths.
  return JSON.stringify(
    {
      version: 0.1,
      log: { level: 'info', accesslog: { disabled: true } },
      storage: { filesystem: { rootdirectory: join(o.dir, 'storage') }, delete: { enabled: true } },
      http: {
        addr: o.host,
        secret: randomBytes(16).toString('hex'),
        tls: { certificate: o.cert, key: o.key },
      },
      auth: { htpasswd: { realm: 'skoala-oci-registry', path: o.htpasswd } },
    },
    null,
    2
  );
}

/** Starts the registry and fills it with the fixture charts and images (see the file header). */
export async function startOciRegistry(opts: StartOciRegistryOptions): Promise<OciRegistry> {
  checkCreds(opts.username, opts.password);
  const log = opts.log ?? (() => undefined);
  const t0 = Date.now();
  const dir = resolve(opts.dir);
  await mkdir(dir, { recursive: true });
  const { helm, crane, registry } = opts.tools;
  const versions = opts.versions ?? DEFAULT_CHART_VERSIONS;
  const imageVersions = opts.imageVersions ?? versions;
  const unknown = imageVersions.filter((v) => !versions.includes(v));
  if (unknown.length) throw new Error(`imageVersions not among the chart versions: ${unknown.join(', ')}`);
  const helmEnv = opts.env ?? {
    HELM_CONFIG_HOME: join(dir, 'helm', 'config'),
    HELM_CACHE_HOME: join(dir, 'helm', 'cache'),
    HELM_DATA_HOME: join(dir, 'helm', 'data'),
  };
  const caFile = opts.ca.caCert;
  const craneEnv = { DOCKER_CONFIG: join(dir, 'docker'), SSL_CERT_FILE: caFile };

  const port = await freePort();
  const host = `127.0.0.1:${port}`;
  const cert = await opts.ca.issue(opts.certName ?? 'oci-registry');
  const htpasswd = join(dir, 'htpasswd');
  await writeFile(htpasswd, `${opts.username}:${bcrypt.hashSync(opts.password, BCRYPT_COST)}\n`, { mode: 0o600 });
  const config = join(dir, 'config.yml');
  await writeFile(config, registryConfig({ dir, host, cert: cert.cert, key: cert.key, htpasswd }));
  const logFile = join(dir, 'registry.log');
  const proc = spawnTracked(`registry:${host}`, registry, ['serve', config], logFile, dir);
  const stop = (): Promise<void> => terminate(proc);

  try {
    // Packaging + rendering run while the registry starts.
    const chartsDir = join(dir, 'charts');
    const [, rendered] = await Promise.all([
      waitRegistry(proc, host, await readFile(caFile)).then(() => log(`[oci-registry] ${host} up in ${secs(t0)}`)),
      (async () => {
        await buildChartRepo({ dir: chartsDir, helm, env: helmEnv, versions });
        // Only this call's charts, should dir hold others from an earlier run.
        const files = new Set(await readdir(chartsDir));
        const tgzOf = (v: string): string[] =>
          [`skoala-${v}.tgz`, `skoala-init-${v}.tgz`].filter((f) => files.has(f)).map((f) => join(chartsDir, f));
        const tgzs = versions.flatMap(tgzOf);
        if (tgzs.length !== 2 * versions.length)
          throw new Error(`helm package left ${tgzs.length} charts in ${chartsDir}`);
        const forImages = imageVersions.flatMap(tgzOf);
        return { tgzs, images: await imagesForCharts(helm, forImages, host, helmEnv) };
      })(),
    ]);
    const all = new Set<string>();
    for (const [tgz, refs] of rendered.images) {
      for (const ref of refs) {
        if (ref === MISSING_IMAGE && !tgz.endsWith(`-${VERSION_WITH_MISSING_IMAGE}.tgz`)) {
          throw new Error(`${MISSING_IMAGE} is rendered by ${tgz} too: it would not be missing for one version only`);
        }
        all.add(ref);
      }
    }
    all.delete(MISSING_IMAGE);
    const images = [...all].sort();

    const t1 = Date.now();
    await Promise.all([
      execa(helm, ['registry', 'login', host, '--username', opts.username, '--password-stdin', '--ca-file', caFile], {
        env: helmEnv,
        input: opts.password,
      }),
      execa(crane, ['auth', 'login', host, '-u', opts.username, '--password-stdin'], {
        env: craneEnv,
        input: opts.password,
      }),
    ]);
    const emptyTar = join(dir, 'empty-layer.tar');
    await execa('tar', ['-cf', emptyTar, '-T', '/dev/null']);
    // Every image is the same empty layer: what matters is which refs exist. One `crane append`
    // per repository, then `crane tag` (one manifest PUT, about half the time) for its other tags.
    const byRepo = new Map<string, string[]>();
    for (const ref of images) {
      const [repoName, tag] = ref.split(':') as [string, string];
      byRepo.set(repoName, [...(byRepo.get(repoName) ?? []), tag]);
    }
    const limit = pLimit(4);
    const craneRun = (args: string[]) => limit(() => execa(crane, args, { env: craneEnv }));
    let chartsDone = '';
    await Promise.all([
      Promise.all(
        rendered.tgzs.map((tgz) =>
          limit(() => execa(helm, ['push', tgz, `oci://${host}/charts`, '--ca-file', caFile], { env: helmEnv }))
        )
      ).then(() => (chartsDone = secs(t1))),
      ...[...byRepo].map(async ([repoName, [first, ...rest]]) => {
        await craneRun(['append', '-f', emptyTar, '-t', `${host}/${repoName}:${first}`]);
        await Promise.all(rest.map((tag) => craneRun(['tag', `${host}/${repoName}:${first}`, tag])));
      }),
    ]);
    log(
      `[oci-registry] ${host}: logins + ${rendered.tgzs.length} charts pushed in ${chartsDone}, ` +
        `${images.length} images in ${secs(t1)} (concurrently); ready in ${secs(t0)}`
    );
    return {
      host,
      chartUrl: `oci://${host}/charts`,
      caFile,
      username: opts.username,
      images,
      missingImage: MISSING_IMAGE,
      logFile,
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}
