/**
 * The one way activities run helm and kubectl: argument arrays (never a shell), a timeout,
 * heartbeats while the process runs, a kill when the activity is cancelled, and a classified
 * Temporal failure when it fails.
 */
import { Context } from '@temporalio/activity';
import { CancelledFailure } from '@temporalio/common';
import { execa } from 'execa';
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
}

export interface RunResult {
  stdout: string;
  stderr: string;
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

export function createRunner(deps: RunnerDeps): CommandRunner {
  const paths: Record<Tool, string> = { helm: deps.helm, kubectl: deps.kubectl };
  return async (tool, argv, opts = {}) => {
    const ctx = activityContext();
    const running = { running: `${tool} ${argv.find((a) => !a.startsWith('-')) ?? ''}` };
    ctx?.heartbeat(running);
    // Often enough for the 10 s heartbeat timeout: a dead worker is noticed in seconds.
    const beat = ctx ? setInterval(() => ctx.heartbeat(running), deps.heartbeatMs ?? 2_000) : undefined;
    try {
      const res = await execa(paths[tool], argv, {
        env: deps.env,
        ...(opts.input !== undefined ? { input: opts.input } : { stdin: 'ignore' as const }),
        reject: false,
        timeout: processTimeout(ctx, opts.timeoutMs ?? deps.defaultTimeoutMs ?? 10 * 60_000),
        cancelSignal: ctx?.cancellationSignal,
        forceKillAfterDelay: 5_000,
      });
      if (res.isCanceled) throw new CancelledFailure(`${tool} was stopped: the activity was cancelled`);
      if (res.failed) {
        throw commandFailure({
          tool,
          argv,
          exitCode: res.exitCode,
          // Not shortMessage: it quotes the raw argv, --password values and all.
          stderr: String(res.stderr) || (res.originalMessage ?? ''),
          timedOut: res.timedOut,
          cluster: opts.cluster,
          chartRepo: opts.chartRepo,
        });
      }
      return { stdout: String(res.stdout), stderr: String(res.stderr) };
    } finally {
      if (beat) clearInterval(beat);
    }
  };
}
