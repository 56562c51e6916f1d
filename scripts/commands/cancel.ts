/**
 * `npm run cancel [-- --workflow-id ID] [--no-wait]`: cancels the upgrade the way
 * the Temporal UI and `temporal workflow cancel` do. A running helm upgrade finishes (no release is
 * left pending by us), no new step or cluster starts, and every cluster ends in a named state.
 */
import { WorkflowFailedError, type Client } from '@temporalio/client';
import type { UpgradeStatus } from '../../runbook/types';
import { statusQuery } from '../../workflows/messages';
import { resolveUpgradeId } from '../lib/temporal';

export interface CancelOptions {
  workflowId?: string;
  /** Commander's `--no-wait` sets this false. */
  wait?: boolean;
}

export interface CancelResult {
  workflowId: string;
  /** The workflow's status once the cancel took effect (or RUNNING with --no-wait). */
  status: string;
  final?: UpgradeStatus;
}

export async function cancel(opts: CancelOptions, client: Client): Promise<CancelResult> {
  const workflowId = await resolveUpgradeId(client, opts.workflowId);
  const handle = client.workflow.getHandle(workflowId);
  await handle.cancel();
  if (opts.wait === false) return { workflowId, status: (await handle.describe()).status.name };
  // A running helm upgrade is allowed to finish: this can take as long as that helm does.
  await handle.result().catch((err: unknown) => {
    if (!(err instanceof WorkflowFailedError)) throw err;
  });
  const status = (await handle.describe()).status.name;
  const final = await handle.query(statusQuery).catch(() => undefined);
  return { workflowId, status, ...(final ? { final } : {}) };
}
