/**
 * Steering a running rollout from outside: pause and resume (updates with validators, recorded
 * with who and why), and approvals given ahead of the gates, by label selector or for all: those
 * waiting now are decided at once, the others as soon as they reach their gate.
 */
import { ApplicationFailure, log, setHandler } from '@temporalio/workflow';
import { parseSelector, SelectorError } from '../runbook/selector';
import { decideClusters } from './approvals';
import type { FleetStatus } from './fleet-status';
import { approveAheadUpdate, pauseUpdate, resumeUpdate, type AheadApproval, type RolloutCommand } from './messages';

const refuse = (message: string) => ApplicationFailure.nonRetryable(message, 'RolloutCommandRefused');

function needWho(c: RolloutCommand): void {
  if (!c.by?.trim()) throw refuse('say who does it (--by)');
}

/** Whether an ahead approval covers `cluster` (selector '' covers every cluster). */
function covers(a: AheadApproval, labels: Record<string, string>): boolean {
  return a.selector === '' || parseSelector(a.selector).matches(labels);
}

/** The first approval given ahead that covers a cluster with these labels, if any. */
export function aheadApprovalFor(
  status: FleetStatus,
  cluster: string
): { by: string; reason?: string; selector: string } | undefined {
  return (status.rollout.aheadApprovals ?? []).find((a) => covers(a, status.labelsOf(cluster)));
}

export function handleRolloutControl(status: FleetStatus): { onGateOpen(cluster: string): void } {
  const { rollout } = status;
  setHandler(
    pauseUpdate,
    (c) => {
      rollout.paused = { by: c.by.trim(), ...(c.reason ? { reason: c.reason } : {}), at: new Date().toISOString() };
      log.info('rollout paused: clusters running finish, no new one starts', { by: c.by, reason: c.reason });
      return 'paused: clusters running finish, no new one starts';
    },
    {
      validator: (c) => {
        needWho(c);
        if (rollout.paused) throw refuse(`already paused by ${rollout.paused.by} at ${rollout.paused.at}`);
        if (status.phase === 'done' || status.phase === 'failed' || status.phase === 'cancelled')
          throw refuse(`the upgrade has ended (${status.phase})`);
      },
    }
  );
  setHandler(
    resumeUpdate,
    (c) => {
      const was = rollout.paused;
      delete rollout.paused;
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

  const decideAhead = (a: AheadApproval, clusters: string[]) =>
    decideClusters(status, clusters, {
      approve: true,
      by: a.by,
      reason: a.reason ?? `approved ahead (${a.selector || 'all'})`,
    });

  setHandler(
    approveAheadUpdate,
    async (a) => {
      const approval = { selector: a.selector.trim(), by: a.by.trim(), ...(a.reason ? { reason: a.reason } : {}) };
      rollout.aheadApprovals = [...(rollout.aheadApprovals ?? []), approval];
      return decideAhead(
        approval,
        status.waiting().filter((c) => covers(approval, status.labelsOf(c)))
      );
    },
    {
      validator: (a) => {
        needWho(a);
        if (typeof a.selector !== 'string') throw refuse('an ahead approval needs a selector ("" for all)');
        try {
          if (a.selector.trim()) parseSelector(a.selector);
        } catch (err) {
          if (err instanceof SelectorError) throw refuse(err.message);
          throw err;
        }
      },
    }
  );

  return {
    /** A cluster reached its gate: an approval given ahead that covers it decides it now. */
    onGateOpen(cluster) {
      const a = aheadApprovalFor(status, cluster);
      if (a) void decideAhead(a, [cluster]);
    },
  };
}
