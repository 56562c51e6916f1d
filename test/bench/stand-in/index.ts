/**
 * The benchmark's stand-in helm and kubectl (tool.sh): where they live, the environment that
 * drives them, and what their call log says.
 */
import { execa } from 'execa';
import { chmod, mkdir, readFile, symlink } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ownerLabelValue } from '../../../activities/releases';

export const TOOL_SCRIPT = fileURLToPath(new URL('./tool.sh', import.meta.url));

export interface StandIn {
  /** Holds responses/, calls.log and the bin/ dir. */
  dir: string;
  helm: string;
  kubectl: string;
}

/** bin/helm and bin/kubectl, both symlinks to tool.sh (it answers as the tool it is called as). */
export async function installStandIn(dir: string): Promise<StandIn> {
  const bin = path.join(dir, 'bin');
  await mkdir(bin, { recursive: true });
  await chmod(TOOL_SCRIPT, 0o755);
  for (const t of ['helm', 'kubectl']) await symlink(TOOL_SCRIPT, path.join(bin, t)).catch(() => undefined);
  // What the stand-in's latency waits on (read -t): no process per call.
  await execa('mkfifo', [path.join(dir, 'idle.fifo')], { reject: false });
  return { dir, helm: path.join(bin, 'helm'), kubectl: path.join(bin, 'kubectl') };
}

export interface StandInEnv {
  mode: 'record' | 'replay';
  /** Counters of this run: one per run, so each run replays from the first answer. */
  stateDir: string;
  upgradeId: string;
  workDir: string;
  backupDir: string;
  /** Seconds per call in replay. */
  latency?: number;
  real?: { helm: string; kubectl: string };
}

export function standInEnv(s: StandIn, e: StandInEnv): NodeJS.ProcessEnv {
  return {
    BENCH_STANDIN_DIR: s.dir,
    BENCH_STANDIN_MODE: e.mode,
    BENCH_STATE_DIR: e.stateDir,
    BENCH_UPGRADE_ID: e.upgradeId,
    BENCH_OWNER_MARK: ownerLabelValue(e.upgradeId, 0).replace(/\.r0$/, ''),
    BENCH_WORK_DIR: e.workDir,
    BENCH_BACKUP_DIR: e.backupDir,
    BENCH_LATENCY: String(e.latency ?? 0.2),
    ...(e.real ? { BENCH_REAL_HELM: e.real.helm, BENCH_REAL_KUBECTL: e.real.kubectl } : {}),
  };
}

export interface Call {
  startMs: number;
  endMs: number;
  cluster: string;
  tool: string;
  hash: string;
  status: string;
}

export async function readCalls(dir: string): Promise<Call[]> {
  const text = await readFile(path.join(dir, 'calls.log'), 'utf8').catch(() => '');
  return text
    .split('\n')
    .filter(Boolean)
    .map((line) => {
      const [start, end, cluster, tool, hash, status] = line.split('\t');
      return {
        startMs: Number(start) * 1000,
        endMs: Number(end) * 1000,
        cluster: cluster ?? '',
        tool: tool ?? '',
        hash: hash ?? '',
        status: status ?? '',
      };
    });
}

/** The normalized argv a response was recorded for (placeholders such as @CONTEXT@ in it). */
export async function recordedArgv(dir: string, role: string, hash: string): Promise<string[]> {
  const text = await readFile(path.join(dir, 'responses', role, hash, 'argv'), 'utf8');
  return text.replace(/\n$/, '').split('\n');
}
