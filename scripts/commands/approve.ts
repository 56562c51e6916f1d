/**
 * `npm run approve -- --cluster NAME | --all [--reject] --by NAME [--reason TEXT] [--digest D]`:
 * decides CRD gates. An approval names the digest of what it approves: the one given with
 * --digest (what the person saw earlier), or else the one shown with the preview in this call's
 * output. A refused decision (not waiting, wrong cluster, another digest, the approver policy)
 * comes back at once as an error.
 */
import { WorkflowNotFoundError, WorkflowUpdateFailedError, type Client } from '@temporalio/client';
import { CLUSTER_NAME } from '../../runbook/fleet';
import { parseSelector, SelectorError } from '../../runbook/selector';
import { approveAheadUpdate, decideAllUpdate, decideCrdUpdate, gateQuery } from '../../workflows/messages';
import { ExitError } from '../lib/errors';
import { resolveUpgradeId } from '../lib/temporal';
import { sendUpdate } from '../lib/send-update';
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
  /** The digest the approver saw (`sha256:...` or its first 12 hex digits). */
  digest?: string;
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
  /** What was approved: per cluster (or `fleet` for --ahead), its digest and preview. */
  approvedWhat: { cluster: string; digest: string; preview?: string; changes?: string[] }[];
  /** The gate's answer (e.g. "approval 1 of 2 recorded"). */
  answer?: string;
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
  if (opts.digest !== undefined && !/^(sha256:)?[0-9a-f]{12,64}$/i.test(opts.digest.trim()))
    throw new ExitError(`--digest "${opts.digest}" must be sha256:<hex> or at least its first 12 hex digits`);
  if (opts.digest !== undefined && opts.reject)
    throw new ExitError('--digest names what is approved: a rejection needs none');
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
  const given = opts.digest?.trim();
  const handle = client.workflow.getHandle(workflowId);
  if (opts.ahead) {
    // Recorded on the upgrade: gates waiting now are decided at once, the others when they open.
    const status = await plannedStatus(client, workflowId);
    const fleet = status.rollout?.crdDigest;
    const digest = given ?? fleet;
    const { decided, notDecided } = await sendUpdate(client, handle, approveAheadUpdate, [
      {
        selector: opts.all ? '' : (opts.select as string).trim(),
        by,
        reason: opts.reason,
        ...(digest ? { digest } : {}),
      },
    ]).catch(refused);
    return {
      workflowId,
      approved: true,
      clusters: decided,
      notDecided,
      ahead: opts.all ? 'all' : opts.select,
      approvedWhat: fleet ? [{ cluster: 'fleet', digest: fleet, preview: status.rollout?.crdChange }] : [],
    };
  }
  if (opts.all) {
    // Each waiting cluster's digest as `status` shows it now: what this call prints and approves.
    const status = await runningStatus(client, workflowId);
    const gates = status.workers.filter((w) => w.state === 'waiting-approval');
    const digests = Object.fromEntries(gates.flatMap((w) => (w.gate ? [[w.cluster, w.gate.digest]] : [])));
    if (given) for (const c of Object.keys(digests)) digests[c] = given;
    const { decided, notDecided } = await sendUpdate(client, handle, decideAllUpdate, [
      { approve: approved, by, reason: opts.reason, ...(approved ? { digests } : {}) },
    ]).catch(refused);
    return {
      workflowId,
      approved,
      clusters: decided,
      notDecided,
      approvedWhat: approved
        ? gates.flatMap((w) => (w.gate ? [{ cluster: w.cluster, digest: w.gate.digest }] : []))
        : [],
    };
  }
  const cluster = opts.cluster as string;
  const status = await runningStatus(client, workflowId);
  const workers = status.workers.map((w) => w.cluster);
  if (!workers.includes(cluster))
    throw new ExitError(`cluster ${cluster} is not a worker cluster of ${workflowId} (it has: ${workers.join(', ')})`);
  const child = client.workflow.getHandle(`${workflowId}/${cluster}`);
  const notStarted = (err: unknown): never => {
    if (err instanceof WorkflowNotFoundError) {
      const w = status.workers.find((x) => x.cluster === cluster);
      throw new ExitError(
        `refused: cluster ${cluster} is not waiting for approval: ${w?.state === 'pending' ? `its upgrade has not started${w.waitingFor ? ` (${w.waitingFor})` : ''}` : `it is ${w?.state}${w?.approval ? ` (${w.approval.approved ? 'approved' : 'rejected'} by ${w.approval.by})` : ''}`}`
      );
    }
    throw err;
  };
  // What the gate shows now: the approval names it, unless the person gave the digest they saw before.
  const gate = approved ? await child.query(gateQuery).catch(notStarted) : undefined;
  const digest = given ?? gate?.gate?.digest;
  const answer = await sendUpdate(client, child, decideCrdUpdate, [
    { cluster, approve: approved, by, reason: opts.reason, ...(digest ? { digest } : {}) },
  ]).catch((err: unknown) => refused(notStartedOr(err, notStarted)));
  return {
    workflowId,
    approved,
    clusters: [cluster],
    notDecided: [],
    approvedWhat: digest
      ? [
          {
            cluster,
            digest,
            ...(gate?.preview ? { preview: gate.preview } : {}),
            ...(gate?.changes ? { changes: gate.changes } : {}),
          },
        ]
      : [],
    answer,
  };
}

const notStartedOr = (err: unknown, notStarted: (err: unknown) => never): unknown => {
  if (err instanceof WorkflowNotFoundError) notStarted(err);
  return err;
};

/** The status once the plan is made (a few seconds after the start): an approval ahead names the plan's CRD change. */
async function plannedStatus(client: Client, workflowId: string, timeoutMs = 60_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const status = await runningStatus(client, workflowId);
    if (status.rollout?.crdDigest || status.phase !== 'preflight' || Date.now() > deadline) return status;
    await new Promise((r) => setTimeout(r, 500));
  }
}

async function runningStatus(client: Client, workflowId: string) {
  const state = await readUpgrade(client, workflowId);
  if (state.kind !== 'running')
    throw new ExitError(
      `${workflowId} is not running (${state.kind === 'completed' ? 'it finished' : state.kind}): nothing to approve`
    );
  return state.status;
}
