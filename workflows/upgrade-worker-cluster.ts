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
  setCurrentDetails,
  setHandler,
  sleep,
  workflowInfo,
} from '@temporalio/workflow';
import type { Approval, ClusterPlan, ClusterResult, ClusterState, StepKind, Tuning } from '../runbook/types';
import { proxies } from './activities';
import {
  clusterProgressSignal,
  crdDecisionSignal,
  decideCrdUpdate,
  gateQuery,
  type ClusterProgress,
  type CrdDecision,
} from './messages';
import { runSteps } from './run-steps';

export interface UpgradeWorkerClusterInput {
  upgradeId: string;
  plan: ClusterPlan;
  tuning?: Tuning;
}

/** Why a decision cannot be taken now, or undefined when it can. Shared by the update validator and the signal. */
function refusal(d: CrdDecision, cluster: string, waiting: boolean, decided: Approval | undefined): string | undefined {
  if (d.cluster !== cluster) return `this gate belongs to cluster ${cluster}, not ${d.cluster}`;
  if (!d.by?.trim()) return 'an approval must say who gives it (--by)';
  if (decided) return `cluster ${cluster} was already ${decided.approved ? 'approved' : 'rejected'} by ${decided.by}`;
  if (!waiting) return `cluster ${cluster} is not waiting for approval yet`;
  return undefined;
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
  setHandler(gateQuery, () => ({ cluster, state, step }));

  const acts = proxies(input.tuning);
  try {
    const outcome = await runSteps(plan, acts, {
      upgradeId: input.upgradeId,
      onStep: (kind) => {
        step = kind;
        setCurrentDetails(`${cluster}: ${kind}`);
      },
      awaitApproval: async () => {
        waiting = true;
        state = 'waiting-approval';
        setCurrentDetails(
          `${cluster}: waiting for approval of the CRD re-apply (npm run approve -- --cluster ${cluster} --by NAME)`
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
    state = outcome.rejected ? 'rejected' : 'upgraded';
    return {
      cluster,
      role: 'worker',
      outcome: state,
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
    const message = err instanceof Error ? (err.cause instanceof Error ? err.cause.message : err.message) : String(err);
    throw ApplicationFailure.nonRetryable(
      `${cluster}: ${step ?? 'upgrade'} failed: ${message}`,
      'ClusterUpgradeFailed'
    );
  }
}
