/**
 * Every message the upgrade workflows accept, defined once and imported by the CLI too.
 */
import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';
import type { ClusterState, StepKind, UpgradeStatus } from '../runbook/types';

/** A decision at a worker cluster's CRD gate. `cluster` must name the cluster the gate belongs to. */
export interface CrdDecision {
  cluster: string;
  approve: boolean;
  by: string;
  reason?: string;
  /**
   * The digest of the CRD change the approver saw (`sha256:...`, or its first 12 hex digits): an
   * approval whose digest is not the gate's is refused with the gate's preview. Rejections need none.
   */
  digest?: string;
  /** Set by the parent's approve-all: the child answers whether this decision took effect. */
  requestId?: string;
}

export interface CrdDecisionForAll {
  approve: boolean;
  by: string;
  reason?: string;
  /** Per cluster, the digest the approver saw (approvals only; a cluster without one is not approved). */
  digests?: Record<string, string>;
}

/** What one approve-all call did: only the clusters it decided, and why the others were not. */
export interface DecideAllResult {
  decided: string[];
  notDecided: { cluster: string; reason: string }[];
}

/**
 * Child -> parent, sent only when the cluster's state changes (waiting at the gate, decided), so the
 * parent's history grows by a few events per cluster, not one per step.
 */
export interface ClusterProgress {
  cluster: string;
  /** Signals may arrive out of order: the parent keeps the highest, per run of the child. */
  seq: number;
  /**
   * The child run that sent it: a retried cluster's new run counts from 1 again, and the parent must
   * neither drop its signals nor take a late one from the finished run. Absent from older children.
   */
  run?: string;
  state: ClusterState;
  /** The answer to an approve-all decision that carried a requestId. */
  ack?: { requestId: string; decided: boolean; reason?: string };
  /** The open gate: what it asks to approve, and the approvals it has so far. */
  gate?: GateView;
}

/** An open CRD gate as the parent and the CLI show it. */
export interface GateView {
  digest: string;
  since: string;
  /** Distinct approvers the gate needs, and those it has (more than one approver only). */
  needs?: number;
  approvedBy?: string[];
}

/** Parent: the whole upgrade's state (also answered after the upgrade closed, cancelled included). */
export const statusQuery = defineQuery<UpgradeStatus>('status');

/**
 * Child: approve or reject its CRD step. This is an update as opposed to a signal because the
 * caller must learn at once when its decision is refused (wrong cluster, gate not reached yet).
 */
export const decideCrdUpdate = defineUpdate<string, [CrdDecision]>('decideCrd');

/** Child: the same decision as a signal, for the Temporal UI and for the parent's approve-all. */
export const crdDecisionSignal = defineSignal<[CrdDecision]>('crdDecision');

/**
 * Parent: decide every gate that is waiting now. Answers with the clusters this call decided (each
 * child confirms) and the ones it could not decide (closed, not waiting, already decided).
 */
export const decideAllUpdate = defineUpdate<DecideAllResult, [CrdDecisionForAll]>('decideAll');

/** Parent: the same as a signal, for the Temporal UI. */
export const decideAllSignal = defineSignal<[CrdDecisionForAll]>('decideAllSignal');

/** Child -> parent progress. */
export const clusterProgressSignal = defineSignal<[ClusterProgress]>('clusterProgress');

/** Child: what it does now (also queryable from the `temporal` CLI). */
export const gateQuery = defineQuery<{
  cluster: string;
  state: ClusterState;
  step?: StepKind;
  preview?: string;
  /** What the release upgrade changed on the cluster (compact manifest and values diff, redacted). */
  changes?: string[];
  gate?: GateView;
}>('gate');

/** Who steers the rollout, and why: recorded in history (the update's input) and in `status`. */
export interface RolloutCommand {
  by: string;
  reason?: string;
}

/** Parent: start no new worker cluster (those running finish). Refused when already paused. */
export const pauseUpdate = defineUpdate<string, [RolloutCommand]>('pause');

/** Parent: start worker clusters again. Refused when not paused. */
export const resumeUpdate = defineUpdate<string, [RolloutCommand]>('resume');

/**
 * Parent: approve the CRD step ahead of time, for the clusters a label selector matches (or all,
 * with `selector: ''`): those waiting now are decided at once, the others when they reach the gate.
 */
export interface AheadApproval extends RolloutCommand {
  selector: string;
  /** The fleet's CRD change digest the approver saw (`status` and `plan` show it); refused when it is not the upgrade's. */
  digest?: string;
}
export const approveAheadUpdate = defineUpdate<DecideAllResult, [AheadApproval]>('approveAhead');

/** Parent: keep the worker clusters a selector matches from starting (those running go on). */
export interface HoldCommand extends RolloutCommand {
  selector: string;
}
export const holdUpdate = defineUpdate<string, [HoldCommand]>('hold');

/** Parent: lift the hold with this selector (`selector` as given to hold), or every hold with `all`. */
export interface ReleaseCommand extends RolloutCommand {
  selector?: string;
  all?: boolean;
}
export const releaseUpdate = defineUpdate<string, [ReleaseCommand]>('release');

/** Parent: act on one worker cluster (retry it, skip it). */
export interface ClusterCommand extends RolloutCommand {
  cluster: string;
}

/** Parent: start a failed (or rolled-back) worker cluster's upgrade again, without restarting the upgrade. */
export const retryClusterUpdate = defineUpdate<string, [ClusterCommand]>('retryCluster');

/** Parent: leave out a worker cluster that failed or has not started; it ends `skipped`, with who and why. */
export const skipClusterUpdate = defineUpdate<string, [ClusterCommand]>('skipCluster');
