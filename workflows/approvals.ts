/**
 * Approve-all on the parent. Workflows can signal other workflows but not send them updates, so the
 * parent signals each waiting child with a request ID and waits for each child's answer: the reply
 * lists only the clusters this call decided, and why the others were not (closed, not waiting,
 * already decided). A child that closed in between never fails the parent.
 */
import { ApplicationFailure, condition, getExternalWorkflowHandle, log, setHandler, uuid4 } from '@temporalio/workflow';
import { approverRefusal } from '../runbook/approval-policy';
import { approveAllAnswer } from '../runbook/gate';
import type { UpgradeRequest } from '../runbook/types';
import type { FleetStatus } from './fleet-status';
import { childId } from './child-id';
import {
  crdDecisionSignal,
  decideAllSignal,
  decideAllUpdate,
  type CrdDecisionForAll,
  type DecideAllResult,
} from './messages';

/** How long approve-all waits for the children to confirm. */
const ANSWER_TIMEOUT = '1 minute';

/** Decides the gates of `targets` (clusters waiting now): signals each child, collects their answers. */
export async function decideClusters(
  status: FleetStatus,
  targets: string[],
  d: CrdDecisionForAll
): Promise<DecideAllResult> {
  const digestOf = (cluster: string) => (d.approve ? d.digests?.[cluster] : undefined);
  const requestId = uuid4();
  const answers = status.expectAcks(requestId);
  const closed: string[] = [];
  const sent = await Promise.all(
    targets.map((cluster) =>
      getExternalWorkflowHandle(childId(cluster))
        .signal(crdDecisionSignal, {
          cluster,
          approve: d.approve,
          by: d.by,
          reason: d.reason,
          requestId,
          ...(digestOf(cluster) ? { digest: digestOf(cluster) } : {}),
        })
        .then(
          () => cluster,
          () => {
            closed.push(cluster);
            return undefined;
          }
        )
    )
  );
  const asked = sent.filter((c): c is string => c !== undefined);
  await condition(() => asked.every((c) => answers.has(c)), ANSWER_TIMEOUT, {
    summary: `answers of ${asked.length} cluster(s) to an approve-all`,
  });
  status.forgetAcks(requestId);
  // Every cluster targeted is in the answer: decided, or not and why (runbook/gate.ts).
  const { decided, notDecided } = approveAllAnswer(targets, closed, answers);
  log.info(`CRD step ${d.approve ? 'approved' : 'rejected'} for waiting clusters`, {
    decided,
    notDecided,
    by: d.by,
  });
  return { decided, notDecided };
}

/** The fleet-wide part of the approver policy (who may decide at all), checked before any child is asked. */
export function fleetApproverRefusal(request: UpgradeRequest, by: string, approve: boolean): string | undefined {
  const policy = request.fleet.approvals;
  const starter = policy?.notStarter ? request.options.startedBy : undefined;
  return approverRefusal(
    { ...(policy?.approvers ? { approvers: policy.approvers } : {}), ...(starter ? { starter } : {}) },
    by,
    approve
  );
}

export function handleApprovals(status: FleetStatus, request: UpgradeRequest): void {
  const decideAll = (d: CrdDecisionForAll): Promise<DecideAllResult> => decideClusters(status, status.waiting(), d);
  setHandler(decideAllUpdate, decideAll, {
    validator: (d) => {
      if (!d.by?.trim())
        throw ApplicationFailure.nonRetryable('an approval must say who gives it (--by)', 'ApprovalRefused');
      const why = fleetApproverRefusal(request, d.by, d.approve);
      if (why) throw ApplicationFailure.nonRetryable(why, 'ApprovalRefused');
      if (status.waiting().length === 0)
        throw ApplicationFailure.nonRetryable(
          `no cluster is waiting for approval (${status.phase === 'done' ? 'the upgrade has finished' : `phase: ${status.phase}`})`,
          'ApprovalRefused'
        );
    },
  });
  setHandler(decideAllSignal, async (d) => {
    if (d.by?.trim()) await decideAll(d);
  });
}
