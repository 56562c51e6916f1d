/**
 * Steering a running rollout from outside: pause and resume, hold and release clusters by
 * selector (updates with validators, recorded with who and why), and approvals given ahead of the
 * gates, by label selector or for all, naming the fleet's CRD change digest: those waiting now are
 * decided at once, the others as soon as they reach their gate.
 */
import { ApplicationFailure, log, setHandler } from '@temporalio/workflow';
import { distinctApprovers, gatePolicyFor, type GatePolicy } from '../runbook/approval-policy';
import { digestMatches, shortDigest } from '../runbook/digest';
import { parseSelector, SelectorError } from '../runbook/selector';
import type { UpgradeRequest } from '../runbook/types';
import { decideClusters, fleetApproverRefusal } from './approvals';
import type { AheadGrant } from './crd-gate';
import type { FleetStatus } from './fleet-status';
import {
  approveAheadUpdate,
  holdUpdate,
  pauseUpdate,
  releaseUpdate,
  resumeUpdate,
  type AheadApproval,
  type RolloutCommand,
} from './messages';

const refuse = (message: string) => ApplicationFailure.nonRetryable(message, 'RolloutCommandRefused');

function needWho(c: RolloutCommand): void {
  if (!c.by?.trim()) throw refuse('say who does it (--by)');
}

/** Whether a selector covers `cluster` ('' covers every cluster). */
function covers(a: { selector: string }, labels: Record<string, string>): boolean {
  return a.selector === '' || parseSelector(a.selector).matches(labels);
}

function checkSelector(selector: unknown): void {
  if (typeof selector !== 'string') throw refuse('give a label selector ("" for all)');
  try {
    if (selector.trim()) parseSelector(selector);
  } catch (err) {
    if (err instanceof SelectorError) throw refuse(err.message);
    throw err;
  }
}

/** The gate policy of a cluster, from the fleet file. */
export const policyFor = (request: UpgradeRequest, status: FleetStatus, cluster: string): GatePolicy =>
  gatePolicyFor(request.fleet.approvals, status.labelsOf(cluster), request.options.startedBy);

/**
 * The approvals given ahead that pass a cluster's gate without waiting: those covering it, when
 * they come from as many distinct people as its policy needs.
 */
export function aheadGrantFor(status: FleetStatus, cluster: string, policy: GatePolicy): AheadGrant | undefined {
  const covering = (status.rollout.aheadApprovals ?? []).filter((a) => covers(a, status.labelsOf(cluster)));
  const who = distinctApprovers(covering.map((a) => a.by));
  const first = covering[0];
  if (!first || who.length < policy.distinct) return undefined;
  return {
    by: first.by,
    selector: first.selector,
    ...(first.reason ? { reason: first.reason } : {}),
    ...(first.digest ? { digest: first.digest } : {}),
    ...(who.length > 1 ? { approvers: who } : {}),
  };
}

/** Whether a hold keeps `cluster` from starting, and whose. */
export function holdOf(
  status: FleetStatus,
  cluster: string
): { selector: string; by: string; reason?: string } | undefined {
  return (status.rollout.holds ?? []).find((h) => covers(h, status.labelsOf(cluster)));
}

export function handleRolloutControl(
  status: FleetStatus,
  request: UpgradeRequest
): { onGateOpen(cluster: string): void } {
  const { rollout } = status;
  const ended = () => status.phase === 'done' || status.phase === 'failed' || status.phase === 'cancelled';
  setHandler(
    pauseUpdate,
    (c) => {
      status.pause({ by: c.by.trim(), ...(c.reason ? { reason: c.reason } : {}), at: new Date().toISOString() });
      log.info('rollout paused: clusters running finish, no new one starts', { by: c.by, reason: c.reason });
      return 'paused: clusters running finish, no new one starts';
    },
    {
      validator: (c) => {
        needWho(c);
        if (rollout.paused) throw refuse(`already paused by ${rollout.paused.by} at ${rollout.paused.at}`);
        if (ended()) throw refuse(`the upgrade has ended (${status.phase})`);
      },
    }
  );
  setHandler(
    resumeUpdate,
    (c) => {
      const was = status.resume();
      log.info('rollout resumed', { by: c.by, reason: c.reason, pausedBy: was?.by });
      return `resumed (paused by ${was?.by ?? '?'} since ${was?.at ?? '?'})`;
    },
    {
      validator: (c) => {
        needWho(c);
        if (!rollout.paused) throw refuse('the rollout is not paused');
      },
    }
  );

  setHandler(
    holdUpdate,
    (c) => {
      const hold = {
        selector: c.selector.trim(),
        by: c.by.trim(),
        ...(c.reason ? { reason: c.reason } : {}),
        at: new Date().toISOString(),
      };
      status.hold(hold);
      log.info('clusters held', { selector: hold.selector, by: hold.by, reason: hold.reason });
      const held = status.notStarted().filter((n) => covers(hold, status.labelsOf(n)));
      return `held ${hold.selector || 'every cluster'}: ${held.length} cluster(s) not started yet will wait (${held.slice(0, 10).join(', ')}${held.length > 10 ? ', ...' : ''})`;
    },
    {
      validator: (c) => {
        needWho(c);
        checkSelector(c.selector);
        if (ended()) throw refuse(`the upgrade has ended (${status.phase})`);
        const same = (rollout.holds ?? []).find((h) => h.selector === c.selector.trim());
        if (same)
          throw refuse(`${c.selector.trim() || 'every cluster'} is already held by ${same.by} since ${same.at}`);
      },
    }
  );
  setHandler(
    releaseUpdate,
    (c) => {
      const lifted = status.release((h) => !!c.all || h.selector === c.selector?.trim());
      log.info('holds lifted', { by: c.by, selectors: lifted.map((h) => h.selector) });
      return `released ${lifted.map((h) => `${h.selector || 'every cluster'} (held by ${h.by})`).join(', ')}`;
    },
    {
      validator: (c) => {
        needWho(c);
        const holds = rollout.holds ?? [];
        if (holds.length === 0) throw refuse('no cluster is held');
        if (!c.all && !holds.some((h) => h.selector === c.selector?.trim()))
          throw refuse(
            `no hold with selector ${JSON.stringify(c.selector ?? '')}; holds: ${holds.map((h) => JSON.stringify(h.selector)).join(', ')}`
          );
      },
    }
  );

  const decideAhead = (a: AheadApproval, clusters: string[]) =>
    decideClusters(status, clusters, {
      approve: true,
      by: a.by,
      reason: a.reason ?? `approved ahead (${a.selector || 'all'})`,
      // The ahead approval named the fleet's CRD change; each gate is bound to its own preview of it.
      digests: status.gateDigests(clusters),
    });

  setHandler(
    approveAheadUpdate,
    async (a) => {
      const approval = {
        selector: a.selector.trim(),
        by: a.by.trim(),
        ...(a.reason ? { reason: a.reason } : {}),
        ...(rollout.crdDigest ? { digest: rollout.crdDigest } : {}),
      };
      status.approvedAhead(approval);
      return decideAhead(
        approval,
        status.waiting().filter((c) => covers(approval, status.labelsOf(c)))
      );
    },
    {
      validator: (a) => {
        needWho(a);
        checkSelector(a.selector);
        const why = fleetApproverRefusal(request, a.by, true);
        if (why) throw refuse(why);
        // Before the plan there is nothing to name: an approval must say what it approves.
        if (status.phase === 'preflight' && !rollout.crdDigest)
          throw refuse('the plan is not made yet: approve ahead once `status` shows the fleet CRD change');
        const fleet = rollout.crdDigest;
        if (fleet && !a.digest)
          throw refuse(
            `an approval given ahead must name the fleet's CRD change digest: ${fleet} (${rollout.crdChange ?? ''})`
          );
        if (fleet && a.digest && !digestMatches(a.digest, fleet))
          throw refuse(
            `the fleet's CRD change is ${shortDigest(fleet)}, not ${shortDigest(a.digest)}: ${rollout.crdChange ?? ''}`
          );
        const dup = (rollout.aheadApprovals ?? []).find(
          (x) => x.selector === a.selector.trim() && x.by.toLowerCase() === a.by.trim().toLowerCase()
        );
        if (dup) throw refuse(`${dup.by} has already approved ${dup.selector || 'every cluster'} ahead`);
      },
    }
  );

  return {
    /** A cluster reached its gate: an approval given ahead that covers it decides it now. */
    onGateOpen(cluster) {
      // Each approver's ahead approval counts once at the gate, which adds them up to its policy.
      const seen: string[] = [];
      for (const a of rollout.aheadApprovals ?? []) {
        if (!covers(a, status.labelsOf(cluster)) || seen.includes(a.by.toLowerCase())) continue;
        seen.push(a.by.toLowerCase());
        void decideAhead(a, [cluster]);
      }
    },
  };
}
