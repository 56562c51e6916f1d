/** Approving as an operator does while an e2e upgrade runs: every gate as it opens (`approve --all`). */
import type { Client, WorkflowHandle } from '@temporalio/client';
import { approve } from '../../scripts/commands/approve';
import type { UpgradeResult, UpgradeStatus } from '../../runbook/types';
import { waitForStatus } from '../workflow/harness';

const ended = (s: UpgradeStatus) => ['done', 'failed', 'cancelled'].includes(s.phase);

/** Approves each gate as it opens until `until` holds (default: the upgrade ended); returns that status. */
export async function approveUntil(
  client: Client,
  handle: WorkflowHandle,
  until: (s: UpgradeStatus) => boolean = ended,
  timeoutMs = 240_000
): Promise<UpgradeStatus> {
  for (;;) {
    const s = await waitForStatus(handle, (x) => x.pendingApprovals.length > 0 || until(x) || ended(x), timeoutMs);
    if (until(s) || (ended(s) && s.pendingApprovals.length === 0)) return s;
    await approve({ all: true, by: 'e2e', workflowId: handle.workflowId }, client).catch(() => undefined);
  }
}

/** Approves every gate until the upgrade ends; its result, or its failure's message. */
export async function finish(
  client: Client,
  handle: WorkflowHandle,
  timeoutMs?: number
): Promise<UpgradeResult | string> {
  await approveUntil(client, handle, ended, timeoutMs);
  return handle.result().catch((e: { cause?: Error }) => e.cause?.message ?? String(e)) as Promise<
    UpgradeResult | string
  >;
}
