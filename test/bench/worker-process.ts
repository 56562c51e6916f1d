/**
 * The product's worker as its own process (`worker/main.ts`, the workflow bundle from
 * `npm run build`): the benchmark reads its peak RSS from /proc and can SIGKILL it.
 */
import { execa, type ResultPromise } from 'execa';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const WORKFLOW_BUNDLE = fileURLToPath(new URL('../../dist/workflow-bundle.js', import.meta.url));

export interface WorkerProcess {
  pid: number;
  /** When the worker printed that it polls (ms since the epoch). */
  readyAt: number;
  /** VmHWM: the process's peak resident set so far, in bytes. */
  peakRss(): Promise<number>;
  stop(): Promise<void>;
  kill(): Promise<void>;
}

export async function buildWorkflowBundle(): Promise<void> {
  await execa('node', ['--import', 'tsx', 'scripts/build-workflow-bundle.ts'], { cwd: ROOT });
}

export async function startWorkerProcess(env: NodeJS.ProcessEnv, cpuProfileDir?: string): Promise<WorkerProcess> {
  const proc: ResultPromise = execa(
    'node',
    [...(cpuProfileDir ? ['--cpu-prof', '--cpu-prof-dir', cpuProfileDir] : []), '--import', 'tsx', 'worker/main.ts'],
    {
      cwd: ROOT,
      env: { ...env, SKOALA_WORKFLOW_BUNDLE: WORKFLOW_BUNDLE },
      reject: false,
      all: true,
      buffer: false,
    }
  );
  const pid = proc.pid as number;
  let output = '';
  const readyAt = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`worker not polling after 60 s:\n${output}`)), 60_000);
    proc.all?.on('data', (b: Buffer) => {
      output += b.toString();
      if (output.length > 20_000) output = output.slice(-10_000);
      if (output.includes('worker polling')) {
        clearTimeout(timer);
        resolve(Date.now());
      }
    });
    void proc.then((r) => {
      clearTimeout(timer);
      reject(new Error(`worker exited (${String(r.exitCode)}):\n${output}`));
    });
  });
  const done = proc.then(() => undefined);
  return {
    pid,
    readyAt,
    async peakRss() {
      const status = await readFile(`/proc/${pid}/status`, 'utf8');
      const kb = /VmHWM:\s+(\d+) kB/.exec(status)?.[1];
      return Number(kb ?? 0) * 1024;
    },
    async stop() {
      proc.kill('SIGTERM');
      await done;
    },
    async kill() {
      proc.kill('SIGKILL');
      await done;
    },
  };
}

/**
 * The product's workers as a site runs them: one process (`SKOALA_WORKER_ROLE` unset), or split
 * into a workflows process and an activities process. Seen as one: ready when both poll, peak RSS
 * of the larger, killed and stopped together.
 */
export async function startWorkers(
  env: NodeJS.ProcessEnv,
  opts: { split?: boolean; cpuProfileDir?: string } = {}
): Promise<WorkerProcess> {
  if (!opts.split) return startWorkerProcess(env, opts.cpuProfileDir);
  const procs = await Promise.all(
    (['workflows', 'activities'] as const).map((role) =>
      startWorkerProcess({ ...env, SKOALA_WORKER_ROLE: role }, opts.cpuProfileDir)
    )
  );
  return {
    pid: procs[0]?.pid ?? 0,
    readyAt: Math.max(...procs.map((p) => p.readyAt)),
    async peakRss() {
      return Math.max(...(await Promise.all(procs.map((p) => p.peakRss()))));
    },
    async stop() {
      await Promise.all(procs.map((p) => p.stop()));
    },
    async kill() {
      await Promise.all(procs.map((p) => p.kill()));
    },
  };
}
