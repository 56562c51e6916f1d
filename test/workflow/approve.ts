/**
 * Approvals as the CLI gives them, for workflow tests: each names the digest the gate (or, ahead,
 * the fleet) shows at that moment, read from the same queries `npm run approve` reads.
 */
import type { WorkflowHandle } from '@temporalio/client';
import type { UpgradeStatus } from '../../runbook/types';
import {
  approveAheadUpdate,
  decideAllUpdate,
  decideCrdUpdate,
  gateQuery,
  statusQuery,
  type DecideAllResult,
} from '../../workflows/messages';
import { waitForStatus } from './harness';

const gateDigests = (s: UpgradeStatus): Record<string, string> =>
  Object.fromEntries(
    s.workers.flatMap((w) => (w.state === 'waiting-approval' && w.gate ? [[w.cluster, w.gate.digest]] : []))
  );

/** approve --all: every gate waiting now, each with the digest status shows for it. */
export async function approveWaiting(handle: WorkflowHandle, by: string, reason?: string): Promise<DecideAllResult> {
  const digests = gateDigests(await handle.query(statusQuery));
  return handle.executeUpdate(decideAllUpdate, {
    args: [{ approve: true, by, ...(reason ? { reason } : {}), digests }],
  });
}

/** approve --ahead: once the plan exists, naming the fleet's CRD change digest. */
export async function approveAhead(
  handle: WorkflowHandle,
  selector: string,
  by: string,
  reason?: string
): Promise<DecideAllResult> {
  const s = await waitForStatus(handle, (x) => x.phase !== 'preflight' || x.rollout?.crdDigest !== undefined, 60_000);
  const digest = s.rollout?.crdDigest;
  return handle.executeUpdate(approveAheadUpdate, {
    args: [{ selector, by, ...(reason ? { reason } : {}), ...(digest ? { digest } : {}) }],
  });
}

/** approve --cluster: the digest the cluster's gate shows now. */
export async function approveGate(
  child: WorkflowHandle,
  cluster: string,
  by: string,
  reason?: string
): Promise<string> {
  const gate = await child.query(gateQuery);
  const digest = gate.gate?.digest;
  return child.executeUpdate(decideCrdUpdate, {
    args: [{ cluster, approve: true, by, ...(reason ? { reason } : {}), ...(digest ? { digest } : {}) }],
  });
}
