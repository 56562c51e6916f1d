/**
 * Digests bind an approval to what the approver saw: the CRD change of one cluster, or of the whole
 * fleet for approvals given ahead. Pure (a JS SHA-256), so the workflow and `plan` compute the same.
 */
import { sha256 } from '@noble/hashes/sha2.js';
import { bytesToHex, utf8ToBytes } from '@noble/hashes/utils.js';
import type { ClusterPlan, Plan } from './types';

/** JSON with object keys sorted: the same value always gives the same text. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) =>
    v && typeof v === 'object' && !Array.isArray(v)
      ? Object.fromEntries(
          Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
        )
      : v
  );
}

export const digestOf = (value: unknown): string => `sha256:${bytesToHex(sha256(utf8ToBytes(canonicalJson(value))))}`;

/** The first 12 hex digits: what people read and type. Enough to tell two previews apart. */
export const shortDigest = (d: string): string => d.replace(/^sha256:/, '').slice(0, 12);

/**
 * Whether `given` (full, or at least its first 12 hex digits, with or without `sha256:`) names `actual`.
 */
export function digestMatches(given: string, actual: string): boolean {
  const g = given
    .trim()
    .toLowerCase()
    .replace(/^sha256:/, '');
  return g.length >= 12 && /^[0-9a-f]+$/.test(g) && actual.replace(/^sha256:/, '').startsWith(g);
}

/** What a cluster's CRD step applies, as the plan has it (no cluster state): the chart, its version, the files. */
export function crdStepOf(plan: ClusterPlan): Record<string, unknown> | undefined {
  const step = plan.steps.find((s) => s.kind === 'reapplyCrds');
  if (step?.kind !== 'reapplyCrds') return undefined;
  return {
    chart: step.chart,
    version: step.version,
    repo: step.repo.url,
    chartFiles: step.chartFiles,
    extraFiles: step.extraFiles,
    allowDowngrade: step.allowDowngrade,
  };
}

/**
 * The fleet's CRD change: the distinct CRD steps of the workers that have one. What an approval
 * given ahead names; undefined when no worker has a CRD step.
 */
export function fleetCrdDigest(plan: Pick<Plan, 'workers'>): string | undefined {
  const steps = [
    ...new Set(
      plan.workers
        .map(crdStepOf)
        .filter((s) => s !== undefined)
        .map(canonicalJson)
    ),
  ].sort();
  return steps.length === 0 ? undefined : digestOf(steps);
}

/** The fleet's CRD change in one line, for the messages that show its digest. */
export function fleetCrdChange(plan: Pick<Plan, 'workers'>): string | undefined {
  const withStep = plan.workers.filter((w) => crdStepOf(w) !== undefined);
  const steps = [...new Map(withStep.map((w) => [canonicalJson(crdStepOf(w)), w])).values()];
  if (steps.length === 0) return undefined;
  const what = steps.map((w) => {
    const s = crdStepOf(w) as { chart: string; version: string; chartFiles: string[]; extraFiles: string[] };
    return `CRDs of ${s.chart} ${s.version} (${s.chartFiles.length} chart file(s)${s.extraFiles.length ? ` + ${s.extraFiles.length} extra` : ''})`;
  });
  return `re-apply ${what.join('; ')} on ${withStep.length} worker cluster(s)`;
}
