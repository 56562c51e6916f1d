/**
 * What one history says about steps, gates and the messages people sent: activity bars (attempts
 * and failures included), CRD gate waits from the clusterProgress signals, and the log of
 * approvals and rollout commands (updates and signals), each with only the fields the report shows.
 */
import { shortDigest } from '../../../runbook/digest';
import { decode, failureText, field, firstOf, num, str, strs, summaryOf, timeOf, type HistoryEvent } from './history';
import type { GateWait, LogEntry, StepBar } from './types';

/** Activities that only read or check, before anything changes. */
const PREFLIGHT = new Set(['preflightCluster', 'checkChartVersion', 'checkImages']);
/** The webhook: not a step of the runbook. */
const NOT_A_STEP = new Set(['notify']);

/** Each activity of a history, with the cluster its input names (parent histories: which row it belongs to). */
export function activitiesOf(events: HistoryEvent[]): { bar: StepBar; cluster?: string }[] {
  const byId = new Map<number, { bar: StepBar; cluster?: string }>();
  for (const e of events) {
    const s = e.activityTaskScheduledEventAttributes;
    if (s) {
      const activity = s.activityType?.name ?? 'activity';
      if (NOT_A_STEP.has(activity)) continue;
      const input = firstOf(s.input);
      const cluster = str(field(field(input, 'cluster'), 'name'));
      const chart = str(field(input, 'chart'));
      const bar: StepBar = {
        label: summaryOf(e) ?? (chart ? `${activity} ${chart}` : activity),
        activity,
        start: timeOf(e),
        attempts: 1,
        status: 'scheduled',
        ...(PREFLIGHT.has(activity) ? { preflight: true as const } : {}),
      };
      byId.set(num(e.eventId) ?? -1, { bar, ...(cluster ? { cluster } : {}) });
      continue;
    }
    const started = e.activityTaskStartedEventAttributes;
    const closed =
      e.activityTaskCompletedEventAttributes ??
      e.activityTaskFailedEventAttributes ??
      e.activityTaskTimedOutEventAttributes ??
      e.activityTaskCanceledEventAttributes;
    const id = num((started ?? closed)?.scheduledEventId);
    const bar = id === undefined ? undefined : byId.get(id)?.bar;
    if (!bar) continue;
    if (started) {
      bar.attempts = started.attempt ?? 1;
      if (bar.status === 'scheduled') bar.status = 'running';
      const cause = failureText(started.lastFailure);
      if (cause) bar.retryCause = cause;
      continue;
    }
    bar.end = timeOf(e);
    if (e.activityTaskCompletedEventAttributes) bar.status = 'completed';
    else if (e.activityTaskCanceledEventAttributes) bar.status = 'cancelled';
    else {
      bar.status = e.activityTaskFailedEventAttributes ? 'failed' : 'timed-out';
      const f = e.activityTaskFailedEventAttributes?.failure ?? e.activityTaskTimedOutEventAttributes?.failure;
      bar.failure = failureText(f) ?? bar.status;
    }
  }
  return [...byId.values()];
}

/** A clusterProgress signal: the child's state changes, as sent (child history) or received (parent). */
export interface Progress {
  at: number;
  cluster: string;
  state: string;
  digest?: string;
  /** When the gate opened (workflow clock), from the gate view. */
  since?: number;
}

export function progressOf(events: HistoryEvent[]): Progress[] {
  const out: Progress[] = [];
  for (const e of events) {
    const a = e.workflowExecutionSignaledEventAttributes ?? e.signalExternalWorkflowExecutionInitiatedEventAttributes;
    if (a?.signalName !== 'clusterProgress') continue;
    const p = firstOf(a.input);
    const cluster = str(field(p, 'cluster'));
    const state = str(field(p, 'state'));
    if (!cluster || !state) continue;
    const gate = field(p, 'gate');
    const digest = str(field(gate, 'digest'));
    const since = Date.parse(str(field(gate, 'since')) ?? '');
    out.push({
      at: timeOf(e),
      cluster,
      state,
      ...(digest ? { digest } : {}),
      ...(Number.isFinite(since) ? { since } : {}),
    });
  }
  return out;
}

/** The CRD gate waits of one cluster: opened at the first waiting state, closed by the next other state. */
export function gateWaits(progress: Progress[]): GateWait[] {
  const waits: GateWait[] = [];
  let open: GateWait | undefined;
  for (const p of [...progress].sort((a, b) => a.at - b.at)) {
    if (p.state === 'waiting-approval') {
      if (!open) {
        open = { start: Math.min(p.since ?? p.at, p.at) };
        waits.push(open);
      }
      if (p.digest) open.digest = p.digest;
    } else if (open) {
      open.end = p.at;
      open.closedAs = p.state;
      open = undefined;
    }
  }
  return waits;
}

const short = (d: unknown): string | undefined => (typeof d === 'string' && d ? shortDigest(d) : undefined);

/** What an update's or signal's argument asks for, in the log's words; undefined for internal messages. */
function entryOf(name: string, arg: unknown): Omit<LogEntry, 'at' | 'via'> | undefined {
  const by = str(field(arg, 'by'));
  const reason = str(field(arg, 'reason'));
  const who = { ...(by !== undefined ? { by } : {}), ...(reason ? { reason } : {}) };
  const approve = field(arg, 'approve') === true;
  const selector = str(field(arg, 'selector'));
  switch (name) {
    case 'decideCrd':
    case 'crdDecision': {
      const digest = short(field(arg, 'digest'));
      const scope = str(field(arg, 'cluster'));
      return {
        action: approve ? 'approve' : 'reject',
        ...(scope ? { scope } : {}),
        ...who,
        ...(digest ? { digest } : {}),
      };
    }
    case 'decideAll':
    case 'decideAllSignal': {
      const digests = field(arg, 'digests');
      const digest =
        digests && typeof digests === 'object'
          ? Object.entries(digests as Record<string, unknown>)
              .map(([c, d]) => `${c}: ${short(d) ?? '?'}`)
              .join(', ')
          : '';
      return {
        action: approve ? 'approve all waiting' : 'reject all waiting',
        scope: 'every gate waiting',
        ...who,
        ...(digest ? { digest } : {}),
      };
    }
    case 'approveAhead': {
      const digest = short(field(arg, 'digest'));
      return { action: 'approve ahead', scope: selector || 'every cluster', ...who, ...(digest ? { digest } : {}) };
    }
    case 'hold':
    case 'release':
      return { action: name, scope: field(arg, 'all') === true ? 'all' : (selector ?? ''), ...who };
    default: {
      // pause, resume, and any later command (retryCluster, skipCluster...): who, and what it names.
      if (by === undefined) return undefined;
      const scope = str(field(arg, 'cluster')) ?? selector;
      return { action: name, ...(scope ? { scope } : {}), ...who };
    }
  }
}

/** An update's answer in one line: a string as given, an approve-all's decided / not decided. */
function answerOf(value: unknown): string | undefined {
  if (typeof value === 'string') return value;
  const decided = strs(field(value, 'decided'));
  const notDecided = field(value, 'notDecided');
  if (!Array.isArray(notDecided)) return undefined;
  const not = notDecided.map((n) => `${str(field(n, 'cluster')) ?? '?'} (${str(field(n, 'reason')) ?? ''})`);
  return `decided: ${decided.join(', ') || 'none'}${not.length ? `; not decided: ${not.join(', ')}` : ''}`;
}

/**
 * Approval requests and rollout commands: every update accepted (with its answer, or why it was
 * refused) and the decision signals people sent. Decisions the parent forwarded to a child (they
 * carry the approve-all's requestId) are left out: the parent's update already lists them.
 */
export function messageLog(events: HistoryEvent[]): LogEntry[] {
  const answers = new Map<string, { result?: string; refused?: boolean }>();
  for (const e of events) {
    const c = e.workflowExecutionUpdateCompletedEventAttributes;
    const id = c?.meta?.updateId;
    if (!c || !id) continue;
    const failure = failureText(c.outcome?.failure);
    const success = answerOf(firstOf(c.outcome?.success));
    answers.set(id, failure ? { result: failure, refused: true } : success ? { result: success } : {});
  }
  const log: LogEntry[] = [];
  for (const e of events) {
    const u = e.workflowExecutionUpdateAcceptedEventAttributes?.acceptedRequest;
    if (u) {
      const entry = entryOf(u.input?.name ?? '', firstOf(u.input?.args));
      if (!entry) continue;
      const answer = answers.get(u.meta?.updateId ?? '') ?? { result: 'in progress' };
      log.push({ at: timeOf(e), via: 'update', ...entry, ...answer });
      continue;
    }
    const s = e.workflowExecutionSignaledEventAttributes;
    if (!s?.signalName || s.signalName === 'clusterProgress') continue;
    const arg = decode(s.input?.payloads?.[0]);
    if (field(arg, 'requestId') !== undefined) continue;
    const entry = entryOf(s.signalName, arg);
    if (entry) log.push({ at: timeOf(e), via: 'signal', ...entry, result: 'received' });
  }
  return log;
}
