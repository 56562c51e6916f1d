/**
 * upgradeWorkerCluster: the runbook's worker-cluster procedure for one cluster. Back up the
 * skoala-init values, add and update the chart repo, upgrade skoala-init, wait for an operator to
 * approve the CRD re-apply, re-apply the CRDs in place, verify.
 */
import {
  ApplicationFailure,
  CancellationScope,
  condition,
  getExternalWorkflowHandle,
  isCancellation,
  log,
  patched,
  setCurrentDetails,
  setHandler,
  sleep,
  workflowInfo,
} from '@temporalio/workflow';
import type {
  Approval,
  ClusterPlan,
  ClusterResult,
  ClusterState,
  FailurePolicy,
  StepKind,
  Tuning,
} from '../runbook/types';
import { proxies } from './activities';
import {
  clusterProgressSignal,
  crdDecisionSignal,
  decideCrdUpdate,
  gateQuery,
  type ClusterProgress,
  type CrdDecision,
} from './messages';
import { errorMessage } from './errors';
import { fromRevisionOf, runSteps } from './run-steps';

export interface UpgradeWorkerClusterInput {
  upgradeId: string;
  plan: ClusterPlan;
  tuning?: Tuning;
  /** Unset in upgrades started before rollbacks existed: a failed cluster is left as it failed. */
  onFailure?: FailurePolicy;
  /** An approval given ahead that covers this cluster when the parent started it: the gate passes at once. */
  approvedAhead?: { by: string; reason?: string; selector: string };
}

/** Why a decision cannot be taken now, or undefined when it can. Shared by the update validator and the signal. */
function refusal(d: CrdDecision, cluster: string, waiting: boolean, decided: Approval | undefined): string | undefined {
  if (d.cluster !== cluster) return `this gate belongs to cluster ${cluster}, not ${d.cluster}`;
  if (!d.by?.trim()) return 'an approval must say who gives it (--by)';
  if (decided) return `cluster ${cluster} was already ${decided.approved ? 'approved' : 'rejected'} by ${decided.by}`;
  if (!waiting) return `cluster ${cluster} is not waiting for approval yet`;
  return undefined;
}

/**
 * What the CRD step would do (server-side dry run, without taking fields from other managers):
 * the approver sees conflicts and downgrades before deciding. A preview that fails does not hold
 * the gate: the approver is told it is missing.
 */
async function previewCrdStep(plan: ClusterPlan, acts: ReturnType<typeof proxies>): Promise<string> {
  const step = plan.steps.find((s) => s.kind === 'reapplyCrds');
  if (step?.kind !== 'reapplyCrds') return '';
  try {
    const { summary } = await acts.quick.previewCrdChanges.executeWithOptions(
      {
        ...acts.options.quick,
        ...(plan.cluster.taskQueue ? { taskQueue: plan.cluster.taskQueue } : {}),
        retry: { ...acts.options.quick.retry, maximumAttempts: 2 },
        summary: `preview the CRD step on ${plan.cluster.name}`,
      },
      [{ cluster: plan.cluster, step }]
    );
    return `CRD preview: ${summary.text}`;
  } catch (err) {
    if (isCancellation(err)) throw err;
    return `CRD preview failed (decide without it, or reject): ${errorMessage(err)}`;
  }
}

export async function upgradeWorkerCluster(input: UpgradeWorkerClusterInput): Promise<ClusterResult> {
  const { plan } = input;
  const cluster = plan.cluster.name;
  const startedAt = new Date().toISOString();
  const parent = workflowInfo().parent;
  let state: ClusterState = 'running';
  let step: StepKind | undefined;
  let waiting = false;
  let decision: Approval | undefined;
  let decidedBy: string | undefined; // the approve-all request that decided, if one did
  let preview: string | undefined; // what the CRD step would change, for the approver

  let seq = 0;
  /**
   * Tells the parent about a state change. Retried: the parent's view of who waits must not miss a
   * gate; a parent that stays unreachable (closed) only loses its status view, never the upgrade.
   */
  const report = async (p: Omit<ClusterProgress, 'cluster' | 'seq'>): Promise<void> => {
    if (!parent) return;
    const signal = { cluster, seq: ++seq, ...p };
    for (let attempt = 1; ; attempt++) {
      try {
        await CancellationScope.nonCancellable(() =>
          getExternalWorkflowHandle(parent.workflowId).signal(clusterProgressSignal, signal)
        );
        return;
      } catch (err) {
        if (attempt >= 5) {
          log.warn('could not report progress to the parent', { error: String(err) });
          return;
        }
        await CancellationScope.nonCancellable(() => sleep(attempt * 1000));
      }
    }
  };

  const decide = (d: CrdDecision): string => {
    decision = { approved: d.approve, by: d.by, reason: d.reason, at: new Date().toISOString() };
    decidedBy = d.requestId;
    log.info(`CRD step ${d.approve ? 'approved' : 'rejected'}`, { cluster, by: d.by, reason: d.reason });
    return `${cluster}: CRD step ${d.approve ? 'approved' : 'rejected'} by ${d.by}`;
  };
  setHandler(decideCrdUpdate, decide, {
    validator: (d) => {
      const why = refusal(d, cluster, waiting, decision);
      if (why) throw ApplicationFailure.nonRetryable(why, 'ApprovalRefused');
    },
  });
  setHandler(crdDecisionSignal, async (d) => {
    const why = refusal(d, cluster, waiting, decision);
    if (!why) return void decide(d); // the gate reports it, with the ack, when it opens
    log.warn(`ignored CRD decision: ${why}`, { cluster, by: d.by });
    if (d.requestId) await report({ state, ack: { requestId: d.requestId, decided: false, reason: why } });
  });
  setHandler(gateQuery, () => ({ cluster, state, step, ...(preview ? { preview } : {}) }));

  const acts = proxies(input.tuning);
  try {
    const outcome = await runSteps(plan, acts, {
      upgradeId: input.upgradeId,
      rollbackOnFailure: input.onFailure === 'rollback',
      onStep: (kind) => {
        step = kind;
        setCurrentDetails(`${cluster}: ${kind}`);
      },
      awaitApproval: async () => {
        const ahead = input.approvedAhead;
        if (ahead) {
          // Decided before the gate opened: recorded like any approval, nobody waits, the parent is not signalled.
          const reason = ahead.reason ?? `approved ahead (${ahead.selector || 'every cluster'})`;
          decision = { approved: true, by: ahead.by, reason, at: new Date().toISOString() };
          log.info('CRD step approved ahead', { cluster, by: ahead.by, selector: ahead.selector });
          return decision;
        }
        // Added after v2 histories were recorded: upgrades already waiting replay without it.
        if (patched('crd-preview-at-gate')) preview = await previewCrdStep(plan, acts);
        waiting = true;
        state = 'waiting-approval';
        setCurrentDetails(
          `${cluster}: waiting for approval of the CRD re-apply (npm run approve -- --cluster ${cluster} --by NAME)${preview ? `\n\n${preview}` : ''}`
        );
        await report({ state });
        const every = input.tuning?.approvalReminder ?? '30 minutes';
        // No deadline: a person decides. The reminder keeps the wait visible in logs.
        while (!(await condition(() => decision !== undefined, every))) {
          log.warn(`still waiting for approval of the CRD re-apply`, { cluster, since: startedAt });
        }
        waiting = false;
        state = decision?.approved ? 'running' : 'rejected';
        await report({ state, ...(decidedBy ? { ack: { requestId: decidedBy, decided: true } } : {}) });
        return decision as Approval;
      },
    });
    state = outcome.rolledBack ? 'rolled-back' : outcome.rejected ? 'rejected' : 'upgraded';
    return {
      cluster,
      role: 'worker',
      outcome: state,
      ...(outcome.rolledBack
        ? { error: `${outcome.rolledBack.cause}; rolled back to revision ${outcome.rolledBack.toRevision}` }
        : {}),
      fromRevision: fromRevisionOf(plan),
      from: plan.from,
      to: plan.to,
      approval: outcome.approval,
      backup: outcome.backup,
      crdsReapplied: outcome.crdsReapplied,
      startedAt,
      finishedAt: new Date().toISOString(),
    };
  } catch (err) {
    if (isCancellation(err)) {
      state = 'cancelled';
      throw err; // the child ends CANCELLED; the parent names the cluster `cancelled`
    }
    state = 'failed';
    const message = errorMessage(err);
    throw ApplicationFailure.nonRetryable(
      `${cluster}: ${step ?? 'upgrade'} failed: ${message}`,
      'ClusterUpgradeFailed'
    );
  }
}
