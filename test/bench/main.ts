/**
 * `npm run bench`: the orchestrator's cost against a plain parallel script, at fleet sizes N and
 * parallelism P, with helm and kubectl replaced by stand-ins that answer as the real tools did
 * (recorded on a real sandbox at the start) after a fixed latency L. Prints a table and writes
 * docs/benchmarks.md. Figures only: nothing here asserts a target.
 *
 *   npm run bench                      # N = 10, 100, 1000; P = 10, 50; resume at N = 1000
 *   npm run bench -- --smoke           # N = 10, P = 10 (CI: proves the bench still runs)
 *   npm run bench -- --real-helm       # also: the hand-run runbook (bash) against the product on
 *                                      # real sandbox clusters, 1 + 6 clusters, P = 1 and 6
 */
import { Command } from 'commander';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startDevServer } from '../../scripts/lib/dev-server';
import { connectClient, type TemporalEnv } from '../../scripts/lib/temporal';
import { record } from './record';
import { runPoint, type Point, type ReplaySetup } from './replay';
import { readProfiles, renderProfiles, summarizeProfile } from './profile';
import { measureResume, type Resume } from './resume';
import { measureRealHelm, renderRealHelm } from './real-helm';
import { renderMarkdown, renderTable, spliceReport } from './report';
import { buildWorkflowBundle } from './worker-process';

const o = new Command('bench')
  .option('--sizes <list>', 'worker clusters per fleet', '10,100,1000')
  .option('--parallel <list>', '--max-parallel values', '10,50')
  .option('--latency <seconds>', 'stand-in latency L per helm/kubectl call', '0.2')
  .option('--resume <n>', 'fleet size of the SIGKILL/resume measurement (0: none)', '1000')
  .option(
    '--profile <n>',
    'also profile the worker (node --cpu-prof) on one run of N clusters at P = 50 (0: none)',
    '1000'
  )
  .option('--one-process', 'run workflows and activities in one worker process (the default splits them)')
  .option('--smoke', 'the smallest size only (N = 10, P = 10), no resume; what CI runs')
  .option('--out <file>', 'markdown report', 'docs/benchmarks.md')
  .option('--version <v>', 'target version', '0.19.2')
  .option('--keep', 'keep the bench directory')
  .option('--real-helm', 'also measure the runbook script against the product with the real helm and kubectl')
  .option('--real-helm-runs <n>', 'runs per point of the real-helm measurement (medians)', '3')
  .parse()
  .opts<{
    sizes: string;
    parallel: string;
    latency: string;
    resume: string;
    profile: string;
    smoke?: boolean;
    oneProcess?: boolean;
    out: string;
    version: string;
    keep?: boolean;
    realHelm?: boolean;
    realHelmRuns: string;
  }>();

const list = (s: string) => s.split(',').map((x) => Number(x.trim()));
const sizes = o.smoke ? [10] : list(o.sizes);
const parallels = o.smoke ? [10] : list(o.parallel);
const resumeSize = o.smoke ? 0 : Number(o.resume);
const profileSize = o.smoke ? 0 : Number(o.profile);
const latency = Number(o.latency);
const log = (l: string) => console.log(`[bench] ${l}`);

const dir = await mkdtemp(path.join(tmpdir(), 'skoala-bench-'));
log(`working in ${dir}`);
await buildWorkflowBundle();
const recording = await record(path.join(dir, 'record'), o.version, log);
log(
  `per-cluster chains: control plane ${recording.controlPlaneCalls.length} commands, worker ${recording.workerCalls.length} commands`
);
const server = await startDevServer({ logFile: path.join(dir, 'temporal-server.log') });
const temporal: TemporalEnv = {
  address: server.address,
  namespace: 'default',
  connectionOptions: { address: server.address },
  security: 'plain',
  uiUrl: '(no UI)',
  taskQueue: 'bench',
};
const client = await connectClient(temporal);
const setup: ReplaySetup = {
  recording,
  client,
  temporal,
  dir: path.join(dir, 'runs'),
  latency,
  version: o.version,
  split: !o.oneProcess,
};
const points: Point[] = [];
let resume: Resume | undefined;
let realHelm: string | undefined;
try {
  for (const n of sizes) {
    for (const p of parallels) {
      log(`N = ${n}, P = ${p}...`);
      const point = await runPoint(setup, n, p);
      points.push(point);
      console.log(renderTable([point], latency));
      log(
        `dispatch p50 ${point.dispatchP50Ms} ms, turnaround p50 ${point.turnaroundP50Ms} ms; by activity: ${Object.entries(
          point.byActivity
        )
          .map(([a, v]) => `${a} ${v.n}x ${v.dispatchP50Ms}+${v.turnaroundP50Ms}`)
          .join(', ')}`
      );
    }
  }
  if (resumeSize > 0) {
    log(`resume after SIGKILL at N = ${resumeSize}...`);
    resume = await measureResume(setup, resumeSize, 50);
  }
  if (o.realHelm) {
    log('real helm: the runbook script against the product on real sandbox clusters (1 + 6, P = 1 and 6)...');
    const r = await measureRealHelm({
      workers: 6,
      parallel: [1, 6],
      runs: Number(o.realHelmRuns),
      version: o.version,
      dir: path.join(dir, 'real-helm'),
      log: (l) => log(`real helm: ${l}`),
      bundleBuilt: true,
    });
    realHelm = renderRealHelm(r);
  }
  let profile: string | undefined;
  if (profileSize > 0) {
    log(`profiling the worker at N = ${profileSize}, P = 50...`);
    const profDir = path.join(dir, 'profile');
    const point = await runPoint(setup, profileSize, 50, { cpuProfileDir: profDir, skipBaseline: true });
    const summaries = (await readProfiles(profDir)).map(({ file, profile: p }) => ({
      file,
      summary: summarizeProfile(p),
    }));
    profile = `Profiled run: N = ${point.clusters}, P = 50, ${(point.productMs / 1000).toFixed(1)} s (the profiler slows the worker).\n\n${renderProfiles(summaries)}`;
    console.log(profile);
  }
  console.log(renderTable(points, latency));
  if (resume) console.log(`resume: ${JSON.stringify(resume)}`);
  if (realHelm) console.log(realHelm);
  const md = renderMarkdown({
    points,
    resume,
    profile,
    latency,
    recording,
    smoke: Boolean(o.smoke),
    realHelm,
    args: process.argv.slice(2),
  });
  await writeFile(o.out, spliceReport(await readFile(o.out, 'utf8').catch(() => undefined), md));
  log(`wrote ${o.out}`);
  const misses = points.reduce((a, p) => a + p.misses, 0);
  if (misses > 0) {
    console.error(`[bench] ${misses} stand-in calls had no recorded answer: the figures are not valid`);
    process.exitCode = 1;
  }
  const short = points.filter((p) => p.outcomes.upgraded !== p.clusters + 1);
  for (const p of short) {
    console.error(
      `[bench] N = ${p.clusters}, P = ${p.maxParallel}: not every cluster upgraded: ${JSON.stringify(p.outcomes)}`
    );
    process.exitCode = 1;
  }
} finally {
  await client.connection.close();
  await server.teardown();
  if (!o.keep) await rm(dir, { recursive: true, force: true });
}
