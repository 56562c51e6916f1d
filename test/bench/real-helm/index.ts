/**
 * The "real helm" benchmark: the hand-run runbook (runbook.sh, plain bash and xargs -P) against
 * the product, both on real sandbox clusters (real kube-apiservers, the real helm and kubectl),
 * each on a fresh local stack with 1 control plane and N worker clusters installed at 0.18.0, and
 * both ending in the same state (checked). Figures: wall time in total and per cluster, at each
 * parallelism P; where the product spends its extra time (activities, command counts).
 */
import { execa } from 'execa';
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { isDeepStrictEqual } from 'node:util';
import { num, timeOf, type HistoryEvent } from '../../../scripts/lib/report/history';
import { startLocalStack, type LocalStack } from '../../../scripts/lib/local-stack';
import { connectClient } from '../../../scripts/lib/temporal';
import { dbMigrationNeed } from '../../../runbook/rules';
import type { UpgradeResult } from '../../../runbook/types';
import { DB_MIGRATION_JOB, SANDBOX_NAMESPACE, type SandboxCluster } from '../../../sandbox';
import type { upgradeEngine } from '../../../workflows';
import { runProduct } from '../product-run';
import { markdownTable } from '../report';
import { buildWorkflowBundle, WORKFLOW_BUNDLE } from '../worker-process';

const RUNBOOK = fileURLToPath(new URL('./runbook.sh', import.meta.url));
const INSTALL_VERSION = '0.18.0';

/** helm and kubectl behind wrappers that append `epoch<TAB>tool args` to `log`: both modes count their commands. */
interface LoggedTools {
  helm: string;
  kubectl: string;
  log: string;
}

async function loggedTools(dir: string, real: { helm: string; kubectl: string }): Promise<LoggedTools> {
  const bin = path.join(dir, 'logged-bin');
  await mkdir(bin, { recursive: true });
  const log = path.join(dir, 'commands.log');
  for (const tool of ['helm', 'kubectl'] as const) {
    const script = `#!/bin/bash\nprintf '%s\\t%s\\n' "$EPOCHREALTIME" "${tool} $*" >> '${log}'\nexec '${real[tool]}' "$@"\n`;
    await writeFile(path.join(bin, tool), script, { mode: 0o755 });
  }
  return { helm: path.join(bin, 'helm'), kubectl: path.join(bin, 'kubectl'), log };
}

/** The CRDs skoala-init installs (shared/runbook.md): present after the upgrade, from the target chart. */
export const WORKER_CRDS = [
  'contourconfigurations.projectcontour.io',
  'contourdeployments.projectcontour.io',
  'extensionservices.projectcontour.io',
  'httpproxies.projectcontour.io',
  'tlscertificatedelegations.projectcontour.io',
  'gatewayclasses.gateway.networking.k8s.io',
  'gateways.gateway.networking.k8s.io',
  'grpcroutes.gateway.networking.k8s.io',
  'httproutes.gateway.networking.k8s.io',
  'referencegrants.gateway.networking.k8s.io',
  'tcproutes.gateway.networking.k8s.io',
  'tlsroutes.gateway.networking.k8s.io',
  'udproutes.gateway.networking.k8s.io',
];
/** The fixture charts stamp each CRD with the chart version it came from. */
const CRD_VERSION_ANNOTATION = 'fixtures.skoala-upgrade/chart-version';

export type Mode = 'script' | 'product';

export interface RealHelmOptions {
  workers: number;
  parallel: number[];
  runs: number;
  version: string;
  dir: string;
  log: (line: string) => void;
  /** The workflow bundle is current (the caller built it): do not build it again. */
  bundleBuilt?: boolean;
}

/** helm/kubectl commands one mode ran, from the wrappers' log, the sandbox stand-ins' own left out. */
export interface CommandCounts {
  controlPlane: number;
  /** Per worker cluster. */
  workers: Record<string, number>;
  /** Commands that name no cluster (repo add/update, pull, version). */
  host: number;
  /** Per command ("helm get values", "kubectl apply", ...), summed over the worker clusters. */
  workerVerbs: Record<string, number>;
  controlPlaneVerbs: Record<string, number>;
}

export interface ModeRun {
  mode: Mode;
  parallel: number;
  run: number;
  totalMs: number;
  controlPlaneMs: number;
  /** Product: from the workflow's start to the control plane's first step (preflight, rules, plan). */
  beforeControlPlaneMs: number;
  /** Per worker cluster, its wall time. */
  workers: Record<string, number>;
  commands?: CommandCounts;
  /** Product: per activity type, its run times (started -> completed, ms) in the worker clusters' children. */
  workerActivities?: Record<string, number[]>;
  /** Product: per activity type, its run times in the parent (preflight and the control plane). */
  parentActivities?: Record<string, number[]>;
  /** Product: per worker cluster, its child's wall time not spent in an activity (dispatch, turnaround, timers). */
  workerGapsMs?: number[];
}

export interface RealHelmRow {
  mode: Mode;
  parallel: number;
  runs: number;
  /** Medians over the runs (per-worker figures: over every worker cluster of every run). */
  totalMs: number;
  controlPlaneMs: number;
  beforeControlPlaneMs: number;
  workerP50Ms: number;
  workerMaxMs: number;
  /** product / script at the same P (product rows). */
  totalRatio?: number;
  workerRatio?: number;
  commandsControlPlane?: number;
  commandsPerWorker?: number;
  commandsHost?: number;
}

export interface RealHelmResult {
  workers: number;
  version: string;
  parallel: number[];
  runs: ModeRun[];
  rows: RealHelmRow[];
}

interface ClusterEnd {
  release: string;
  chart: string;
  appVersion: string;
  status: string;
  values: unknown;
  /** Deployment name -> its container images. */
  images: Record<string, string[]>;
  /** Worker clusters: CRD name -> the chart version it came from. */
  crds?: Record<string, string>;
}

type EndState = Record<string, ClusterEnd>;

export function median(values: number[]): number {
  if (values.length === 0) return NaN;
  const s = [...values].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
}

export async function measureRealHelm(opts: RealHelmOptions): Promise<RealHelmResult> {
  const { log } = opts;
  if (!opts.bundleBuilt || !existsSync(WORKFLOW_BUNDLE)) await buildWorkflowBundle();
  const runs: ModeRun[] = [];
  for (let run = 1; run <= opts.runs; run++) {
    for (const p of opts.parallel) {
      const ends: Partial<Record<Mode, EndState>> = {};
      for (const mode of ['script', 'product'] as const) {
        const name = `run${run}-p${p}-${mode}`;
        const t0 = Date.now();
        const stack = await startLocalStack({
          workers: opts.workers,
          installVersion: INSTALL_VERSION,
          brokenImages: {},
          dir: path.join(opts.dir, name),
          log: () => undefined,
        });
        try {
          log(
            `${name}: fresh stack (1 control plane + ${opts.workers} workers at ${INSTALL_VERSION}) in ${s(Date.now() - t0)} s`
          );
          const r =
            mode === 'script'
              ? await runScript(stack, opts.version, p, path.join(opts.dir, name, 'runbook'))
              : await runProductMode(stack, opts.version, p, path.join(opts.dir, name, 'product'));
          const m: ModeRun = { mode, parallel: p, run, ...r };
          runs.push(m);
          log(
            `${name}: total ${s(m.totalMs)} s, control plane ${s(m.controlPlaneMs)} s, workers ${Object.values(
              m.workers
            )
              .map(s)
              .join(
                ' '
              )} s${m.commands ? `; commands: control plane ${m.commands.controlPlane}, per worker ${median(Object.values(m.commands.workers))}, host ${m.commands.host}` : ''}`
          );
          const end = await readEndState(stack);
          const problems = endStateProblems(end, stack, opts.version);
          if (problems.length > 0) throw new Error(`${name}: wrong end state: ${problems.join('; ')}`);
          ends[mode] = end;
        } finally {
          await stack.stop();
        }
      }
      const diff = endStateDiff(ends.script ?? {}, ends.product ?? {});
      if (diff.length > 0)
        throw new Error(`run ${run}, P = ${p}: the script and the product ended differently: ${diff.join('; ')}`);
      log(`run ${run}, P = ${p}: script and product ended in the same state`);
    }
  }
  const result: RealHelmResult = {
    workers: opts.workers,
    version: opts.version,
    parallel: opts.parallel,
    runs,
    rows: rowsOf(runs, opts.parallel),
  };
  await writeFile(path.join(opts.dir, 'real-helm.json'), JSON.stringify(result, null, 2));
  return result;
}

const s = (ms: number): string => (Number.isFinite(ms) ? (ms / 1000).toFixed(1) : '-');

/** The clusters file runbook.sh reads: NAME<TAB>KUBECONFIG<TAB>CONTEXT, control plane first. */
const clusterLine = (c: SandboxCluster): string => [c.name, c.kubeconfig, c.context].join('\t');

type Measured = Omit<ModeRun, 'mode' | 'parallel' | 'run'>;

async function runScript(stack: LocalStack, version: string, p: number, dir: string): Promise<Measured> {
  const sb = stack.sandbox;
  await mkdir(dir, { recursive: true });
  const tools = await loggedTools(dir, sb.tools);
  const clusters = path.join(dir, 'clusters.tsv');
  await writeFile(clusters, [sb.controlPlane, ...sb.workers].map(clusterLine).join('\n') + '\n');
  const needsDbJob = dbMigrationNeed(INSTALL_VERSION, version) === 'required';
  const env: NodeJS.ProcessEnv = {
    ...sb.helmEnv,
    HELM: tools.helm,
    KUBECTL: tools.kubectl,
    VERSION: version,
    REPO_URL: sb.chartRepo.url,
    P: String(p),
    WORK: path.join(dir, 'work'),
    DB_JOB: needsDbJob ? DB_MIGRATION_JOB : '',
  };
  const t0 = Date.now();
  const r = await execa('bash', [RUNBOOK, clusters], { env, reject: false });
  const t1 = Date.now();
  await writeFile(path.join(dir, 'stdout.txt'), r.stdout);
  await writeFile(path.join(dir, 'stderr.txt'), r.stderr);
  if (r.exitCode !== 0) throw new Error(`runbook.sh failed (exit ${String(r.exitCode)}):\n${r.stderr}`);
  const times = new Map<string, number>();
  for (const line of r.stdout.split('\n').filter(Boolean)) {
    const [name, start, end] = line.split('\t');
    if (name && start && end) times.set(name, (Number(end) - Number(start)) * 1000);
  }
  const missing = [sb.controlPlane, ...sb.workers].filter((c) => !times.has(c.name)).map((c) => c.name);
  if (missing.length > 0) throw new Error(`runbook.sh printed no time for ${missing.join(', ')}:\n${r.stdout}`);
  return {
    totalMs: t1 - t0,
    controlPlaneMs: times.get(sb.controlPlane.name) as number,
    beforeControlPlaneMs: 0,
    workers: Object.fromEntries(sb.workers.map((w) => [w.name, times.get(w.name) as number])),
    ...(await commandsIn(stack, tools.log, t0, t1)),
  };
}

async function runProductMode(stack: LocalStack, version: string, p: number, dir: string): Promise<Measured> {
  const sb = stack.sandbox;
  await mkdir(dir, { recursive: true });
  const tools = await loggedTools(dir, sb.tools);
  const client = await connectClient(stack.env);
  try {
    const t0 = Date.now();
    const run = await runProduct({
      client,
      temporal: stack.env,
      fleetFile: stack.fleetFile,
      version,
      maxParallel: p,
      workerEnv: () => ({
        ...sb.helmEnv,
        SKOALA_HELM: tools.helm,
        SKOALA_KUBECTL: tools.kubectl,
        SKOALA_WORK_DIR: path.join(dir, 'work'),
        SKOALA_BACKUP_DIR: path.join(dir, 'backups'),
      }),
    });
    const t1 = Date.now();
    const expected = sb.workers.length + 1;
    if (run.counts.upgraded !== expected)
      throw new Error(
        `the product upgraded ${run.counts.upgraded ?? 0} of ${expected} clusters: ${JSON.stringify(run.counts)}`
      );
    const parent = client.workflow.getHandle<typeof upgradeEngine>(run.workflowId);
    const result: UpgradeResult = await parent.result();
    const parentStart = (await parent.describe()).startTime.getTime();
    const cp = result.controlPlane;
    if (!cp.startedAt || !cp.finishedAt) throw new Error('the product recorded no control-plane start/finish');
    const cpStart = Date.parse(cp.startedAt);
    const workers: Record<string, number> = {};
    const workerActivities: Record<string, number[]> = {};
    const workerGapsMs: number[] = [];
    for (const w of sb.workers) {
      const child = client.workflow.getHandle(`${run.workflowId}/${w.name}`);
      const d = await child.describe();
      if (!d.closeTime) throw new Error(`${w.name}: its child workflow has not closed`);
      const wall = d.closeTime.getTime() - d.startTime.getTime();
      workers[w.name] = wall;
      const acts = activityRunTimes((await child.fetchHistory()).events ?? []);
      let inActivities = 0;
      for (const [type, times] of Object.entries(acts)) {
        (workerActivities[type] ??= []).push(...times);
        inActivities += times.reduce((a, b) => a + b, 0);
      }
      workerGapsMs.push(wall - inActivities);
    }
    const parentActivities = activityRunTimes((await parent.fetchHistory()).events ?? []);
    await writeFile(path.join(dir, 'result.json'), JSON.stringify(result, null, 2));
    return {
      totalMs: run.wallMs,
      controlPlaneMs: Date.parse(cp.finishedAt) - cpStart,
      beforeControlPlaneMs: cpStart - parentStart,
      workers,
      workerActivities,
      parentActivities,
      workerGapsMs,
      ...(await commandsIn(stack, tools.log, t0, t1)),
    };
  } finally {
    await client.connection.close();
  }
}

/** Per activity type, the run time of each of its executions (started -> completed or failed). */
function activityRunTimes(events: HistoryEvent[]): Record<string, number[]> {
  const types = new Map<number, string>();
  const started = new Map<number, number>();
  const out: Record<string, number[]> = {};
  for (const e of events) {
    const scheduled = e.activityTaskScheduledEventAttributes;
    if (scheduled) types.set(num(e.eventId) ?? 0, scheduled.activityType?.name ?? '?');
    const st = e.activityTaskStartedEventAttributes;
    if (st) started.set(num(st.scheduledEventId) ?? 0, timeOf(e));
    const end = e.activityTaskCompletedEventAttributes ?? e.activityTaskFailedEventAttributes;
    if (end) {
      const id = num(end.scheduledEventId) ?? 0;
      const at = started.get(id);
      if (at !== undefined) (out[types.get(id) ?? '?'] ??= []).push(timeOf(e) - at);
    }
  }
  return out;
}

/** The commands the wrappers logged between t0 and t1 for this stack (none without the log). */
async function commandsIn(
  stack: LocalStack,
  cmdlog: string,
  t0: number,
  t1: number
): Promise<{ commands?: CommandCounts }> {
  const text = await readFile(cmdlog, 'utf8').catch(() => undefined);
  if (text === undefined) return {};
  const sb = stack.sandbox;
  const counts: CommandCounts = {
    controlPlane: 0,
    workers: Object.fromEntries(sb.workers.map((w) => [w.name, 0])),
    host: 0,
    workerVerbs: {},
    controlPlaneVerbs: {},
  };
  for (const line of text.split('\n')) {
    const tab = line.indexOf('\t');
    const at = Number(line.slice(0, tab)) * 1000;
    if (tab < 0 || !(at >= t0 && at <= t1)) continue;
    const cmd = line.slice(tab + 1);
    // The sandbox's Job and workload stand-ins (no controllers run there) poll and patch on their own.
    if (cmd.includes('--subresource=status') || cmd.includes('--request-timeout=10s') || /get jobs -o json$/.test(cmd))
      continue;
    const kube = /--kubeconfig (\S+)/.exec(cmd)?.[1];
    if (kube === undefined) {
      // Host commands of another sandbox's run would name its dir or repo: only ours, or none.
      const paths = cmd.match(/\/tmp\/\S+|https?:\/\/\S+/g) ?? [];
      if (paths.every((x) => x.startsWith(sb.dir) || x.startsWith(sb.chartRepo.url))) counts.host++;
      continue;
    }
    if (!kube.startsWith(sb.dir)) continue;
    const cluster = /\/clusters\/([^/]+)\/kubeconfig$/.exec(kube)?.[1];
    const verb = verbOf(cmd);
    if (cluster === sb.controlPlane.name) {
      counts.controlPlane++;
      counts.controlPlaneVerbs[verb] = (counts.controlPlaneVerbs[verb] ?? 0) + 1;
    } else if (cluster !== undefined && cluster in counts.workers) {
      counts.workers[cluster] = (counts.workers[cluster] ?? 0) + 1;
      counts.workerVerbs[verb] = (counts.workerVerbs[verb] ?? 0) + 1;
    }
  }
  return { commands: counts };
}

const VALUE_FLAGS = new Set(['--kubeconfig', '--kube-context', '--context', '-n', '--namespace']);
const TWO_WORD = new Set(['get', 'repo', 'rollout', 'show', 'registry', 'delete', 'wait']);

/** "helm get values", "kubectl apply --dry-run", "kubectl get crd": what a command does, not its target. */
export function verbOf(cmd: string): string {
  const [tool, ...rest] = cmd.split(' ');
  const words: string[] = [];
  for (let i = 0; i < rest.length && words.length < 2; i++) {
    const w = rest[i] as string;
    if (VALUE_FLAGS.has(w)) i++;
    else if (!w.startsWith('-') && w !== '') words.push(w);
  }
  // `get deployment.apps/hive`, `wait job/x`: the kind, not the object.
  const verb = TWO_WORD.has(words[0] ?? '') ? words.join(' ').replace(/\/\S*$/, '') : (words[0] ?? '');
  return `${tool} ${verb}${cmd.includes('--dry-run') ? ' --dry-run' : ''}`;
}

async function readEndState(stack: LocalStack): Promise<EndState> {
  const sb = stack.sandbox;
  const env = { ...process.env, ...sb.helmEnv };
  const json = async (tool: string, args: string[]): Promise<unknown> =>
    JSON.parse((await execa(tool, args, { env })).stdout) as unknown;
  const one = async (c: SandboxCluster, release: string, worker: boolean): Promise<[string, ClusterEnd]> => {
    const h = ['--kubeconfig', c.kubeconfig, '--kube-context', c.context, '-n', SANDBOX_NAMESPACE];
    const k = ['--kubeconfig', c.kubeconfig, '--context', c.context];
    const [list, values, deploys, crds] = await Promise.all([
      json(sb.tools.helm, [...h, 'list', '-a', '-o', 'json']) as Promise<
        { name: string; chart: string; app_version: string; status: string }[]
      >,
      json(sb.tools.helm, [...h, 'get', 'values', release, '-o', 'json']),
      json(sb.tools.kubectl, [...k, '-n', SANDBOX_NAMESPACE, 'get', 'deployments', '-o', 'json']) as Promise<{
        items: { metadata: { name: string }; spec: { template: { spec: { containers: { image: string }[] } } } }[];
      }>,
      worker
        ? (json(sb.tools.kubectl, [...k, 'get', 'crd', '-o', 'json']) as Promise<{
            items: { metadata: { name: string; annotations?: Record<string, string> } }[];
          }>)
        : undefined,
    ]);
    const rel = list.find((r) => r.name === release);
    return [
      c.name,
      {
        release,
        chart: rel?.chart ?? '(none)',
        appVersion: rel?.app_version ?? '(none)',
        status: rel?.status ?? '(none)',
        values,
        images: Object.fromEntries(
          deploys.items
            .map((d) => [d.metadata.name, d.spec.template.spec.containers.map((x) => x.image)] as const)
            .sort(([a], [b]) => a.localeCompare(b))
        ),
        ...(crds
          ? {
              crds: Object.fromEntries(
                crds.items
                  .filter((x) => WORKER_CRDS.includes(x.metadata.name))
                  .map((x) => [x.metadata.name, x.metadata.annotations?.[CRD_VERSION_ANNOTATION] ?? '(none)'] as const)
                  .sort(([a], [b]) => a.localeCompare(b))
              ),
            }
          : {}),
      },
    ];
  };
  return Object.fromEntries(
    await Promise.all([one(sb.controlPlane, 'skoala', false), ...sb.workers.map((w) => one(w, 'skoala-init', true))])
  );
}

/** Every release deployed at the target chart, every worker's CRDs present and from the target chart. */
function endStateProblems(end: EndState, stack: LocalStack, version: string): string[] {
  const problems: string[] = [];
  for (const c of [stack.sandbox.controlPlane, ...stack.sandbox.workers]) {
    const e = end[c.name];
    if (!e) {
      problems.push(`${c.name}: not read`);
      continue;
    }
    if (e.chart !== `${e.release}-${version}` || e.status !== 'deployed')
      problems.push(`${c.name}: ${e.release} is ${e.chart} ${e.status}, not ${e.release}-${version} deployed`);
    if (!e.crds) continue;
    const wrong = WORKER_CRDS.filter((n) => e.crds?.[n] !== version);
    if (wrong.length > 0)
      problems.push(
        `${c.name}: CRDs missing or not from ${version}: ${wrong.map((n) => `${n} (${e.crds?.[n] ?? 'absent'})`).join(', ')}`
      );
  }
  return problems;
}

function endStateDiff(a: EndState, b: EndState): string[] {
  const names = [...new Set([...Object.keys(a), ...Object.keys(b)])].sort();
  return names
    .filter((n) => !isDeepStrictEqual(a[n], b[n]))
    .map((n) => `${n}: script ${JSON.stringify(a[n])} vs product ${JSON.stringify(b[n])}`);
}

function rowsOf(runs: ModeRun[], parallel: number[]): RealHelmRow[] {
  const rows: RealHelmRow[] = [];
  for (const p of parallel) {
    const byMode = (mode: Mode): RealHelmRow | undefined => {
      const rs = runs.filter((r) => r.mode === mode && r.parallel === p);
      if (rs.length === 0) return undefined;
      const perWorker = rs.flatMap((r) => Object.values(r.workers));
      const cmds = rs.flatMap((r) => (r.commands ? [r.commands] : []));
      return {
        mode,
        parallel: p,
        runs: rs.length,
        totalMs: median(rs.map((r) => r.totalMs)),
        controlPlaneMs: median(rs.map((r) => r.controlPlaneMs)),
        beforeControlPlaneMs: median(rs.map((r) => r.beforeControlPlaneMs)),
        workerP50Ms: median(perWorker),
        workerMaxMs: median(rs.map((r) => Math.max(...Object.values(r.workers)))),
        ...(cmds.length > 0
          ? {
              commandsControlPlane: median(cmds.map((c) => c.controlPlane)),
              commandsPerWorker: median(cmds.flatMap((c) => Object.values(c.workers))),
              commandsHost: median(cmds.map((c) => c.host)),
            }
          : {}),
      };
    };
    const script = byMode('script');
    const product = byMode('product');
    if (script) rows.push(script);
    if (product) {
      rows.push({
        ...product,
        ...(script
          ? { totalRatio: product.totalMs / script.totalMs, workerRatio: product.workerP50Ms / script.workerP50Ms }
          : {}),
      });
    }
  }
  return rows;
}

const x = (r: number | undefined): string => (r === undefined ? '-' : `${r.toFixed(2)}x`);
const n = (v: number | undefined): string => (v === undefined ? '-' : String(v));

export const REAL_HELM_HEADERS = [
  'P',
  'mode',
  'total s',
  'total vs script',
  'before control plane s',
  'control plane s',
  'worker p50 s',
  'worker p50 vs script',
  'slowest worker s',
  'commands: control plane',
  'per worker',
  'host',
];

/** The figures as markdown: the wall times, then where the product's worker-cluster time goes. */
export function renderRealHelm(r: RealHelmResult): string {
  const rows = r.rows.map((w) => [
    String(w.parallel),
    w.mode,
    s(w.totalMs),
    x(w.totalRatio),
    w.mode === 'script' ? '-' : s(w.beforeControlPlaneMs),
    s(w.controlPlaneMs),
    s(w.workerP50Ms),
    x(w.workerRatio),
    s(w.workerMaxMs),
    n(w.commandsControlPlane),
    n(w.commandsPerWorker),
    n(w.commandsHost),
  ]);
  const runs = Math.max(...r.rows.map((w) => w.runs));
  const lines = [
    `Real helm and kubectl on sandbox clusters: 1 control plane + ${r.workers} worker clusters, ${INSTALL_VERSION} -> ${r.version},`,
    `the hand-run runbook (\`test/bench/real-helm/runbook.sh\`, bash and \`xargs -P\`) against the product`,
    `(\`--max-parallel P\`, CRD steps approved ahead), a fresh stack per measurement, both ending in the same`,
    `state (checked). Medians of ${runs} run(s); per-worker figures over every worker cluster of every run.`,
    '',
    markdownTable(REAL_HELM_HEADERS, rows),
    '',
    `Commands: helm and kubectl processes started (each mode runs them through a logging wrapper), the sandbox's`,
    `own stand-ins left out; \`host\`: commands that name no cluster (repo add/update, pull). The script checks`,
    `nothing after the upgrade; the product also checks the workloads and the release.`,
  ];
  const product = r.runs.filter((m) => m.mode === 'product' && m.workerActivities);
  if (product.length > 0) {
    const perType = new Map<string, number[]>();
    for (const m of product)
      for (const [type, times] of Object.entries(m.workerActivities ?? {}))
        perType.set(type, [...(perType.get(type) ?? []), ...times]);
    const clusters = product.reduce((a, m) => a + Object.keys(m.workers).length, 0);
    const gaps = product.flatMap((m) => m.workerGapsMs ?? []);
    const actRows = [...perType.entries()]
      .map(([type, times]) => ({ type, times, total: times.reduce((a, b) => a + b, 0) }))
      .sort((a, b) => b.total - a.total)
      .map((a) => [a.type, (a.times.length / clusters).toFixed(1), s(median(a.times)), s(a.total / clusters)]);
    actRows.push(['(between activities: dispatch, turnaround, waits)', '-', '-', s(median(gaps))]);
    lines.push(
      '',
      'Where a worker cluster\u2019s time goes in the product (its child workflow, all P, all runs):',
      '',
      markdownTable(['activity', 'per cluster', 'median s', 's per cluster'], actRows)
    );
  }
  return lines.join('\n');
}
