/**
 * What the upgrade was asked to do and the plan it ran, from the parent's runs: the request (its
 * input) names the fleet, the plan memo (workflows/plan-memo.ts) the versions and steps. The plan
 * itself is computed in the workflow from preflight's facts and the recorded rules (decideRules);
 * the memo is where it is written down.
 */
import { decode, eventsOf, field, firstOf, startOf, str, strs, type History } from './history';
import type { PlanEntry } from './types';

export interface Fleet {
  upgradeId?: string;
  targetVersion?: string;
  startedBy?: string;
  controlPlane?: string;
  workers: string[];
}

/** The fleet's cluster names and the options shown, from the run's input (the request). */
export function fleetOf(runs: History[]): Fleet {
  const request = field(firstOf(startOf(runs[0] as History)?.input), 'request');
  const fleet = field(request, 'fleet');
  const options = field(request, 'options');
  const workers = field(fleet, 'workers');
  const pick = (v: unknown, k: string) => str(field(v, k));
  const out: Fleet = { workers: Array.isArray(workers) ? workers.flatMap((w) => pick(w, 'name') ?? []) : [] };
  const [upgradeId, targetVersion, startedBy, controlPlane] = [
    pick(request, 'upgradeId'),
    pick(options, 'targetVersion'),
    pick(options, 'startedBy'),
    pick(field(fleet, 'controlPlane'), 'name'),
  ];
  return {
    ...out,
    ...(upgradeId ? { upgradeId } : {}),
    ...(targetVersion ? { targetVersion } : {}),
    ...(startedBy ? { startedBy } : {}),
    ...(controlPlane ? { controlPlane } : {}),
  };
}

/** The plan memo (plan-memo.ts) as last written: upserted in the first run, carried to the next. */
export function planMemoOf(runs: History[]): unknown {
  let memo: unknown;
  for (const h of runs)
    for (const e of eventsOf(h)) {
      const fields = (
        e.workflowExecutionStartedEventAttributes?.memo ?? e.workflowPropertiesModifiedEventAttributes?.upsertedMemo
      )?.fields;
      if (fields?.plan) memo = decode(fields.plan) ?? memo;
    }
  return memo;
}

/** A worker's planned steps from the memo's groups (which name their first ten clusters). */
export function memoPlanOf(memo: unknown, cluster: string, target?: string): PlanEntry | undefined {
  const groups = field(memo, 'workerGroups');
  if (!Array.isArray(groups)) return undefined;
  const named = groups.find((g) => strs(field(g, 'clusters')).includes(cluster));
  const group: unknown = named ?? (groups.length === 1 ? groups[0] : undefined);
  if (!group) return undefined;
  return entryOf(group, cluster, 'worker', target);
}

/** The control plane's planned steps, from the memo. */
export function controlPlanePlanOf(memo: unknown, cluster: string, target?: string): PlanEntry {
  return entryOf(field(memo, 'controlPlane'), cluster, 'control-plane', target);
}

/** One cluster's planned entry from its memo part (`from`, `steps`, `skipped`). */
function entryOf(part: unknown, cluster: string, role: PlanEntry['role'], target?: string): PlanEntry {
  const from = str(field(part, 'from'));
  const skipped = str(field(part, 'skipped'));
  return {
    cluster,
    role,
    ...(from ? { from } : {}),
    ...(target ? { to: target } : {}),
    steps: strs(field(part, 'steps')),
    ...(skipped ? { skipped } : {}),
  };
}
