// A fully offline Helm chart repository: fixture charts are written from TS templates,
// `helm package`d, indexed with the loopback URL and served by node:http on 127.0.0.1.
import { createReadStream } from 'node:fs';
import { mkdir, mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { dirname, join, normalize, resolve, sep } from 'node:path';
import { execa } from 'execa';
import { skoalaChart, skoalaInitChart, type ChartFiles } from './chart-sources';

// 0.19.3 and 0.28.2 are the versions the sandbox's workload stand-in treats as broken (a component
// never gets ready); 0.20.0 stays missing (the e2e preflight test needs a version the repo lacks).
export const DEFAULT_CHART_VERSIONS = ['0.18.0', '0.19.2', '0.19.3', '0.27.2', '0.28.1', '0.28.2', '0.52.1', '0.53.0'];

export interface ChartRepoOptions {
  dir: string;
  helm: string;
  versions?: string[];
  env?: NodeJS.ProcessEnv;
  /** When set, `helm repo index --url` runs too (the URL is known only once a server listens). */
  url?: string;
}

async function writeChart(root: string, files: ChartFiles): Promise<void> {
  for (const [path, content] of Object.entries(files)) {
    await mkdir(dirname(join(root, path)), { recursive: true });
    await writeFile(join(root, path), content);
  }
}

/** Writes the chart sources (in a temp folder) and packages skoala + skoala-init per version into dir. */
export async function buildChartRepo(opts: ChartRepoOptions): Promise<{ dir: string }> {
  const dir = resolve(opts.dir);
  await mkdir(dir, { recursive: true });
  const src = await mkdtemp(join(tmpdir(), 'skoala-chart-src-'));
  try {
    const sources: string[] = [];
    for (const v of opts.versions ?? DEFAULT_CHART_VERSIONS) {
      for (const [name, files] of [
        ['skoala', skoalaChart(v)],
        ['skoala-init', skoalaInitChart(v)],
      ] as const) {
        const root = join(src, `${name}-${v}`, name);
        await writeChart(root, files);
        sources.push(root);
      }
    }
    // One helm call for all charts: each call costs ~100 ms of Go start-up.
    await execa(opts.helm, ['package', ...sources, '--destination', dir], { env: opts.env });
  } finally {
    await rm(src, { recursive: true, force: true });
  }
  if (opts.url) await execa(opts.helm, ['repo', 'index', dir, '--url', opts.url], { env: opts.env });
  return { dir };
}

/**
 * Answers a chart repository request from dir (index.yaml, the packaged charts): GET and HEAD
 * only, never outside dir. Shared by the plain and the HTTPS-with-auth repositories.
 */
export function sendRepoFile(dir: string, req: IncomingMessage, res: ServerResponse): void {
  const fail = (code: number): void => {
    res.writeHead(code).end();
  };
  if (req.method !== 'GET' && req.method !== 'HEAD') return fail(405);
  let path: string;
  try {
    path = normalize(decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname));
  } catch {
    return fail(400); // a malformed %-escape
  }
  const file = join(dir, path);
  if (file !== dir && !file.startsWith(dir + sep)) return fail(403);
  stat(file).then(
    (st) => {
      if (!st.isFile()) return fail(404);
      const type = file.endsWith('.yaml')
        ? 'application/x-yaml'
        : file.endsWith('.tgz')
          ? 'application/gzip'
          : 'application/octet-stream';
      res.writeHead(200, { 'Content-Type': type, 'Content-Length': st.size });
      if (req.method === 'HEAD') return res.end();
      createReadStream(file).pipe(res);
    },
    () => fail(404)
  );
}

function serveDir(dir: string): ReturnType<typeof createServer> {
  return createServer((req, res) => sendRepoFile(dir, req, res));
}

/** Builds the repo in dir and serves it on 127.0.0.1 (a free port); the index carries that URL. */
export async function startChartRepo(
  opts: Omit<ChartRepoOptions, 'url'>
): Promise<{ url: string; dir: string; stop(): Promise<void> }> {
  const dir = resolve(opts.dir);
  await mkdir(dir, { recursive: true });
  const server = serveDir(dir);
  await new Promise<void>((res, rej) => {
    server.once('error', rej);
    server.listen(0, '127.0.0.1', () => res());
  });
  const addr = server.address();
  const url = `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}`;
  const stop = (): Promise<void> =>
    new Promise((res) => {
      server.closeAllConnections();
      server.close(() => res());
    });
  try {
    await buildChartRepo({ ...opts, dir, url });
  } catch (err) {
    await stop();
    throw err;
  }
  return { url, dir, stop };
}
