/**
 * The flags an upgrade was started with, kept in its memo: a second `start-upgrade` of the same
 * version attaches only when it asks for the same rollout, and `npm run rollback` checks health with
 * the upgrade's own `--health-timeout`.
 */
import type { UpgradeOptions } from '../../runbook/types';

/** One entry per flag that shapes the rollout (`--by` and `--fleet` do not: the fleet is the workflow ID). */
const FLAGS = {
  select: '--select',
  canaries: '--canary',
  onFailure: '--on-failure',
  maxFailures: '--max-failures',
  maxParallel: '--max-parallel',
  batches: '--batches',
  soakMs: '--soak',
  healthTimeoutMs: '--health-timeout',
  dbMigration: '--db-migration',
  uiVersion: '--ui-version',
  forceCrdReapply: '--force-crd-reapply',
  allowDowngrade: '--allow-downgrade',
  allowInstall: '--allow-install',
  retryFailed: '--retry-failed',
} as const satisfies Partial<Record<keyof UpgradeOptions, string>>;

type Flag = keyof typeof FLAGS;
export type StartedWith = { [K in Flag]?: UpgradeOptions[K] | null };

/** The memo entry: every flag, unset ones as null (a memo drops undefined). */
export function startedWith(options: UpgradeOptions): StartedWith {
  const out: StartedWith = {};
  for (const key of Object.keys(FLAGS) as Flag[]) Object.assign(out, { [key]: options[key] ?? null });
  return out;
}

/** How a value reads in a message: `none` for unset, lists with commas, durations in seconds. */
function shown(key: Flag, value: unknown): string {
  if (value === null || value === undefined || value === false) return 'none';
  if (value === true) return 'set';
  if (Array.isArray(value)) return value.join(',');
  if (key === 'soakMs' || key === 'healthTimeoutMs') return `${Math.round(Number(value) / 1000)}s`;
  return String(value);
}

/** `--on-failure stop (running: rollback)` for each flag whose value differs from the running upgrade's. */
export function differences(running: StartedWith, asked: StartedWith): string[] {
  const out: string[] = [];
  for (const key of Object.keys(FLAGS) as Flag[]) {
    // A memo of an older upgrade may lack a flag: nothing to compare it with.
    if (!(key in running)) continue;
    const a = JSON.stringify(asked[key] ?? null);
    const r = JSON.stringify(running[key] ?? null);
    if (a !== r) out.push(`${FLAGS[key]} ${shown(key, asked[key])} (running: ${shown(key, running[key])})`);
  }
  return out;
}
