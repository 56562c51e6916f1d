/**
 * The run report's model: only the fields the report shows, picked from the histories. Times are
 * epoch milliseconds (event times) unless named otherwise; nothing here is a raw payload.
 */
import type { ClusterOutcome } from '../../../runbook/types';

/** How the upgrade's workflow chain stands, from the last run's last event. */
export type RunStatus = 'running' | 'completed' | 'failed' | 'cancelled' | 'terminated' | 'timed-out';

/** One activity: from scheduled to closed, all its attempts. */
export interface StepBar {
  /** The activity's summary (userMetadata), or its type. */
  label: string;
  activity: string;
  start: number;
  /** Undefined while it runs (or waits for its next attempt). */
  end?: number;
  /** The attempt that started last (1 = no retry). */
  attempts: number;
  status: 'scheduled' | 'running' | 'completed' | 'failed' | 'timed-out' | 'cancelled';
  /** Why the attempt before the last one failed (ActivityTaskStarted.lastFailure). */
  retryCause?: string;
  /** Why the activity failed, for good (ActivityTaskFailed / TimedOut). */
  failure?: string;
  /** Preflight reads and checks: drawn apart from the upgrade's own steps. */
  preflight?: true;
}

/** A CRD gate open: from the gate opening to the decision (or still open). */
export interface GateWait {
  start: number;
  end?: number;
  /** The digest the gate showed last. */
  digest?: string;
  /** What closed it: the state the cluster went on to (running, rejected...). */
  closedAs?: string;
}

/** A worker cluster's CRD decision as the cluster recorded it (its result's `approval`). */
export interface Decision {
  cluster: string;
  approved: boolean;
  by: string;
  reason?: string;
  digest?: string;
  /** ISO time, workflow clock. */
  at: string;
  approvers?: string[];
}

/** An approval request or a rollout command, as an update or a signal reached a workflow. */
export interface LogEntry {
  at: number;
  via: 'update' | 'signal';
  /** approve, reject, approve all, approve ahead, pause, hold... */
  action: string;
  /** The cluster, or the clusters a selector names. */
  scope?: string;
  by?: string;
  reason?: string;
  /** The digest(s) named, shortened. */
  digest?: string;
  /** The workflow's answer, or why it refused. */
  result?: string;
  refused?: boolean;
}

export interface ClusterRow {
  cluster: string;
  role: 'control-plane' | 'worker';
  from?: string;
  to?: string;
  /**
   * A ClusterOutcome once it ended (as recorded: histories of other versions may name others);
   * `running`, `waiting-approval` or `pending` before.
   */
  outcome: ClusterOutcome | 'running' | 'waiting-approval' | 'pending' | (string & {});
  /** The cause when it did not upgrade: the failure chain, or the rolled-back message. */
  error?: string;
  start?: number;
  end?: number;
  steps: StepBar[];
  gates: GateWait[];
  /** Attempts beyond the first, over every step. */
  retries: number;
  decision?: Decision;
  /** Where the steps come from: the child's own history, or only what the parent saw of it. */
  source: 'parent' | 'child' | 'parent-only';
}

export interface PlanEntry {
  cluster: string;
  role: 'control-plane' | 'worker';
  from?: string;
  to?: string;
  steps: string[];
  skipped?: string;
}

export interface ReportModel {
  workflowId: string;
  upgradeId: string;
  targetVersion?: string;
  startedBy?: string;
  status: RunStatus;
  /** One line: the counts when it finished, the phase while it runs, the cause when it failed. */
  outcome: string;
  /** The chain's failure, cancellation or termination cause. */
  failure?: string;
  start?: number;
  /** When the chain closed; undefined while it runs. */
  end?: number;
  /** The newest event of any history: where a running upgrade's timeline ends. */
  lastEventAt?: number;
  runs: number;
  plan: { notes: string[]; clusters: PlanEntry[] };
  /** Chart and image checks at preflight (fleet-wide, not one cluster's). */
  fleetChecks: StepBar[];
  clusters: ClusterRow[];
  decisions: Decision[];
  log: LogEntry[];
  /** Child histories given, and workers started whose history was not given (or was another run's). */
  childHistories: number;
  missingChildren: string[];
}
