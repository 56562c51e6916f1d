/**
 * `npm run worker` as a site runs it: its own process (node + tsx, no npm/sh wrapper, so a SIGKILL
 * hits the worker itself), configured only through its environment, with a prebuilt workflow bundle.
 */
import { bundleWorkflowCode } from '@temporalio/worker';
import { execa, type ResultPromise } from 'execa';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { LocalStack } from '../../scripts/lib/local-stack';
import { fileURLToPath } from 'node:url';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

/** What `npm run build` makes, written to `file`: worker processes load it instead of bundling at start. */
export async function buildWorkflowBundle(file: string): Promise<string> {
  const { code } = await bundleWorkflowCode({ workflowsPath: path.join(ROOT, 'workflows', 'index.ts') });
  await writeFile(file, code);
  return file;
}

export interface WorkerProcess {
  child: ResultPromise<{ reject: false; all: true }>;
  /** Resolves once the worker polls its task queue; rejects if it exits first. */
  polling: Promise<void>;
  output(): string;
  /** SIGTERM, then SIGKILL after 5 s; resolves when it has exited. */
  stop(): Promise<void>;
}

export function startWorkerProcess(env: NodeJS.ProcessEnv, name = 'worker'): WorkerProcess {
  const child = execa(process.execPath, ['--import', 'tsx', 'worker/main.ts'], {
    cwd: ROOT,
    reject: false,
    all: true,
    env,
  });
  let out = '';
  const polling = new Promise<void>((resolve, reject) => {
    child.all.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('worker polling task queue')) resolve();
    });
    void child.then((r) => reject(new Error(`worker ${name} exited (${r.exitCode ?? r.signal}):\n${out}`)));
  });
  polling.catch(() => undefined); // observed by whoever awaits it
  return {
    child,
    polling,
    output: () => out,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await child;
      clearTimeout(timer);
    },
  };
}

/** The environment of a worker process for a local stack, on a "host" of its own directories. */
export function stackWorkerEnv(
  stack: Pick<LocalStack, 'temporal' | 'taskQueue' | 'sandbox'>,
  host: { backupDir: string; workDir: string; bundle: string; helm?: string }
): NodeJS.ProcessEnv {
  return {
    TEMPORAL_ADDRESS: stack.temporal.address,
    SKOALA_TASK_QUEUE: stack.taskQueue,
    SKOALA_HELM: host.helm ?? stack.sandbox.tools.helm,
    SKOALA_KUBECTL: stack.sandbox.tools.kubectl,
    SKOALA_BACKUP_DIR: host.backupDir,
    SKOALA_WORK_DIR: host.workDir,
    SKOALA_WORKFLOW_BUNDLE: host.bundle,
    ...stack.sandbox.helmEnv,
  };
}
