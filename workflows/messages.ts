/**
 * Every message the upgrade workflows accept, defined once and imported by the CLI too.
 */
import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';
import type { ClusterState, StepKind, UpgradeStatus, Version } from '../runbook/types';

/** A decision at a worker cluster's CRD gate. `cluster` must name the cluster the gate belongs to. */
export interface CrdDecision {
  cluster: string;
  approve: boolean;
  by: string;
  reason?: string;
}

export interface CrdDecisionForAll {
  approve: boolean;
  by: string;
  reason?: string;
}

/** Progress a child reports to its parent, so one `status` query sees the whole fleet. */
export interface ClusterProgress {
  cluster: string;
  /** Signals sent in one workflow task may arrive out of order: the parent keeps the highest. */
  seq: number;
  state: ClusterState;
  step?: StepKind;
  from?: Version;
  error?: string;
}

/** Parent: the whole upgrade's state. */
export const statusQuery = defineQuery<UpgradeStatus>('status');

/**
 * Child: approve or reject its CRD step. This is an update as opposed to a signal because the
 * caller must learn at once when its decision is refused (wrong cluster, gate not reached yet).
 */
export const decideCrdUpdate = defineUpdate<string, [CrdDecision]>('decideCrd');

/** Child: the same decision as a signal, for the Temporal UI and for the parent's approve-all. */
export const crdDecisionSignal = defineSignal<[CrdDecision]>('crdDecision');

/** Parent: decide every gate that is waiting now; answers with the clusters decided. */
export const decideAllUpdate = defineUpdate<string[], [CrdDecisionForAll]>('decideAll');

/** Parent: the same as a signal, for the Temporal UI. */
export const decideAllSignal = defineSignal<[CrdDecisionForAll]>('decideAllSignal');

/** Child -> parent progress. */
export const clusterProgressSignal = defineSignal<[ClusterProgress]>('clusterProgress');

/** Child: what its gate waits for now (also queryable from the `temporal` CLI). */
export const gateQuery = defineQuery<{ cluster: string; state: ClusterState; step?: StepKind }>('gate');
