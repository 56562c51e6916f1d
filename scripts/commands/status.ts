/** `npm run status [-- --workflow-id ID]`: phase, each cluster's step, pending approvals, failures. */
import type { Client } from '@temporalio/client';
import { resolveUpgradeId } from '../lib/temporal';
import { readUpgrade, type UpgradeState } from '../lib/upgrade-state';

export interface StatusOptions {
  workflowId?: string;
}

export async function status(
  opts: StatusOptions,
  client: Client
): Promise<{ workflowId: string; state: UpgradeState }> {
  const workflowId = await resolveUpgradeId(client, opts.workflowId);
  return { workflowId, state: await readUpgrade(client, workflowId) };
}
