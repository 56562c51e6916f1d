/**
 * The recording the stand-ins replay: the product upgrades a real sandbox (1 control plane and 1
 * worker, skoala 0.18.0 -> target) with the real helm and kubectl behind the stand-in in record
 * mode. The per-cluster command sequences the shell baseline runs come from the same run.
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { parse, stringify } from 'yaml';
import { connectClient } from '../../scripts/lib/temporal';
import { startLocalStack } from '../../scripts/lib/local-stack';
import { installStandIn, readCalls, recordedArgv, standInEnv, type StandIn } from './stand-in';
import { runProduct } from './product-run';

/** One command of a cluster's sequence: the tool and its normalized argv (placeholders in it). */
export interface SequenceCall {
  tool: string;
  role: 'cp' | 'worker' | 'host';
  argv: string[];
}

export interface Recording {
  standIn: StandIn;
  /** The recorded fleet file's contents: replays keep its chart repo, Job manifest and control plane. */
  fleet: Record<string, unknown>;
  controlPlane: string;
  /** What the control plane's chain runs (preflight and plan reads included). */
  controlPlaneCalls: SequenceCall[];
  /** What one worker cluster's chain runs, in order, its host-level commands (repo, pull) included. */
  workerCalls: SequenceCall[];
  wallMs: number;
}

export async function record(dir: string, version: string, log: (l: string) => void): Promise<Recording> {
  await mkdir(dir, { recursive: true });
  const standIn = await installStandIn(path.join(dir, 'stand-in'));
  const stack = await startLocalStack({
    workers: 1,
    installVersion: '0.18.0',
    brokenImages: {},
    dir: path.join(dir, 'sandbox'),
    log: () => undefined,
  });
  try {
    const client = await connectClient(stack.env);
    const workDir = path.join(dir, 'work');
    const backupDir = path.join(dir, 'backups');
    const run = await runProduct({
      client,
      temporal: stack.env,
      fleetFile: stack.fleetFile,
      version,
      maxParallel: 1,
      workerEnv: (upgradeId) => ({
        ...stack.sandbox.helmEnv,
        SKOALA_HELM: standIn.helm,
        SKOALA_KUBECTL: standIn.kubectl,
        SKOALA_WORK_DIR: workDir,
        SKOALA_BACKUP_DIR: backupDir,
        ...standInEnv(standIn, {
          mode: 'record',
          stateDir: path.join(dir, 'record-state'),
          upgradeId,
          workDir,
          backupDir,
          real: stack.sandbox.tools,
        }),
      }),
    });
    await client.connection.close();
    if (run.counts.upgraded !== 2)
      throw new Error(`the recorded upgrade did not upgrade both clusters: ${JSON.stringify(run.counts)}`);
    log(
      `recorded the product's upgrade of a real sandbox (1 control plane + 1 worker): ${(run.wallMs / 1000).toFixed(1)} s`
    );
    const fleet = parse(await readFile(stack.fleetFile, 'utf8')) as Record<string, unknown>;
    const cp = stack.sandbox.controlPlane.name;
    const calls = await readCalls(standIn.dir);
    // The control plane's chain ends before the first worker child starts: host commands after
    // the control plane's last command are the worker's.
    const cpEnd = Math.max(...calls.filter((c) => c.cluster === cp).map((c) => c.endMs));
    const seq = async (pick: (c: (typeof calls)[number]) => boolean): Promise<SequenceCall[]> =>
      Promise.all(
        calls.filter(pick).map(async (c) => {
          const role = c.cluster === 'host' ? 'host' : c.cluster === cp ? 'cp' : 'worker';
          return { tool: c.tool, role, argv: await recordedArgv(standIn.dir, role, c.hash) } as const;
        })
      );
    const recording: Recording = {
      standIn,
      fleet,
      controlPlane: cp,
      controlPlaneCalls: await seq((c) => c.cluster === cp || (c.cluster === 'host' && c.startMs <= cpEnd)),
      workerCalls: await seq(
        (c) => (c.cluster !== cp && c.cluster !== 'host') || (c.cluster === 'host' && c.startMs > cpEnd)
      ),
      wallMs: run.wallMs,
    };
    await writeFile(path.join(dir, 'recording.yaml'), stringify({ ...recording, standIn: standIn.dir }));
    return recording;
  } finally {
    await stack.stop();
  }
}
