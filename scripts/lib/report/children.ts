/**
 * The worker clusters' children as the parent saw them (started, closed, with what result), and the
 * fields of a ClusterResult the report shows.
 */
import { decode, failureText, field, firstOf, num, str, strs, summaryOf, timeOf, type HistoryEvent } from './history';
import type { Decision, PlanEntry } from './types';

/** The fields of a ClusterResult the report shows. */
export interface ResultFields {
  outcome?: string;
  error?: string;
  from?: string;
  to?: string;
  approval?: Decision;
}

export function pickApproval(cluster: string, v: unknown): Decision | undefined {
  const approved = field(v, 'approved');
  const by = str(field(v, 'by'));
  const at = str(field(v, 'at'));
  if (typeof approved !== 'boolean' || by === undefined || at === undefined) return undefined;
  const reason = str(field(v, 'reason'));
  const digest = str(field(v, 'digest'));
  const approvers = strs(field(v, 'approvers'));
  return {
    cluster,
    approved,
    by,
    at,
    ...(reason ? { reason } : {}),
    ...(digest ? { digest } : {}),
    ...(approvers.length > 0 ? { approvers } : {}),
  };
}

export function pickResult(cluster: string, v: unknown): ResultFields | undefined {
  const outcome = str(field(v, 'outcome'));
  if (!outcome) return undefined;
  const error = str(field(v, 'error'));
  const from = str(field(v, 'from'));
  const to = str(field(v, 'to'));
  const approval = pickApproval(cluster, field(v, 'approval'));
  return {
    outcome,
    ...(error ? { error } : {}),
    ...(from ? { from } : {}),
    ...(to ? { to } : {}),
    ...(approval ? { approval } : {}),
  };
}

/** A ClusterPlan's shown fields: versions and step kinds (never a step's arguments). */
export function pickPlan(v: unknown, role: PlanEntry['role'], fallbackName: string): PlanEntry {
  const from = str(field(v, 'from'));
  const to = str(field(v, 'to'));
  const skipped = str(field(v, 'skipped'));
  const steps = field(v, 'steps');
  return {
    cluster: str(field(field(v, 'cluster'), 'name')) ?? fallbackName,
    role,
    ...(from ? { from } : {}),
    ...(to ? { to } : {}),
    steps: Array.isArray(steps) ? steps.map((s) => str(field(s, 'kind')) ?? '?') : [],
    ...(skipped ? { skipped } : {}),
  };
}

/** One child the parent started (a cluster may have several: a retried cluster starts a new one). */
export interface ChildStart {
  workflowId: string;
  cluster: string;
  summary?: string;
  initiatedAt: number;
  runId?: string;
  startedAt?: number;
  closedAt?: number;
  closedAs?: 'completed' | 'failed' | 'cancelled' | 'timed-out' | 'terminated' | 'start-failed';
  result?: ResultFields;
  failure?: string;
  plan: PlanEntry;
}

/** The children one parent run started, in start order, with what the parent learnt of their end. */
export function childStarts(events: HistoryEvent[]): ChildStart[] {
  const byInitiated = new Map<number, ChildStart>();
  for (const e of events) {
    const init = e.startChildWorkflowExecutionInitiatedEventAttributes;
    if (init) {
      const workflowId = init.workflowId ?? '';
      const plan = field(firstOf(init.input), 'plan');
      const entry = pickPlan(plan, 'worker', workflowId.split('/').at(-1) ?? workflowId);
      const summary = summaryOf(e);
      byInitiated.set(num(e.eventId) ?? -1, {
        workflowId,
        cluster: entry.cluster,
        initiatedAt: timeOf(e),
        plan: entry,
        ...(summary ? { summary } : {}),
      });
      continue;
    }
    const a =
      e.childWorkflowExecutionStartedEventAttributes ??
      e.childWorkflowExecutionCompletedEventAttributes ??
      e.childWorkflowExecutionFailedEventAttributes ??
      e.childWorkflowExecutionCanceledEventAttributes ??
      e.childWorkflowExecutionTimedOutEventAttributes ??
      e.childWorkflowExecutionTerminatedEventAttributes ??
      e.startChildWorkflowExecutionFailedEventAttributes;
    const child = a ? byInitiated.get(num(a.initiatedEventId) ?? -1) : undefined;
    if (!child) continue;
    const at = timeOf(e);
    if (e.childWorkflowExecutionStartedEventAttributes) {
      child.startedAt = at;
      const runId = e.childWorkflowExecutionStartedEventAttributes.workflowExecution?.runId;
      if (runId) child.runId = runId;
      continue;
    }
    child.closedAt = at;
    const completed = e.childWorkflowExecutionCompletedEventAttributes;
    const failed = e.childWorkflowExecutionFailedEventAttributes;
    if (completed) {
      child.closedAs = 'completed';
      const result = pickResult(child.cluster, decode(completed.result?.payloads?.[0]));
      if (result) child.result = result;
    } else if (failed) {
      child.closedAs = 'failed';
      child.failure = failureText(failed.failure) ?? 'failed';
    } else if (e.childWorkflowExecutionCanceledEventAttributes) child.closedAs = 'cancelled';
    else if (e.childWorkflowExecutionTimedOutEventAttributes) {
      child.closedAs = 'timed-out';
      child.failure = 'the child workflow timed out';
    } else if (e.childWorkflowExecutionTerminatedEventAttributes) {
      child.closedAs = 'terminated';
      child.failure = 'the child workflow was terminated';
    } else {
      child.closedAs = 'start-failed';
      child.failure = `the child workflow could not start (cause ${String(e.startChildWorkflowExecutionFailedEventAttributes?.cause)})`;
    }
  }
  return [...byInitiated.values()];
}
