/**
 * `npm run retry -- --cluster NAME --by NAME [--reason TEXT]` and
 * `npm run skip -- --cluster NAME --by NAME --reason TEXT`: act on one worker cluster that failed
 * (or, for skip, has not started) without restarting the upgrade. Updates on the upgrade workflow:
 * a refusal names what the cluster is doing; an upgrade that has ended says so.
 */
import type { Client } from '@temporalio/client';
import { CLUSTER_NAME } from '../../runbook/fleet';
import { retryClusterUpdate, skipClusterUpdate } from '../../workflows/messages';
import { ExitError } from '../lib/errors';
import { resolveUpgradeId } from '../lib/temporal';
import { sendUpdate } from '../lib/send-update';
import { refusedUpdate } from '../lib/upgrade-state';

export interface ClusterCommandOptions {
  cluster?: string;
  by?: string;
  reason?: string;
  workflowId?: string;
}

export function validateClusterCommand(action: 'retry' | 'skip', opts: ClusterCommandOptions): void {
  if (opts.cluster === undefined) throw new ExitError(`${action} needs --cluster NAME`);
  if (!CLUSTER_NAME.test(opts.cluster))
    throw new ExitError(`--cluster "${opts.cluster}" is not a cluster name (lowercase letters, digits, "-")`);
  if (!opts.by?.trim()) throw new ExitError(`--by NAME is required: ${action} records who did it`);
  if (action === 'skip' && !opts.reason?.trim())
    throw new ExitError('--reason TEXT is required: status shows why a cluster was skipped');
}

export async function retryOrSkip(
  action: 'retry' | 'skip',
  opts: ClusterCommandOptions,
  client: Client
): Promise<{ workflowId: string; cluster: string; answer: string }> {
  validateClusterCommand(action, opts);
  const workflowId = await resolveUpgradeId(client, opts.workflowId);
  const cluster = opts.cluster as string;
  const handle = client.workflow.getHandle(workflowId);
  const answer = await sendUpdate(client, handle, action === 'retry' ? retryClusterUpdate : skipClusterUpdate, [
    { cluster, by: (opts.by as string).trim(), ...(opts.reason ? { reason: opts.reason.trim() } : {}) },
  ]).catch(refusedUpdate(client, workflowId, `; start the upgrade again to ${action} ${cluster}`));
  return { workflowId, cluster, answer };
}
