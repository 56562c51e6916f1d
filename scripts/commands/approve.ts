/**
 * `npm run approve -- --cluster NAME | --all [--reject] --by NAME [--reason TEXT]`: decides CRD
 * gates. A refused decision (not waiting, wrong cluster) comes back at once as an error.
 */
import { WorkflowNotFoundError, WorkflowUpdateFailedError, type Client } from '@temporalio/client';
import { CLUSTER_NAME } from '../../runbook/fleet';
import { parseSelector, SelectorError } from '../../runbook/selector';
import { approveAheadUpdate, decideAllUpdate, decideCrdUpdate } from '../../workflows/messages';
import { ExitError } from '../lib/errors';
import { resolveUpgradeId } from '../lib/temporal';
import { readUpgrade } from '../lib/upgrade-state';

export interface ApproveOptions {
  cluster?: string;
  all?: boolean;
  /** Approve ahead of the gates: with --select (a label selector) or --all. */
  ahead?: boolean;
  select?: string;
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
  /** With --ahead: what the approval covers from now on (`all` or the selector). */
  ahead?: string;
}

export function validateApprove(opts: ApproveOptions): void {
  if (opts.ahead) {
    if (opts.reject) throw new ExitError('--ahead approves: a rejection is given at the gate');
    if (opts.cluster !== undefined || !!opts.select === !!opts.all)
      throw new ExitError("--ahead takes --select 'key=value,...' or --all");
    if (opts.select !== undefined) {
      try {
        parseSelector(opts.select);
      } catch (err) {
        if (err instanceof SelectorError) throw new ExitError(`--select: ${err.message}`);
        throw err;
      }
    }
  } else if (opts.select !== undefined) throw new ExitError('--select decides gates ahead: add --ahead');
  else if (!!opts.cluster === !!opts.all) throw new ExitError('name one cluster with --cluster NAME, or pass --all');
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
  if (opts.ahead) {
    // Recorded on the upgrade: gates waiting now are decided at once, the others when they open.
    const { decided, notDecided } = await client.workflow
      .getHandle(workflowId)
      .executeUpdate(approveAheadUpdate, {
        args: [{ selector: opts.all ? '' : (opts.select as string).trim(), by, reason: opts.reason }],
      })
      .catch(refused);
    return { workflowId, approved: true, clusters: decided, notDecided, ahead: opts.all ? 'all' : opts.select };
  }
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
