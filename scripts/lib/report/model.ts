/**
 * The run report's model, a pure function of the histories: the parent upgradeEngine's runs (its
 * continue-as-new chain) and the upgradeWorkerCluster children's, by child workflow ID. A child
 * whose history is not given (or is of another run than the one the parent started) gets its row
 * from what the parent saw: its start, end, result and progress signals.
 */
import { childStarts, pickResult, type ChildStart, type ResultFields } from './children';
import { closeOf, eventsOf, field, firstOf, runIdOf, startOf, str, timeOf, type History } from './history';
import { controlPlanePlanOf, fleetOf, memoPlanOf, planMemoOf } from './plan';
import { activitiesOf, gateWaits, messageLog, progressOf, type Progress } from './steps';
import type { ClusterRow, LogEntry, PlanEntry, ReportModel, RunStatus, StepBar } from './types';

const retriesOf = (steps: StepBar[]) => steps.reduce((n, s) => n + s.attempts - 1, 0);
const spanOf = (steps: StepBar[]) => {
  const work = steps.filter((s) => !s.preflight);
  const ends = work.map((s) => s.end);
  return {
    start: work.length > 0 ? Math.min(...work.map((s) => s.start)) : undefined,
    end: work.length > 0 && ends.every((e) => e !== undefined) ? Math.max(...(ends as number[])) : undefined,
  };
};

/** The child history of this start: the run the parent started, never another one with the same ID. */
const historyFor = (c: ChildStart, children: Map<string, History[]>): History | undefined =>
  c.runId ? children.get(c.workflowId)?.find((h) => runIdOf(h) === c.runId) : undefined;

function workerRow(
  cluster: string,
  starts: ChildStart[],
  children: Map<string, History[]>,
  ctx: { preflight: StepBar[]; progress: Progress[]; final?: ResultFields; closed: boolean; plan?: PlanEntry }
): ClusterRow {
  const steps = [...ctx.preflight];
  const sent: Progress[] = [];
  let source: ClusterRow['source'] = 'parent-only';
  let own: ResultFields | undefined;
  for (const c of starts) {
    const h = historyFor(c, children);
    if (!h) {
      const status = c.closedAs === 'completed' ? 'completed' : c.closedAs ? 'failed' : 'running';
      const end = c.closedAt;
      steps.push({
        label: c.summary ?? `upgradeWorkerCluster ${cluster}`,
        activity: 'upgradeWorkerCluster',
        start: c.startedAt ?? c.initiatedAt,
        ...(end !== undefined ? { end } : {}),
        attempts: 1,
        status: c.closedAs === 'cancelled' ? 'cancelled' : status,
      });
      continue;
    }
    source = 'child';
    steps.push(...activitiesOf(eventsOf(h)).map((a) => a.bar));
    sent.push(...progressOf(eventsOf(h)));
    const close = closeOf(h);
    own =
      close.status === 'completed'
        ? pickResult(cluster, close.result)
        : close.failure
          ? { outcome: 'failed', error: close.failure }
          : own;
  }
  // The parent hears every attempt's gate; what the children sent stands in where it heard nothing.
  const gates = gateWaits(ctx.progress.length > 0 ? ctx.progress : sent.filter((p) => p.cluster === cluster));
  const last = starts.at(-1);
  const fromParent: ResultFields | undefined =
    last?.result ??
    (last?.failure ? { outcome: 'failed', error: last.failure } : undefined) ??
    (last?.closedAs === 'cancelled' ? { outcome: 'cancelled', error: 'cancelled' } : undefined);
  const result = fromParent ?? ctx.final ?? own;
  const waiting = gates.at(-1) !== undefined && gates.at(-1)?.end === undefined;
  const outcome =
    result?.outcome ?? (last ? (waiting ? 'waiting-approval' : 'running') : ctx.closed ? 'not-started' : 'pending');
  const first = starts[0];
  const end = last?.closedAt;
  const start = first ? (first.startedAt ?? first.initiatedAt) : undefined;
  const decision = result?.approval ?? own?.approval;
  // A rejected cluster's cause is its rejection: who, and why (the Approvals table has the rest).
  const rejectedBecause =
    outcome === 'rejected' && decision && !decision.approved
      ? `rejected by ${decision.by}${decision.reason ? `: ${decision.reason}` : ''}`
      : undefined;
  const error = result?.error ?? rejectedBecause;
  const from = result?.from ?? ctx.plan?.from;
  const to = result?.to ?? ctx.plan?.to;
  return {
    cluster,
    role: 'worker',
    ...(from ? { from } : {}),
    ...(to ? { to } : {}),
    outcome,
    ...(error ? { error } : {}),
    ...(start !== undefined ? { start } : {}),
    ...(end !== undefined ? { end } : {}),
    steps,
    gates,
    retries: retriesOf(steps),
    ...(decision ? { decision } : {}),
    source: starts.length === 0 ? 'parent' : source,
  };
}

const COUNT_ORDER = ['upgraded', 'already-at-target', 'rejected', 'failed', 'rolled-back', 'cancelled', 'not-started'];
const rank = (outcome: string) => (COUNT_ORDER.includes(outcome) ? COUNT_ORDER.indexOf(outcome) : COUNT_ORDER.length);

/** `2 upgraded, 1 rolled-back`: every cluster's outcome, counted. */
function countsLine(rows: ClusterRow[]): string {
  const counts = new Map<string, number>();
  for (const r of rows) counts.set(r.outcome, (counts.get(r.outcome) ?? 0) + 1);
  return [...counts.entries()]
    .sort(([a], [b]) => rank(a) - rank(b))
    .map(([k, n]) => `${n} ${k}`)
    .join(', ');
}

const IN_PROGRESS = new Set(['running', 'waiting-approval', 'pending']);

/** Where a running upgrade is: preflight, the control plane, or how far the workers are. */
function phaseLine(cp: ClusterRow, workers: ClusterRow[], childrenStarted: boolean): string {
  if (!cp.steps.some((s) => !s.preflight)) return 'preflight';
  if (!childrenStarted) return `control plane ${cp.outcome}`;
  const done = workers.filter((w) => !IN_PROGRESS.has(w.outcome)).length;
  const running = workers.filter((w) => w.outcome === 'running' || w.outcome === 'waiting-approval').length;
  const waiting = workers.filter((w) => w.outcome === 'waiting-approval').map((w) => w.cluster);
  return `workers: ${done}/${workers.length} done, ${running} running${waiting.length ? `; waiting for approval: ${waiting.join(', ')}` : ''}`;
}

/** The control plane's outcome when no result records it: from how the chain ended and how far it got. */
function controlPlaneOutcome(status: RunStatus, worked: boolean, childrenStarted: boolean): string {
  if (childrenStarted) return 'upgraded'; // no worker starts before the control plane is verified
  if (status === 'running') return worked ? 'running' : 'pending';
  if (!worked) return 'not-started';
  return status === 'failed' ? 'failed' : 'cancelled';
}

export function reportModel(parentRuns: History[], children: Map<string, History[]>): ReportModel {
  const runs = [...parentRuns].sort((a, b) => first(a) - first(b));
  if (runs.length === 0) throw new Error('no history of the upgrade workflow was given');
  const fleet = fleetOf(runs);
  const lastClose = closeOf(runs.at(-1) as History);
  const status: RunStatus = lastClose.status === 'continued' ? 'running' : lastClose.status;
  const closed = status !== 'running';
  const finalResult = status === 'completed' ? lastClose.result : undefined;

  const activities = runs.flatMap((h) => activitiesOf(eventsOf(h)));
  const starts = runs.flatMap((h) => childStarts(eventsOf(h)));
  const progress = runs.flatMap((h) => progressOf(eventsOf(h)));
  const memo = planMemoOf(runs);
  const cpName = fleet.controlPlane ?? str(field(field(memo, 'controlPlane'), 'cluster')) ?? 'control-plane';
  const target = fleet.targetVersion ?? str(field(memo, 'targetVersion'));

  // The control plane: its steps ran in the parent. Its result is in the final result, or carried by later runs.
  const carried = runs
    .map((h) => field(field(firstOf(startOf(h)?.input), 'carried'), 'controlPlane'))
    .reverse()
    .find(Boolean);
  // An activity belongs to the cluster its input names; helm repo add/update name none and run for the control plane.
  for (const a of activities) if (a.cluster === undefined && !a.bar.preflight) a.cluster = cpName;
  const cpSteps = activities.filter((a) => a.cluster === cpName).map((a) => a.bar);
  const cpResult = pickResult(cpName, field(finalResult, 'controlPlane') ?? carried);
  const cpSpan = spanOf(cpSteps);
  const cpWorked = cpSteps.some((s) => !s.preflight);
  const cpOutcome = cpResult?.outcome ?? controlPlaneOutcome(status, cpWorked, starts.length > 0);
  const cpError =
    cpResult?.error ?? (cpOutcome === 'failed' || cpOutcome === 'not-started' ? lastClose.failure : undefined);
  const cpPlan = controlPlanePlanOf(memo, cpName, target);
  const controlPlane: ClusterRow = {
    cluster: cpName,
    role: 'control-plane',
    ...((cpResult?.from ?? cpPlan.from) ? { from: cpResult?.from ?? cpPlan.from } : {}),
    ...(target ? { to: target } : {}),
    outcome: cpOutcome,
    ...(cpError ? { error: cpError } : {}),
    ...(cpSpan.start !== undefined ? { start: cpSpan.start } : {}),
    ...(cpSpan.end !== undefined && cpOutcome !== 'running' ? { end: cpSpan.end } : {}),
    steps: cpSteps,
    gates: [],
    retries: retriesOf(cpSteps),
    source: 'parent',
  };

  // The workers, in fleet order, then any other cluster a child was started for.
  const finalWorkers = field(finalResult, 'workers');
  const names = [...new Set([...fleet.workers, ...starts.map((c) => c.cluster)])].filter((n) => n !== cpName);
  const startsOf = groupBy(starts, (c) => c.cluster);
  const preflightOf = groupBy(activities, (a) => a.cluster);
  const progressOfCluster = groupBy(progress, (p) => p.cluster);
  const finalOf = new Map(
    (Array.isArray(finalWorkers) ? finalWorkers : []).map((w: unknown) => [str(field(w, 'cluster')), w])
  );
  const workers = names.map((name) => {
    const mine = startsOf.get(name) ?? [];
    const final = pickResult(name, finalOf.get(name));
    const plan = mine.at(-1)?.plan ?? memoPlanOf(memo, name, target);
    return workerRow(name, mine, children, {
      preflight: (preflightOf.get(name) ?? []).map((a) => a.bar),
      progress: progressOfCluster.get(name) ?? [],
      closed,
      ...(final ? { final } : {}),
      ...(plan ? { plan } : {}),
    });
  });

  const clusters = [controlPlane, ...workers];
  const childLogs: LogEntry[] = starts.flatMap((c) => {
    const h = historyFor(c, children);
    return h ? messageLog(eventsOf(h)).map((l) => ({ ...l, scope: l.scope ?? c.cluster })) : [];
  });
  const log = [...runs.flatMap((h) => messageLog(eventsOf(h))), ...childLogs].sort((a, b) => a.at - b.at);
  const allEvents = [...runs, ...[...children.values()].flat()].flatMap((h) => eventsOf(h).slice(-1));
  const lastEventAt = allEvents.length > 0 ? Math.max(...allEvents.map(timeOf)) : undefined;
  const outcome =
    status === 'running'
      ? phaseLine(controlPlane, workers, starts.length > 0)
      : status === 'completed'
        ? countsLine(clusters)
        : (lastClose.failure ?? status);
  const plan = {
    notes: (field(memo, 'notes') as unknown[] | undefined)?.filter((n): n is string => typeof n === 'string') ?? [],
    clusters: [cpPlan, ...names.flatMap((n) => startsOf.get(n)?.at(-1)?.plan ?? memoPlanOf(memo, n, target) ?? [])],
  };
  const startAt = first(runs[0] as History);
  return {
    workflowId: startOf(runs[0] as History)?.workflowId ?? fleet.upgradeId ?? '',
    upgradeId: fleet.upgradeId ?? '',
    ...(target ? { targetVersion: target } : {}),
    ...(fleet.startedBy ? { startedBy: fleet.startedBy } : {}),
    status,
    outcome,
    ...(lastClose.failure ? { failure: lastClose.failure } : {}),
    ...(Number.isFinite(startAt) ? { start: startAt } : {}),
    ...(closed && lastClose.at !== undefined ? { end: lastClose.at } : {}),
    ...(lastEventAt !== undefined ? { lastEventAt } : {}),
    runs: runs.length,
    plan,
    fleetChecks: activities.filter((a) => a.cluster === undefined).map((a) => a.bar),
    clusters,
    decisions: workers.flatMap((w) => w.decision ?? []),
    log,
    childHistories: [...children.values()].reduce((n, hs) => n + hs.length, 0),
    missingChildren: starts.filter((c) => !historyFor(c, children)).map((c) => c.workflowId),
  };
}

function groupBy<T>(items: T[], key: (item: T) => string | undefined): Map<string, T[]> {
  const groups = new Map<string, T[]>();
  for (const item of items) {
    const k = key(item);
    if (k === undefined) continue;
    const group = groups.get(k);
    if (group) group.push(item);
    else groups.set(k, [item]);
  }
  return groups;
}

const first = (h: History): number => {
  const e = eventsOf(h)[0];
  return e ? timeOf(e) : Number.NaN;
};
