/**
 * Reading workflow histories: event times, IDs and payloads. Payloads go through the SDK's default
 * payload converter (what the workflows wrote them with); callers pick the fields they show.
 */
import { defaultPayloadConverter } from '@temporalio/common';
import type { History, Payload } from '@temporalio/common/lib/proto-utils';
import type { RunStatus } from './types';

export type { History };
export type HistoryEvent = NonNullable<History['events']>[number];
type Failure = NonNullable<NonNullable<HistoryEvent['activityTaskFailedEventAttributes']>['failure']>;

/** int64 fields arrive as Long (live client), number or string (JSON). */
export function num(v: unknown): number | undefined {
  if (v === null || v === undefined) return undefined;
  if (typeof v === 'number') return v;
  if (typeof v === 'string') return Number(v);
  const long = v as { toNumber?: () => number };
  return typeof long.toNumber === 'function' ? long.toNumber() : undefined;
}

/** An event's time, epoch milliseconds. */
export function timeOf(e: HistoryEvent): number {
  const seconds = num(e.eventTime?.seconds) ?? 0;
  return seconds * 1000 + Math.floor((e.eventTime?.nanos ?? 0) / 1e6);
}

export const eventsOf = (h: History): HistoryEvent[] => h.events ?? [];

/** One payload's value, or undefined when it cannot be decoded (an encoding this converter does not know). */
export function decode(payload: Payload | null | undefined): unknown {
  if (!payload) return undefined;
  try {
    return defaultPayloadConverter.fromPayload(payload);
  } catch {
    return undefined;
  }
}

/** The first payload of a `Payloads` (a workflow's or activity's single argument or result). */
export const firstOf = (p: { payloads?: Payload[] | null } | null | undefined): unknown => decode(p?.payloads?.[0]);

/** A field of a decoded object, when it is an object. */
export function field(value: unknown, key: string): unknown {
  return value !== null && typeof value === 'object' ? (value as Record<string, unknown>)[key] : undefined;
}

export const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);
export const strs = (v: unknown): string[] => (Array.isArray(v) ? v.filter((x) => typeof x === 'string') : []);

/** The summary an activity or child was started with (userMetadata), when it is text. */
export const summaryOf = (e: HistoryEvent): string | undefined => str(decode(e.userMetadata?.summary));

const MAX_TEXT = 2000;

/** A failure and its causes, one line each joined: messages only, never stack traces or details payloads. */
export function failureText(f: Failure | null | undefined): string | undefined {
  const messages: string[] = [];
  for (let cur = f, depth = 0; cur && depth < 10; cur = cur.cause, depth++) {
    const m = cur.message?.trim();
    // A cause its parent already quotes adds nothing.
    if (m && !messages.some((prev) => prev.includes(m))) messages.push(m);
  }
  const text = messages.join(': caused by: ');
  return text ? text.slice(0, MAX_TEXT) : undefined;
}

export interface RunClose {
  status: RunStatus | 'continued';
  at?: number;
  result?: unknown;
  failure?: string;
  /** ContinuedAsNew: the next run. */
  nextRunId?: string;
}

/** How one run ended, from its last event (running when that is not a close event). */
export function closeOf(h: History): RunClose {
  const e = eventsOf(h).at(-1);
  if (!e) return { status: 'running' };
  const at = timeOf(e);
  if (e.workflowExecutionCompletedEventAttributes)
    return { status: 'completed', at, result: firstOf(e.workflowExecutionCompletedEventAttributes.result) };
  if (e.workflowExecutionFailedEventAttributes)
    return { status: 'failed', at, failure: failureText(e.workflowExecutionFailedEventAttributes.failure) };
  if (e.workflowExecutionCanceledEventAttributes) return { status: 'cancelled', at };
  if (e.workflowExecutionTerminatedEventAttributes) {
    const reason = e.workflowExecutionTerminatedEventAttributes.reason;
    return { status: 'terminated', at, ...(reason ? { failure: `terminated: ${reason}` } : {}) };
  }
  if (e.workflowExecutionTimedOutEventAttributes) return { status: 'timed-out', at, failure: 'timed out' };
  if (e.workflowExecutionContinuedAsNewEventAttributes)
    return {
      status: 'continued',
      at,
      nextRunId: e.workflowExecutionContinuedAsNewEventAttributes.newExecutionRunId ?? '',
    };
  return { status: 'running' };
}

/** The run's own start attributes (input, IDs, parent). */
export const startOf = (h: History) => eventsOf(h)[0]?.workflowExecutionStartedEventAttributes ?? undefined;

/** A history's run ID: recorded as the original execution run ID of its start event. */
export const runIdOf = (h: History): string | undefined => startOf(h)?.originalExecutionRunId ?? undefined;
