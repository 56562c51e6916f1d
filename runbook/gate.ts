/**
 * The state of one cluster's CRD approval gate and every rule that changes it: who may decide now,
 * what an approval records, when several approvals make a decision, what a changed preview undoes
 * and what the deadline does. Pure: the workflow (workflows/crd-gate.ts) keeps the waiting, the
 * activities and the messages; the gate model (test/unit/gate-model.test.ts) drives this with
 * random sequences of decisions against its invariants.
 */
import { approverRefusal, distinctApprovers, hasApproved, type GatePolicy } from './approval-policy';
import { digestMatches, shortDigest } from './digest';
import type { Approval } from './types';

/** A decision as a person (or approve-all) sends it: the update's and the signal's payload. */
export interface GateRequest {
  cluster: string;
  approve: boolean;
  by: string;
  reason?: string;
  digest?: string;
}

export interface GateState {
  readonly cluster: string;
  readonly policy: GatePolicy;
  /** Open and waiting for decisions. */
  waiting: boolean;
  /** An approval is being checked against a fresh preview (decisions queue behind it). */
  checking: boolean;
  /** Why the gate closed without a decision (the deadline under onDeadline: fail). */
  closed?: string;
  decision?: Approval;
  /** Approvals recorded so far, while the policy needs more distinct approvers. */
  approvals: { by: string; reason?: string; at: string }[];
  /** What an approval binds to: the CRD change shown (absent before the gate opens, or without a digest). */
  preview?: { text: string; digest?: string };
  /** When the current preview was shown. */
  since?: string;
}

export function newGate(cluster: string, policy: GatePolicy): GateState {
  return { cluster, policy, waiting: false, checking: false, approvals: [] };
}

/** Opens the gate on what it shows. */
export function openGate(g: GateState, preview: GateState['preview'], at: string): void {
  if (preview) g.preview = preview;
  g.since = at;
  g.waiting = true;
}

/** Why this decision cannot be taken now, or undefined when it can (`clusterState` for the message). */
export function gateRefusal(g: GateState, x: GateRequest, clusterState: string): string | undefined {
  const { cluster, policy } = g;
  if (x.cluster !== cluster) return `this gate belongs to cluster ${cluster}, not ${x.cluster}`;
  if (!x.by?.trim()) return 'an approval must say who gives it (--by)';
  const late = lateRefusal(g);
  if (late) return late;
  if (!g.waiting) return `cluster ${cluster} is not waiting for approval yet (${clusterState})`;
  const policyRefusal = approverRefusal(policy, x.by, x.approve);
  if (policyRefusal) return policyRefusal;
  if (
    x.approve &&
    hasApproved(
      g.approvals.map((a) => a.by),
      x.by
    )
  )
    return `${x.by} has already approved cluster ${cluster}: it needs ${policy.distinct} distinct approvers`;
  const digest = g.preview?.digest;
  if (x.approve && digest) {
    if (!x.digest) return `an approval must name the digest of what it approves: ${digest} (${g.preview?.text})`;
    if (!digestMatches(x.digest, digest))
      return `the CRD change of ${cluster} is ${shortDigest(digest)}, not ${shortDigest(x.digest)}: ${g.preview?.text}`;
  }
  return undefined;
}

/** Why no decision can be taken any more (decided, or closed), or undefined. */
export function lateRefusal(g: GateState): string | undefined {
  if (g.decision)
    return `cluster ${g.cluster} was already ${g.decision.approved ? 'approved' : 'rejected'} by ${g.decision.by} at ${g.decision.at}`;
  if (g.closed) return `the gate of cluster ${g.cluster} closed: ${g.closed}`;
  return undefined;
}

/**
 * The preview was checked again before an approval and the change is not what was shown: the gate
 * shows the new one, and approvals of the old change do not carry over.
 */
export function previewChanged(g: GateState, fresh: NonNullable<GateState['preview']>, at: string): string {
  g.preview = fresh;
  g.since = at;
  g.approvals.length = 0;
  return `the CRD change of ${g.cluster} changed since it was shown: now ${shortDigest(fresh.digest ?? '')}: ${fresh.text}`;
}

export interface Recorded {
  /** The gate has its decision now. */
  decided: boolean;
  /** What the person who sent it is told. */
  answer: string;
}

/** Records a decision gateRefusal let through: a rejection decides; approvals decide once enough distinct people gave one. */
export function recordDecision(g: GateState, x: GateRequest, at: string): Recorded {
  const { cluster, policy } = g;
  if (!x.approve) {
    g.decision = { approved: false, by: x.by, ...(x.reason ? { reason: x.reason } : {}), at };
  } else {
    g.approvals.push({ by: x.by.trim(), ...(x.reason ? { reason: x.reason } : {}), at });
    const who = distinctApprovers(g.approvals.map((a) => a.by));
    if (who.length < policy.distinct)
      return {
        decided: false,
        answer: `${cluster}: approval ${who.length} of ${policy.distinct} recorded (${x.by}); waiting for ${policy.distinct - who.length} more distinct approver(s)`,
      };
    g.decision = {
      approved: true,
      by: who.join(', '),
      ...(x.reason ? { reason: x.reason } : {}),
      at,
      ...(g.preview?.digest ? { digest: g.preview.digest } : {}),
      ...(who.length > 1 ? { approvers: who } : {}),
    };
  }
  const d = g.decision;
  return {
    decided: true,
    answer: `${cluster}: CRD step ${x.approve ? 'approved' : 'rejected'} by ${d.by}${d.digest ? ` (${shortDigest(d.digest)})` : ''}`,
  };
}

/** How many distinct approvals the gate has, as the waiting text says it (empty when one is enough). */
export function approvalCount(g: GateState): string {
  return g.policy.distinct > 1
    ? ` (${distinctApprovers(g.approvals.map((a) => a.by)).length} of ${g.policy.distinct} approvals)`
    : '';
}

/**
 * Nobody decided within the policy's deadline: never an approval. Under onDeadline `fail` the gate
 * closes (returns the failure's message); otherwise the deadline rejects.
 */
export function deadlinePassed(g: GateState, what: string, at: string): { failure?: string } {
  g.waiting = false;
  if (g.policy.onDeadline === 'fail') {
    g.closed = `${what} (approvals.onDeadline: fail)`;
    return { failure: g.closed };
  }
  g.decision = { approved: false, by: 'deadline', reason: `${what} (approvals.onDeadline: reject)`, at };
  return {};
}

export interface ApproveAllAnswer {
  decided: string[];
  notDecided: { cluster: string; reason: string }[];
}

/**
 * What an approve-all tells its sender: for every cluster it targeted, decided, or not and why
 * (its workflow closed before the signal reached it, its gate refused, or no answer came in time).
 * `closed` in the order the signals failed; the rest answer (or not) in `answers`.
 */
export function approveAllAnswer(
  targets: readonly string[],
  closed: readonly string[],
  answers: ReadonlyMap<string, { decided: boolean; reason?: string }>
): ApproveAllAnswer {
  const notDecided: ApproveAllAnswer['notDecided'] = closed.map((cluster) => ({
    cluster,
    reason: 'its workflow has closed',
  }));
  const decided: string[] = [];
  for (const cluster of targets.filter((c) => !closed.includes(c))) {
    const a = answers.get(cluster);
    if (a?.decided) decided.push(cluster);
    else notDecided.push({ cluster, reason: a?.reason ?? 'no answer yet (the decision may still apply)' });
  }
  return { decided, notDecided };
}
