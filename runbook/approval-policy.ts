/**
 * The approver policy of the fleet file, resolved for one gate: who may decide, how many distinct
 * people must approve, and what a gate does when nobody decides in time. Pure: the workflows check
 * decisions with it, the CLI refuses early with the same words.
 */
import { parseSelector } from './selector';
import type { ApprovalPolicy } from './types';

/** What one cluster's gate enforces. */
export interface GatePolicy {
  /** Only these may decide (absent: anyone who names themselves). */
  approvers?: string[];
  /** Who started the upgrade, when the policy forbids them to approve it. */
  starter?: string;
  /** Distinct approvers the gate needs (1 unless a rule says more). */
  distinct: number;
  deadlineMs?: number;
  onDeadline?: 'reject' | 'fail';
  remindEveryMs?: number;
}

const same = (a: string, b: string) => a.trim().toLowerCase() === b.trim().toLowerCase();

/** The policy for a cluster with these labels: the highest `distinct` among the rules that match it. */
export function gatePolicyFor(
  policy: ApprovalPolicy | undefined,
  labels: Readonly<Record<string, string>>,
  startedBy: string | undefined
): GatePolicy {
  const distinct = Math.max(
    1,
    ...(policy?.rules ?? [])
      .filter((r) => r.select.trim() === '' || parseSelector(r.select).matches(labels))
      .map((r) => r.distinct)
  );
  return {
    ...(policy?.approvers ? { approvers: policy.approvers } : {}),
    ...(policy?.notStarter && startedBy ? { starter: startedBy } : {}),
    distinct,
    ...(policy?.deadlineMs !== undefined
      ? { deadlineMs: policy.deadlineMs, onDeadline: policy.onDeadline ?? 'reject' }
      : {}),
    ...(policy?.remindEveryMs !== undefined ? { remindEveryMs: policy.remindEveryMs } : {}),
  };
}

/**
 * Why `by` may not give this decision under the policy, or undefined when they may. Rejections are
 * open to every allowed approver, the starter included: stopping is always safe.
 */
export function approverRefusal(
  p: Pick<GatePolicy, 'approvers' | 'starter'>,
  by: string,
  approve: boolean
): string | undefined {
  if (p.approvers && !p.approvers.some((a) => same(a, by)))
    return `${by} is not an allowed approver (the fleet file allows: ${p.approvers.join(', ')})`;
  if (approve && p.starter && same(p.starter, by))
    return `${by} started this upgrade and may not approve it (the fleet file's approvals.notStarter)`;
  return undefined;
}

/** Distinct people among approvals (names compared without case). */
export function distinctApprovers(names: readonly string[]): string[] {
  const out: string[] = [];
  for (const n of names) if (!out.some((o) => same(o, n))) out.push(n.trim());
  return out;
}

/** Whether `by` is already among `names`. */
export const hasApproved = (names: readonly string[], by: string): boolean => names.some((n) => same(n, by));

/**
 * Why no gate of some cluster could ever be approved with this starter, or undefined: with
 * `notStarter`, the starter's name leaves fewer allowed people than a rule needs.
 */
export function unapprovableBecause(
  policy: ApprovalPolicy | undefined,
  startedBy: string | undefined
): string | undefined {
  if (!policy?.approvers || !policy.notStarter || !startedBy || !hasApproved(policy.approvers, startedBy))
    return undefined;
  const others = distinctApprovers(policy.approvers).filter((a) => !same(a, startedBy));
  const need = Math.max(1, ...(policy.rules ?? []).map((r) => r.distinct));
  if (need <= others.length) return undefined;
  return `${startedBy} may not approve an upgrade they start (approvals.notStarter), which leaves ${others.length} approver(s) (${others.join(', ') || 'nobody'}) where ${need} distinct are needed: let someone else start it`;
}
