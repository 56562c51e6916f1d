/**
 * What the upgrade's histories say about orchestration: events per parent run, and per activity
 * the time Temporal and the workflow add around it, from the events' own timestamps:
 * dispatch (ActivityTaskStarted - ActivityTaskScheduled) plus turnaround (the next command the
 * workflow issues - ActivityTaskCompleted; for activities run side by side, from the last of them
 * to complete). The activity's own run (started -> completed) is not counted: it is the tool's
 * time, which the shell baseline spends too.
 */
import type { Client } from '@temporalio/client';
import { num, timeOf as ms, type HistoryEvent } from '../../scripts/lib/report/history';

/** The events after which the workflow has acted again: its next activity, or its end. */
const isNext = (e: HistoryEvent): boolean =>
  Boolean(
    e.activityTaskScheduledEventAttributes ??
    e.workflowExecutionCompletedEventAttributes ??
    e.workflowExecutionContinuedAsNewEventAttributes ??
    e.startChildWorkflowExecutionInitiatedEventAttributes
  );

export interface ActivityOverhead {
  activity: string;
  dispatchMs: number;
  turnaroundMs: number;
}

export function activityOverheads(events: HistoryEvent[]): ActivityOverhead[] {
  const scheduled = new Map<number, { at: number; type: string }>();
  const started = new Map<number, number>();
  const out: ActivityOverhead[] = [];
  events.forEach((e, i) => {
    if (e.activityTaskScheduledEventAttributes) {
      const type = e.activityTaskScheduledEventAttributes.activityType?.name ?? '?';
      scheduled.set(num(e.eventId) ?? 0, { at: ms(e), type });
    } else if (e.activityTaskStartedEventAttributes) {
      started.set(num(e.activityTaskStartedEventAttributes.scheduledEventId) ?? 0, ms(e));
    } else if (e.activityTaskCompletedEventAttributes) {
      const id = num(e.activityTaskCompletedEventAttributes.scheduledEventId) ?? 0;
      const s = scheduled.get(id);
      const st = started.get(id);
      const j = events.findIndex((n, k) => k > i && isNext(n));
      const next = events[j];
      if (!s || st === undefined || !next) return;
      // Activities that ran side by side (preflight) are waited for together: the turnaround
      // counts from the last of them to complete, not the wait for the others.
      const last =
        events
          .slice(i, j)
          .filter((n) => n.activityTaskCompletedEventAttributes)
          .at(-1) ?? e;
      out.push({ activity: s.type, dispatchMs: st - s.at, turnaroundMs: ms(next) - ms(last) });
    }
  });
  return out;
}

export interface UpgradeHistories {
  parentRuns: number[];
  overheads: ActivityOverhead[];
  /** The worker clusters' own chains (child workflows) only: no preflight batch queued behind the worker's slots. */
  chainOverheads: ActivityOverhead[];
  children: number;
}

export async function readHistories(client: Client, workflowId: string): Promise<UpgradeHistories> {
  const parentRuns: number[] = [];
  const children: { workflowId: string; runId: string }[] = [];
  const overheads: ActivityOverhead[] = [];
  const chainOverheads: ActivityOverhead[] = [];
  for await (const run of client.workflow.list({ query: `WorkflowId = '${workflowId}'` })) {
    const events = (await client.workflow.getHandle(run.workflowId, run.runId).fetchHistory()).events ?? [];
    parentRuns.push(events.length);
    overheads.push(...activityOverheads(events));
    for (const e of events) {
      const c = e.childWorkflowExecutionStartedEventAttributes?.workflowExecution;
      if (c?.workflowId && c.runId) children.push({ workflowId: c.workflowId, runId: c.runId });
    }
  }
  // A few at a time: 1,000 children's histories, without flooding the server.
  for (let i = 0; i < children.length; i += 20) {
    const batch = await Promise.all(
      children
        .slice(i, i + 20)
        .map(async (c) => (await client.workflow.getHandle(c.workflowId, c.runId).fetchHistory()).events ?? [])
    );
    for (const events of batch) chainOverheads.push(...activityOverheads(events));
  }
  overheads.push(...chainOverheads);
  return { parentRuns, overheads, chainOverheads, children: children.length };
}

export function percentile(values: number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] as number;
}
