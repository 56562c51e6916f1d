/**
 * One (N, P) point of the benchmark: the product upgrades N stand-in worker clusters at
 * `--max-parallel P`, then the shell baseline runs the same commands; figures from both.
 */
import type { Client } from '@temporalio/client';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { stringify } from 'yaml';
import type { TemporalEnv } from '../../scripts/lib/temporal';
import { runBaseline } from './baseline';
import { percentile, readHistories } from './history-metrics';
import { runProduct, type ProductRunOptions } from './product-run';
import type { Recording } from './record';
import { readCalls, standInEnv } from './stand-in';

export interface Point {
  clusters: number;
  maxParallel: number;
  productMs: number;
  baselineMs: number;
  /** Control-plane chain + ceil(N/P) x worker chain, at L per command. */
  idealMs: number;
  overheadP50Ms: number;
  overheadP95Ms: number;
  /** The same, over the worker clusters' chains only (child workflows). */
  chainOverheadP50Ms: number;
  chainOverheadP95Ms: number;
  dispatchP50Ms: number;
  turnaroundP50Ms: number;
  activities: number;
  peakRssMiB: number;
  parentRuns: number;
  parentEventsMax: number;
  outcomes: Record<string, number>;
  /** Per activity type: how many, median dispatch and turnaround (where the overhead goes). */
  byActivity: Record<string, { n: number; dispatchP50Ms: number; turnaroundP50Ms: number }>;
  /** Stand-in calls the recording could not answer (must be 0 for a valid point). */
  misses: number;
}

export interface ReplaySetup {
  recording: Recording;
  client: Client;
  temporal: TemporalEnv;
  dir: string;
  latency: number;
  version: string;
  /** Worker settings under test (e.g. SKOALA_MAX_CONCURRENT_ACTIVITIES). */
  workerEnv?: NodeJS.ProcessEnv;
  /** Workflows and activities in two worker processes. */
  split?: boolean;
}

export const workerNames = (n: number): string[] =>
  Array.from({ length: n }, (_, i) => `worker-${String(i + 1).padStart(4, '0')}`);

/** The recorded fleet with N stand-in workers (each with an empty kubeconfig: the stand-in needs none). */
export async function writeReplayFleet(s: ReplaySetup, name: string, workers: string[]): Promise<string> {
  const dir = path.join(s.dir, name);
  const kubeDir = path.join(dir, 'kube');
  for (const w of workers) {
    await mkdir(path.join(kubeDir, w), { recursive: true });
    await writeFile(path.join(kubeDir, w, 'kubeconfig'), '');
  }
  const file = path.join(dir, 'fleet.yaml');
  const fleet = {
    ...s.recording.fleet,
    name,
    workers: workers.map((w) => ({ name: w, kubeconfig: path.join(kubeDir, w, 'kubeconfig'), context: w })),
  };
  await writeFile(file, stringify(fleet));
  return file;
}

/** The worker process's environment for a replay run named `name`. */
export function replayWorkerEnv(s: ReplaySetup, name: string, upgradeId: string): NodeJS.ProcessEnv {
  const dir = path.join(s.dir, name);
  const workDir = path.join(dir, 'work');
  const backupDir = path.join(dir, 'backups');
  return {
    ...s.workerEnv,
    SKOALA_HELM: s.recording.standIn.helm,
    SKOALA_KUBECTL: s.recording.standIn.kubectl,
    SKOALA_WORK_DIR: workDir,
    SKOALA_BACKUP_DIR: backupDir,
    BENCH_CONTROL_PLANE: s.recording.controlPlane,
    ...standInEnv(s.recording.standIn, {
      mode: 'replay',
      stateDir: path.join(dir, 'state'),
      upgradeId,
      workDir,
      backupDir,
      latency: s.latency,
    }),
  };
}

export async function runPoint(
  s: ReplaySetup,
  clusters: number,
  maxParallel: number,
  extra: Pick<ProductRunOptions, 'during' | 'cpuProfileDir'> & { skipBaseline?: boolean } = {}
): Promise<Point> {
  const name = `bench-n${clusters}-p${maxParallel}-${Date.now().toString(36)}`;
  const workers = workerNames(clusters);
  const fleetFile = await writeReplayFleet(s, name, workers);
  const callsBefore = (await readCalls(s.recording.standIn.dir)).length;
  const product = await runProduct({
    client: s.client,
    temporal: { ...s.temporal, taskQueue: name },
    fleetFile,
    version: s.version,
    maxParallel,
    workerEnv: (upgradeId) => replayWorkerEnv(s, name, upgradeId),
    split: s.split,
    ...extra,
  });
  const misses = (await readCalls(s.recording.standIn.dir)).slice(callsBefore).filter((c) => c.status === 'MISS');
  const baseline = extra.skipBaseline
    ? { wallMs: NaN }
    : await runBaseline({
        recording: s.recording,
        dir: path.join(s.dir, name, 'baseline'),
        workers,
        maxParallel,
        latency: s.latency,
        upgradeId: product.upgradeId,
      });
  const h = await readHistories(s.client, product.workflowId);
  const total = h.overheads.map((o) => o.dispatchMs + o.turnaroundMs);
  const chain = h.chainOverheads.map((o) => o.dispatchMs + o.turnaroundMs);
  const L = s.latency * 1000;
  return {
    clusters,
    maxParallel,
    productMs: product.wallMs,
    baselineMs: baseline.wallMs,
    idealMs:
      s.recording.controlPlaneCalls.length * L + Math.ceil(clusters / maxParallel) * s.recording.workerCalls.length * L,
    overheadP50Ms: percentile(total, 50),
    overheadP95Ms: percentile(total, 95),
    chainOverheadP50Ms: percentile(chain, 50),
    chainOverheadP95Ms: percentile(chain, 95),
    dispatchP50Ms: percentile(
      h.overheads.map((o) => o.dispatchMs),
      50
    ),
    turnaroundP50Ms: percentile(
      h.overheads.map((o) => o.turnaroundMs),
      50
    ),
    activities: h.overheads.length,
    peakRssMiB: product.peakRssBytes / 2 ** 20,
    parentRuns: h.parentRuns.length,
    parentEventsMax: Math.max(...h.parentRuns),
    outcomes: product.counts,
    byActivity: Object.fromEntries(
      [...new Set(h.overheads.map((o) => o.activity))].map((a) => {
        const of = h.overheads.filter((o) => o.activity === a);
        return [
          a,
          {
            n: of.length,
            dispatchP50Ms: percentile(
              of.map((o) => o.dispatchMs),
              50
            ),
            turnaroundP50Ms: percentile(
              of.map((o) => o.turnaroundMs),
              50
            ),
          },
        ];
      })
    ),
    misses: misses.length,
  };
}
