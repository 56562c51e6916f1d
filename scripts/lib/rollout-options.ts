/**
 * The rollout flags of issue 8: `--health-timeout`, `--on-failure`, `--canary`, `--max-failures`.
 * Checked against the fleet before anything starts; each bad value is one line naming it.
 */
import { userInfo } from 'node:os';
import type { FailurePolicy, Fleet, UpgradeOptions } from '../../runbook/types';
import { parseSelector, SelectorError } from '../../runbook/selector';
import { ExitError } from './errors';

export interface RolloutFlags {
  healthTimeout?: string;
  onFailure?: string;
  canary?: string;
  maxFailures?: string;
  select?: string;
  batches?: string;
  soak?: string;
  /** Who starts the upgrade (the approver policy may forbid them to approve it). */
  by?: string;
}

const UNIT_MS: Record<string, number> = { s: 1_000, m: 60_000, h: 3_600_000 };

/** `90s`, `10m`, `1h`: from 10 seconds to 24 hours. */
export function durationOption(flag: string, value: string | undefined, fallbackMs: number): number {
  if (value === undefined) return fallbackMs;
  const m = /^(\d+)(s|m|h)$/.exec(value);
  const ms = m ? Number(m[1]) * (UNIT_MS[m[2] as string] as number) : NaN;
  if (!(ms >= 10_000 && ms <= 24 * 3_600_000))
    throw new ExitError(`${flag} "${value}" must be a duration from 10s to 24h, such as 90s, 10m or 1h`);
  return ms;
}

export function onFailureOption(value: string | undefined): FailurePolicy {
  const v = value ?? 'rollback';
  if (v !== 'stop' && v !== 'rollback' && v !== 'pause')
    throw new ExitError(`--on-failure "${v}" must be rollback, stop or pause`);
  return v;
}

/** `--canary 2` (the first two worker clusters of the fleet file) or `--canary worker-1,worker-7`. */
export function canaryOption(value: string | undefined, fleet: Fleet): string[] | undefined {
  if (value === undefined) return undefined;
  const names = fleet.workers.map((w) => w.name);
  if (/^\d+$/.test(value)) {
    const n = Number(value);
    if (n < 1 || n > names.length)
      throw new ExitError(`--canary ${value} must be from 1 to the ${names.length} worker clusters of the fleet`);
    return names.slice(0, n);
  }
  const wanted = value.split(',').map((s) => s.trim());
  const unknown = wanted.find((c) => !names.includes(c));
  if (unknown !== undefined || wanted.length === 0)
    throw new ExitError(
      `--canary: "${unknown ?? value}" is not a worker cluster of the fleet (it has: ${names.slice(0, 10).join(', ')}${names.length > 10 ? ', ...' : ''})`
    );
  return [...new Set(wanted)];
}

/** `--max-failures 2` or `--max-failures 10%` (of the worker clusters, rounded down); default 0. */
export function maxFailuresOption(value: string | undefined, workers: number): number {
  const v = value ?? '0';
  const m = /^(\d+)(%?)$/.exec(v);
  if (!m || (m[2] === '%' && Number(m[1]) > 100))
    throw new ExitError(`--max-failures "${v}" must be a whole number (e.g. 2) or a percentage up to 100% (e.g. 10%)`);
  return m[2] === '%' ? Math.floor((Number(m[1]) / 100) * workers) : Number(m[1]);
}

/**
 * `--select 'site=east,tier!=prod'`: only the worker clusters whose labels match take part (the
 * control plane always does). No match is bad input: an upgrade of nothing is a typo.
 */
export function selectWorkers(fleet: Fleet, select: string | undefined): Fleet {
  if (select === undefined) return fleet;
  let selector;
  try {
    selector = parseSelector(select);
  } catch (err) {
    if (err instanceof SelectorError) throw new ExitError(`--select: ${err.message}`);
    throw err;
  }
  const workers = fleet.workers.filter((w) => selector.matches(w.labels ?? {}));
  if (workers.length === 0)
    throw new ExitError(`--select "${selector.text}" matches none of the ${fleet.workers.length} worker clusters`);
  return { ...fleet, workers };
}

/**
 * `--batches 1,5,25%,100%`: wave sizes, read like Ansible's `serial`: each entry is the size of one
 * wave (a count, or a percentage of the worker clusters); the last one repeats until every cluster
 * has its wave. Percentages round up (Ansible rounds down with a minimum of 1): a wave is never
 * smaller than asked.
 */
export function batchesOption(value: string | undefined, workers: number): number[] | undefined {
  if (value === undefined) return undefined;
  const entries = value.split(',').map((e) => e.trim());
  const sizes = entries.map((e) => {
    const m = /^(\d+)(%?)$/.exec(e);
    const n = m ? Number(m[1]) : NaN;
    if (!m || n < 1 || (m[2] === '%' && n > 100))
      throw new ExitError(
        `--batches "${value}": "${e}" must be a count (e.g. 5) or a percentage from 1% to 100% (e.g. 25%)`
      );
    return m[2] === '%' ? Math.ceil((n * workers) / 100) : n; // integers: 7% of 100 is 7, not 8
  });
  const waves: number[] = [];
  let left = workers;
  for (let i = 0; left > 0; i++) {
    const size = Math.min(left, sizes[Math.min(i, sizes.length - 1)] as number);
    waves.push(size);
    left -= size;
  }
  return waves;
}

export function rolloutOptions(flags: RolloutFlags, fleet: Fleet): Partial<UpgradeOptions> {
  const canaries = canaryOption(flags.canary, fleet);
  const batches = batchesOption(flags.batches, fleet.workers.length);
  if (canaries && batches)
    throw new ExitError(
      '--canary and --batches do not go together: the first wave of --batches is the canary (e.g. --batches 1,100%)'
    );
  if (flags.soak !== undefined && !batches) throw new ExitError('--soak waits between waves: it needs --batches');
  return {
    ...(flags.select !== undefined ? { select: flags.select.trim() } : {}),
    ...(batches ? { batches } : {}),
    ...(flags.soak !== undefined ? { soakMs: durationOption('--soak', flags.soak, 0) } : {}),
    healthTimeoutMs: durationOption('--health-timeout', flags.healthTimeout, 10 * 60_000),
    onFailure: onFailureOption(flags.onFailure),
    maxFailures: maxFailuresOption(flags.maxFailures, fleet.workers.length),
    ...(canaries ? { canaries } : {}),
  };
}

/** Who starts the upgrade: `--by`, else the OS user (a container may run as a UID without a name). */
export function startedByOption(by: string | undefined): string | undefined {
  if (by?.trim()) return by.trim();
  try {
    return process.env.USER?.trim() || userInfo().username;
  } catch {
    return undefined;
  }
}
