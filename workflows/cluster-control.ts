/**
 * Retry or skip one worker cluster while the upgrade runs (`npm run retry`, `npm run skip`):
 * updates with validators whose refusals name the cluster's real state. A retry puts the cluster
 * back at the front of the queue (its child starts again under the same workflow ID); a skip ends
 * it `skipped`, with who and why, and it never starts.
 *
 * With `--on-failure pause`, a failed cluster pauses the rollout and the upgrade waits, even after
 * its last cluster, until every failed cluster is retried or skipped (the pause then lifts by
 * itself) or someone resumes (accepting the failures as they are).
 */
import { ApplicationFailure, log, setHandler } from '@temporalio/workflow';
import type { ClusterResult, ClusterStatus, UpgradeRequest } from '../runbook/types';
import type { FleetStatus } from './fleet-status';
import { retryClusterUpdate, skipClusterUpdate, type ClusterCommand } from './messages';

/** Who pauses the rollout when a cluster fails under `--on-failure pause`. */
export const ON_FAILURE_PAUSE = 'on-failure pause';

const refuse = (message: string) => ApplicationFailure.nonRetryable(message, 'ClusterCommandRefused');
const isFailed = (s: ClusterStatus['state'] | undefined) => s === 'failed' || s === 'rolled-back';

export interface ClusterControl {
  /** Clusters to start again, in the order asked; the fan-out takes them. */
  readonly retries: string[];
  /** Moves on every retry or skip: the fan-out recomputes why it stopped, if it did. */
  readonly moves: number;
  /** A failed cluster under `--on-failure pause`: pause the rollout until someone decides. */
  onClusterFailed(result: ClusterResult): void;
  /** Failed clusters the upgrade waits on (`--on-failure pause`, still paused for them). */
  awaitingDecision(): boolean;
  /** The rollout is paused by the failure policy, not by a person: a retried cluster may start. */
  pausedForFailure(): boolean;
}

export function handleClusterControl(status: FleetStatus, request: UpgradeRequest): ClusterControl {
  const workers = new Set(request.fleet.workers.map((w) => w.name));
  const retries: string[] = [];
  let moves = 0;
  const { rollout } = status;
  const pausedForFailure = () => rollout.paused?.by === ON_FAILURE_PAUSE;
  const anyFailed = () => [...status.ended.values()].some((r) => isFailed(r.outcome));
  const liftPauseIfDecided = () => {
    if (pausedForFailure() && !anyFailed()) status.resume();
  };

  /** Refuses a command that cannot apply to this cluster now, saying what the cluster is doing. */
  const check = (c: ClusterCommand, verb: 'retry' | 'skip'): ClusterStatus => {
    if (!c.by?.trim()) throw refuse('say who does it (--by)');
    if (verb === 'skip' && !c.reason?.trim()) throw refuse('say why the cluster is skipped (--reason)');
    if (c.cluster === request.fleet.controlPlane.name)
      throw refuse(`${c.cluster} is the control plane: it is not retried or skipped alone (start a new upgrade)`);
    if (!workers.has(c.cluster))
      throw refuse(`no worker cluster named ${c.cluster} in this upgrade (${[...workers].slice(0, 10).join(', ')})`);
    const phase = status.phase;
    if (phase === 'done' || phase === 'failed' || phase === 'cancelled')
      throw refuse(
        `the upgrade has ended (${phase}): start the upgrade again to ${verb} ${c.cluster} (clusters already at the target are left alone)`
      );
    const s = status.status().workers.find((w) => w.cluster === c.cluster) as ClusterStatus;
    const since = s.gate ? ` since ${s.gate.since}` : '';
    switch (s.state) {
      case 'failed':
      case 'rolled-back':
        if (retries.includes(c.cluster)) throw refuse(`${c.cluster} is already queued to retry`);
        return s;
      case 'pending':
        if (verb === 'retry')
          throw refuse(
            `${c.cluster} has not started yet${s.waitingFor ? ` (${s.waitingFor})` : rollout.paused ? ` (the rollout is paused by ${rollout.paused.by})` : ''}: nothing to retry`
          );
        return s;
      case 'running':
        throw refuse(
          `${c.cluster} is running${s.step ? ` (${s.step})` : ''}: a failing step retries by itself; ${verb} applies once the cluster has failed`
        );
      case 'waiting-approval':
        throw refuse(
          `${c.cluster} waits for CRD approval${since}: its release is already upgraded; approve or reject its CRD step (npm run approve -- --cluster ${c.cluster} [--reject])`
        );
      case 'skipped':
        throw refuse(`${c.cluster} is already skipped: ${s.error ?? ''}`);
      default:
        throw refuse(
          `${c.cluster} has already ended ${s.state}${s.approval ? ` (${s.approval.approved ? 'approved' : 'rejected'} by ${s.approval.by})` : ''}: nothing to ${verb}`
        );
    }
  };

  setHandler(
    retryClusterUpdate,
    (c) => {
      const before = status.ended.get(c.cluster);
      retries.push(c.cluster);
      moves++;
      const why = `retry asked by ${c.by.trim()}${c.reason ? `: ${c.reason}` : ''} (it had ${before?.outcome ?? 'failed'}: ${before?.error ?? 'no cause given'})`;
      status.reopened(c.cluster, why);
      liftPauseIfDecided();
      status.steered();
      log.info('cluster retried', { cluster: c.cluster, by: c.by, reason: c.reason });
      return `${c.cluster} will start again${rollout.paused && !pausedForFailure() ? ` once the rollout resumes (paused by ${rollout.paused.by})` : ''}`;
    },
    { validator: (c) => void check(c, 'retry') }
  );

  setHandler(
    skipClusterUpdate,
    (c) => {
      const s = check(c, 'skip');
      const before = status.ended.get(c.cluster);
      // Skipping a canary sets it aside: the others go on (fan-out.ts), and status says so.
      const canary = request.options.canaries?.includes(c.cluster) ?? false;
      const result: ClusterResult = {
        cluster: c.cluster,
        role: 'worker',
        outcome: 'skipped',
        from: s.from,
        to: s.to,
        error: `skipped by ${c.by.trim()}: ${c.reason?.trim()}${before ? ` (it had ${before.outcome}: ${before.error ?? 'no cause given'})` : ''}${canary ? '; a canary set aside: the rollout goes on without it' : ''}`,
        ...(before?.startedAt ? { startedAt: before.startedAt } : {}),
        finishedAt: new Date().toISOString(),
      };
      status.finished(result);
      moves++;
      liftPauseIfDecided();
      status.steered();
      log.info('cluster skipped', { cluster: c.cluster, by: c.by, reason: c.reason });
      return `${c.cluster} skipped${before ? '' : ': it will not start'}${canary ? '; a canary set aside: the rollout goes on without it' : ''}`;
    },
    { validator: (c) => void check(c, 'skip') }
  );

  return {
    retries,
    get moves() {
      return moves;
    },
    onClusterFailed(result) {
      if (request.options.onFailure !== 'pause' || rollout.paused) return;
      status.pause({
        by: ON_FAILURE_PAUSE,
        reason: `${result.cluster} ${result.outcome}: retry it (npm run retry -- --cluster ${result.cluster} --by NAME) or skip it (npm run skip -- --cluster ${result.cluster} --reason WHY --by NAME), or resume to go on without it`,
        at: new Date().toISOString(),
      });
    },
    pausedForFailure,
    awaitingDecision: () => request.options.onFailure === 'pause' && pausedForFailure() && anyFailed(),
  };
}
