/**
 * `npm run approve -- --cluster NAME | --all [--reject] --by NAME [--reason TEXT]`: decides CRD
 * gates. A refused decision (not waiting, wrong cluster) comes back at once as an error.
 */
import { WorkflowNotFoundError, WorkflowUpdateFailedError, type Client } from '@temporalio/client';
import { CLUSTER_NAME } from '../../runbook/fleet';
import { decideAllUpdate, decideCrdUpdate } from '../../workflows/messages';
import { ExitError } from '../lib/errors';
import { resolveUpgradeId } from '../lib/temporal';
import { readUpgrade } from '../lib/upgrade-state';

export interface ApproveOptions {
  cluster?: string;
  all?: boolean;
  reject?: boolean;
  by?: string;
  reason?: string;
  workflowId?: string;
}

export interface ApproveResult {
  workflowId: string;
  approved: boolean;
  /** The clusters this call decided (each confirmed by its own workflow). */
  clusters: string[];
  /** With --all: the waiting clusters this call could not decide, and why. */
  notDecided: { cluster: string; reason: string }[];
}

export function validateApprove(opts: ApproveOptions): void {
  if (!!opts.cluster === !!opts.all) throw new ExitError('name one cluster with --cluster NAME, or pass --all');
  if (!opts.by?.trim()) throw new ExitError('--by NAME is required: approvals record who gave them');
  if (opts.cluster !== undefined && !CLUSTER_NAME.test(opts.cluster)) {
    throw new ExitError(`--cluster "${opts.cluster}" is not a cluster name (lowercase letters, digits, "-")`);
  }
}

const refused = (err: unknown): never => {
  if (err instanceof WorkflowUpdateFailedError) throw new ExitError(`refused: ${err.cause?.message ?? err.message}`);
  throw err;
};

export async function approve(opts: ApproveOptions, client: Client): Promise<ApproveResult> {
  validateApprove(opts);
  const workflowId = await resolveUpgradeId(client, opts.workflowId);
  const approved = !opts.reject;
  const by = (opts.by as string).trim();
  if (opts.all) {
    const { decided, notDecided } = await client.workflow
      .getHandle(workflowId)
      .executeUpdate(decideAllUpdate, { args: [{ approve: approved, by, reason: opts.reason }] })
      .catch(refused);
    return { workflowId, approved, clusters: decided, notDecided };
  }
  const cluster = opts.cluster as string;
  const state = await readUpgrade(client, workflowId);
  if (state.kind !== 'running') throw new ExitError(`${workflowId} is not running (${state.kind}): nothing to approve`);
  const workers = state.status.workers.map((w) => w.cluster);
  if (!workers.includes(cluster))
    throw new ExitError(`cluster ${cluster} is not a worker cluster of ${workflowId} (it has: ${workers.join(', ')})`);
  await client.workflow
    .getHandle(`${workflowId}/${cluster}`)
    .executeUpdate(decideCrdUpdate, { args: [{ cluster, approve: approved, by, reason: opts.reason }] })
    .catch((err: unknown) => {
      if (err instanceof WorkflowNotFoundError)
        throw new ExitError(`refused: cluster ${cluster} is not waiting for approval (its upgrade has not started)`);
      return refused(err);
    });
  return { workflowId, approved, clusters: [cluster], notDecided: [] };
}
