/**
 * The shell baseline: the same per-cluster command sequences the product ran in the recording,
 * driven by a plain `xargs -P` pipeline through the same stand-ins (no Temporal, no durability).
 */
import { execa } from 'execa';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Recording, SequenceCall } from '../record';
import { standInEnv } from '../stand-in';

const CLUSTER_SCRIPT = fileURLToPath(new URL('./cluster.sh', import.meta.url));

const lines = (calls: SequenceCall[]) => calls.map((c) => [c.tool, ...c.argv].join('\t')).join('\n') + '\n';

export interface BaselineRun {
  wallMs: number;
}

export async function runBaseline(o: {
  recording: Recording;
  dir: string;
  workers: string[];
  maxParallel: number;
  latency: number;
  upgradeId: string;
}): Promise<BaselineRun> {
  await mkdir(o.dir, { recursive: true });
  const cpSeq = path.join(o.dir, 'control-plane.seq');
  const workerSeq = path.join(o.dir, 'worker.seq');
  const names = path.join(o.dir, 'workers.txt');
  await writeFile(cpSeq, lines(o.recording.controlPlaneCalls));
  await writeFile(workerSeq, lines(o.recording.workerCalls));
  await writeFile(names, o.workers.join('\n') + '\n');
  const workDir = path.join(o.dir, 'work');
  const backupDir = path.join(o.dir, 'backups');
  const env = {
    ...standInEnv(o.recording.standIn, {
      mode: 'replay',
      stateDir: path.join(o.dir, 'state'),
      upgradeId: o.upgradeId,
      workDir,
      backupDir,
      latency: o.latency,
    }),
    BENCH_BIN: path.dirname(o.recording.standIn.helm),
    BENCH_KUBE_DIR: path.join(o.dir, 'kube'),
    BENCH_CONTROL_PLANE: o.recording.controlPlane,
  };
  // The runbook's order: the control plane first, then the workers, P at a time.
  const script = `set -e
bash "$0" "$1" "$2"
xargs -a "$3" -P "$4" -I{} bash "$0" "$5" {}`;
  const t0 = Date.now();
  await execa(
    'bash',
    ['-c', script, CLUSTER_SCRIPT, cpSeq, o.recording.controlPlane, names, String(o.maxParallel), workerSeq],
    { env }
  );
  return { wallMs: Date.now() - t0 };
}
