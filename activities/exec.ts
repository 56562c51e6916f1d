/**
 * The one way activities run helm and kubectl: argument arrays (never a shell), a timeout,
 * heartbeats while the process runs, a kill when the activity is cancelled, and a classified
 * Temporal failure when it fails.
 */
import { Context } from '@temporalio/activity';
import { CancelledFailure } from '@temporalio/common';
import { execa } from 'execa';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { commandFailure, type ChartSource } from './errors';

export type Tool = 'helm' | 'kubectl';

export interface RunOptions {
  timeoutMs?: number;
  /** The fleet cluster the command targets: named in the failure message. */
  cluster?: string;
  /** Written to the process's stdin (a password for `--password-stdin`); never logged or reported. */
  input?: string;
  /** The chart source the command reaches: its TLS and 401 failures are told apart from a cluster's. */
  chartRepo?: ChartSource;
  /**
   * An exit with a non-zero code is returned (its code and whole stderr), not thrown: for a caller
   * that reads kubectl's error per object. A timeout, a kill or a missing binary still throws.
   */
  allowFailure?: boolean;
  /**
   * Arguments that are the value of a secret reference (a registry username read from `{env}` or
   * `{file}`), each with the reference to show instead: a failure records the reference, never the value.
   */
  recordedAs?: Record<string, string>;
}

/** `text` with every value of `recordedAs` replaced by its reference. */
const asRecorded = (text: string, recordedAs: Record<string, string> | undefined): string =>
  Object.entries(recordedAs ?? {}).reduce((t, [value, ref]) => (value ? t.split(value).join(ref) : t), text);

export interface RunResult {
  stdout: string;
  stderr: string;
  exitCode?: number;
}

/** Runs one command; throws an ApplicationFailure (classified) when it fails. Injected into activities. */
export type CommandRunner = (tool: Tool, argv: string[], opts?: RunOptions) => Promise<RunResult>;

export interface RunnerDeps {
  helm: string;
  kubectl: string;
  env?: NodeJS.ProcessEnv;
  heartbeatMs?: number;
  defaultTimeoutMs?: number;
}

function activityContext(): Context | undefined {
  try {
    return Context.current();
  } catch {
    return undefined; // called outside an activity (the plan command, tests)
  }
}

/** Room left for a process's own kill and for reporting before the attempt's timeout. */
const ATTEMPT_MARGIN_MS = 15_000;

/**
 * A process never outlives the activity attempt that runs it: its timeout is cut to what is left of
 * the attempt's start-to-close timeout, so a retry never starts while it still runs.
 */
export function processTimeout(ctx: Context | undefined, wantedMs: number): number {
  const info = ctx?.info;
  if (!info?.startToCloseTimeoutMs) return wantedMs;
  const left = info.currentAttemptScheduledTimestampMs + info.startToCloseTimeoutMs - Date.now() - ATTEMPT_MARGIN_MS;
  return Math.max(1_000, Math.min(wantedMs, left));
}

/**
 * helm's Kubernetes client throttles itself to 5 requests/s when HELM_QPS is unset (client-go's
 * default; burst 100): an upgrade of skoala-init (discovery of many CRD groups, then every object)
 * then waits on its own limiter, on every cluster. An operator's own values are left alone.
 */
export const HELM_CLIENT_LIMITS: Readonly<Record<string, string>> = { HELM_QPS: '50', HELM_BURST_LIMIT: '300' };

/** The environment of helm processes: the defaults above, wherever the operator has not set them. */
export function helmEnv(env: NodeJS.ProcessEnv | undefined, inherited: NodeJS.ProcessEnv = process.env) {
  const unset = Object.entries(HELM_CLIENT_LIMITS).filter(
    ([k]) => env?.[k] === undefined && inherited[k] === undefined
  );
  return { ...env, ...Object.fromEntries(unset) };
}

/**
 * Waits for work another activity started (a shared chart pull) while heartbeating, so a wait
 * longer than the heartbeat timeout is not taken for a dead worker.
 */
export async function heartbeatWhile<T>(work: Promise<T>, details: unknown, everyMs = 2_000): Promise<T> {
  const ctx = activityContext();
  const beat = ctx ? setInterval(() => ctx.heartbeat(details), everyMs) : undefined;
  try {
    return await work;
  } finally {
    if (beat) clearInterval(beat);
  }
}

/**
 * helm runs under util-linux's `setpriv --pdeathsig KILL` where it exists (Debian's util-linux is
 * essential, so in the worker image too): a worker process that dies takes its helm with it, so no
 * orphaned helm goes on changing a release once the release lease says its owner is gone.
 */
export const SETPRIV = '/usr/bin/setpriv';
const dyingWithParent = existsSync(SETPRIV);

/** The binary's absolute path (a bare name looked up on PATH), or undefined when it is not there. */
function located(bin: string, env: NodeJS.ProcessEnv | undefined): string | undefined {
  if (bin.includes('/')) return existsSync(bin) ? bin : undefined;
  const dirs = (env?.PATH ?? process.env.PATH ?? '').split(':').filter(Boolean);
  return dirs.map((d) => path.join(d, bin)).find((f) => existsSync(f));
}

export function createRunner(deps: RunnerDeps): CommandRunner {
  const paths: Record<Tool, string> = { helm: deps.helm, kubectl: deps.kubectl };
  const envs: Record<Tool, NodeJS.ProcessEnv | undefined> = { helm: helmEnv(deps.env), kubectl: deps.env };
  return async (tool, argv, opts = {}) => {
    const ctx = activityContext();
    const running = { running: `${tool} ${argv.find((a) => !a.startsWith('-')) ?? ''}` };
    ctx?.heartbeat(running);
    // Often enough for the 10 s heartbeat timeout: a dead worker is noticed in seconds.
    const beat = ctx ? setInterval(() => ctx.heartbeat(running), deps.heartbeatMs ?? 2_000) : undefined;
    try {
      // A missing binary runs as itself: execa's ENOENT is what names it (ToolMissing).
      const helm = tool === 'helm' && dyingWithParent ? located(paths.helm, envs.helm) : undefined;
      const [file, args] = helm ? [SETPRIV, ['--pdeathsig', 'KILL', '--', helm, ...argv]] : [paths[tool], argv];
      const res = await execa(file, args, {
        env: envs[tool],
        ...(opts.input !== undefined ? { input: opts.input } : { stdin: 'ignore' as const }),
        reject: false,
        timeout: processTimeout(ctx, opts.timeoutMs ?? deps.defaultTimeoutMs ?? 10 * 60_000),
        cancelSignal: ctx?.cancellationSignal,
        forceKillAfterDelay: 5_000,
      });
      if (res.isCanceled) throw new CancelledFailure(`${tool} was stopped: the activity was cancelled`);
      const handBack = opts.allowFailure && res.exitCode !== undefined && !res.timedOut;
      if (res.failed && !handBack) {
        throw commandFailure({
          tool,
          argv: argv.map((a) => asRecorded(a, opts.recordedAs)),
          exitCode: res.exitCode,
          // Not shortMessage: it quotes the raw argv, --password values and all.
          stderr: asRecorded(String(res.stderr) || (res.originalMessage ?? ''), opts.recordedAs),
          timedOut: res.timedOut,
          cluster: opts.cluster,
          chartRepo: opts.chartRepo,
        });
      }
      return { stdout: String(res.stdout), stderr: String(res.stderr), exitCode: res.exitCode ?? 0 };
    } finally {
      if (beat) clearInterval(beat);
    }
  };
}
