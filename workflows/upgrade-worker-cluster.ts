/**
 * upgradeWorkerCluster: the runbook's worker-cluster procedure for one cluster. Back up the
 * skoala-init values, add and update the chart repo, upgrade skoala-init, wait for an operator to
 * approve the CRD re-apply, re-apply the CRDs in place, verify.
 */
import {
  ApplicationFailure,
  CancellationScope,
  getExternalWorkflowHandle,
  isCancellation,
  log,
  setCurrentDetails,
  setHandler,
  sleep,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import { SKOALA_PHASE } from '../runbook/search-attributes';
import { hasSearchAttributes } from './fleet-view';
import type { GatePolicy } from '../runbook/approval-policy';
import type { ClusterPlan, ClusterResult, ClusterState, FailurePolicy, StepKind, Tuning } from '../runbook/types';
import { proxies } from './activities';
import { crdGate, type AheadGrant } from './crd-gate';
import { clusterProgressSignal, gateQuery, type ClusterProgress } from './messages';
import { errorMessage } from './errors';
import { notifier, type NotifyContext } from './notify';
import { fromRevisionOf, runSteps } from './run-steps';

export interface UpgradeWorkerClusterInput {
  upgradeId: string;
  plan: ClusterPlan;
  tuning?: Tuning;
  /** Unset in upgrades started before rollbacks existed: a failed cluster is left as it failed. */
  onFailure?: FailurePolicy;
  /** An approval given ahead that covers this cluster when the parent started it: the gate passes at once. */
  approvedAhead?: AheadGrant;
  /** The fleet's approver policy for this cluster (absent in upgrades started before it existed: one approval, no deadline). */
  policy?: GatePolicy;
  /** The fleet's webhook, when it has one. */
  notify?: NotifyContext;
}

export async function upgradeWorkerCluster(input: UpgradeWorkerClusterInput): Promise<ClusterResult> {
  const { plan } = input;
  const cluster = plan.cluster.name;
  const startedAt = new Date().toISOString();
  const parent = workflowInfo().parent;
  let step: StepKind | undefined;
  // SkoalaPhase follows the cluster's state when the parent started this child with the attributes.
  const indexed = hasSearchAttributes();
  let currentState: ClusterState = 'running';
  const setState = (s: ClusterState) => {
    if (indexed && s !== currentState) upsertSearchAttributes([{ key: SKOALA_PHASE, value: s }]);
    currentState = s;
    // Where it ended, not its last step (the UI shows current details after the run too).
    if (s !== 'running' && s !== 'waiting-approval') setCurrentDetails(`**${cluster}**: ${s}`);
  };

  let seq = 0;
  /**
   * Tells the parent about a state change. Retried: the parent's view of who waits must not miss a
   * gate; a parent that stays unreachable (closed) only loses its status view, never the upgrade.
   */
  const report = async (p: Omit<ClusterProgress, 'cluster' | 'seq'>): Promise<void> => {
    if (!parent) return;
    const signal = { cluster, seq: ++seq, run: workflowInfo().runId, ...p };
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
        await CancellationScope.nonCancellable(() =>
          sleep(attempt * 1000, { summary: 'report progress to the parent again' })
        );
      }
    }
  };

  const acts = proxies(input.tuning);
  const notify = notifier(input.notify);
  const gate = crdGate({
    plan,
    acts,
    policy: input.policy ?? { distinct: 1 },
    ...(input.approvedAhead ? { approvedAhead: input.approvedAhead } : {}),
    ...(input.tuning?.approvalReminder ? { reminder: input.tuning.approvalReminder } : {}),
    notify,
    report,
    state: () => currentState,
    setState,
  });
  setHandler(gateQuery, () => ({ cluster, state: currentState, step, ...gate.query() }));
  try {
    const outcome = await runSteps(plan, acts, {
      upgradeId: input.upgradeId,
      rollbackOnFailure: input.onFailure === 'rollback',
      onStep: (kind) => {
        step = kind;
        setCurrentDetails(`${cluster}: ${kind}`);
      },
      awaitApproval: () => gate.awaitDecision(),
    });
    const state = outcome.rolledBack ? 'rolled-back' : outcome.rejected ? 'rejected' : 'upgraded';
    setState(state);
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
      ...(step ? { step } : {}),
      startedAt,
      finishedAt: new Date().toISOString(),
    };
  } catch (err) {
    if (isCancellation(err)) {
      setState('cancelled');
      throw err; // the child ends CANCELLED; the parent names the cluster `cancelled`
    }
    setState('failed');
    const message = errorMessage(err);
    // The step it failed at travels in the details: the parent's final table names it.
    throw ApplicationFailure.create({
      message: `${cluster}: ${step ?? 'upgrade'} failed: ${message}`,
      type: 'ClusterUpgradeFailed',
      nonRetryable: true,
      details: step ? [{ step }] : [],
    });
  } finally {
    await notify.flush();
  }
}
