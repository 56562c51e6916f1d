/**
 * The activities that read and change a Helm release: what preflight reads, the upgrade itself
 * (at most once, never over someone else's work), the rollback of our own stuck revision, verify.
 */
import { Context, log } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import * as cmd from '../runbook/commands';
import type { BackupRef, ClusterRef, ReleaseFacts, ReleaseName, Step, Version } from '../runbook/types';
import type { BackupStore } from './backup-store';
import type { ChartCache } from './chart-cache';
import type { ClusterBackupStore } from './cluster-backup-store';
import { writeRecord } from './cluster-records';
import type { ReleaseLeases } from './release-lease';
import type { CommandRunner } from './exec';
import {
  historyLine,
  OWNER_LABEL,
  ownerLabelValue,
  ownRevisions,
  parseHistory,
  parseSecretLabels,
  releaseFacts,
  type HistoryEntry,
} from './releases';

type UpgradeStep = Step & { kind: 'upgradeRelease' };

export interface ReleaseDeps {
  run: CommandRunner;
  /** Where `helm upgrade` takes the chart from: this host's copy, pulled once and checked. */
  charts: ChartCache;
  store: BackupStore;
  clusterStore: ClusterBackupStore;
  /** helm's own `--timeout` for upgrade and rollback. */
  helmTimeoutMs: number;
  /** A pending revision of ours younger than this may still have its helm running: wait, don't roll back. */
  pendingGraceMs: number;
  /** Scratch space for the records written on clusters. */
  workDir: string;
  /** The release's Lease while our helm changes it; absent: the age rule alone (unit tests of other paths). */
  leases?: ReleaseLeases;
}

export interface ReleaseState {
  history: HistoryEntry[];
  facts: ReleaseFacts;
}

const helmDuration = (ms: number): string => `${Math.max(1, Math.round(ms / 1000))}s`;

export function releaseActivities(deps: ReleaseDeps) {
  const { run } = deps;

  /** `helm history`; a release that does not exist has none. */
  async function readHistory(cluster: ClusterRef, release: ReleaseName): Promise<HistoryEntry[]> {
    try {
      return parseHistory((await run('helm', cmd.helmHistory(cluster, release), { cluster: cluster.name })).stdout);
    } catch (err) {
      if (err instanceof Error && /release: not found/.test(err.message)) return [];
      throw err;
    }
  }

  /** The release's history and which of its revisions this upgrade made (by the label helm stores). */
  async function readState(cluster: ClusterRef, release: ReleaseName, upgradeId: string): Promise<ReleaseState> {
    const history = await readHistory(cluster, release);
    const labels = history.length
      ? parseSecretLabels(
          (await run('kubectl', cmd.kubectlReleaseLabels(cluster, release), { cluster: cluster.name })).stdout
        )
      : new Map<number, Record<string, string>>();
    const ours = ownRevisions(history, labels, upgradeId);
    return { history, facts: releaseFacts(release, history, (e) => ours.has(e.revision)) };
  }

  /** A pending revision of ours older than the grace: the helm that made it is gone. */
  const pendingLongEnough = (facts: ReleaseFacts): boolean =>
    Date.now() - Date.parse(facts.updated ?? '') > deps.pendingGraceMs;

  /** Runs a helm that changes the release while holding its lease. */
  const holding = <T>(
    cluster: ClusterRef,
    release: ReleaseName,
    upgradeId: string,
    revision: number,
    work: () => Promise<T>
  ) => (deps.leases ? deps.leases.holding(cluster, release, upgradeId, revision, work) : work());

  /**
   * Whether the helm of ours that left this revision pending is gone. Its lease says so directly:
   * held, it runs (another attempt, another worker): wait here, heartbeating, until it is released or
   * lapses, then `waited` (read the release again); released or lapsed, `gone` at once. A revision
   * with no lease for it (made before leases, or by a helm run by hand): gone once older than the
   * grace, else `young`.
   */
  async function pendingOwner(
    cluster: ClusterRef,
    release: ReleaseName,
    facts: ReleaseFacts
  ): Promise<'gone' | 'young' | 'waited'> {
    let waited = false;
    // Only a lease for this very revision speaks for it (one for another revision: made without one).
    const forThis = async () => {
      const lease = await deps.leases?.read(cluster, release);
      return lease?.revision === facts.revision ? lease : undefined;
    };
    for (let lease = await forThis(); lease; lease = await forThis()) {
      const left = lease.expiresAt - Date.now();
      if (left <= 0) return waited ? 'waited' : 'gone';
      if (!waited)
        log.info('our helm still holds the release lease: waiting for it', {
          cluster: cluster.name,
          release,
          holder: lease.holder,
        });
      waited = true;
      const ctx = Context.current();
      ctx.heartbeat({ waitingForLease: lease.holder });
      await ctx.sleep(Math.min(left + 250, 5_000));
    }
    return pendingLongEnough(facts) ? 'gone' : 'young';
  }

  /** The deployed revision the upgrade may start from: the planned one, or our rollback to it. */
  function baseMoved(history: HistoryEntry[], fromRevision: number | undefined): HistoryEntry | undefined {
    if (fromRevision === undefined) return undefined;
    const deployed = [...history].reverse().find((e) => e.status === 'deployed');
    if (!deployed || deployed.revision === fromRevision) return undefined;
    // `helm rollback` to the planned revision restores exactly its values.
    if (deployed.description === `Rollback to ${fromRevision}`) return undefined;
    return deployed;
  }

  /**
   * The rollback itself: `rolled-back` when helm ran, `already-back` when an earlier rollback put it
   * there, `untouched` when the upgrade never changed the release (its revision is still the newest).
   */
  async function rollBack(input: {
    upgradeId: string;
    cluster: ClusterRef;
    release: ReleaseName;
    revision: number;
    deleteJobs?: string[];
  }): Promise<'rolled-back' | 'already-back' | 'untouched'> {
    for (;;) {
      const done = await rollBackOnce(input);
      if (done !== 'read-again') return done;
    }
  }

  async function rollBackOnce(input: {
    upgradeId: string;
    cluster: ClusterRef;
    release: ReleaseName;
    revision: number;
    deleteJobs?: string[];
  }): Promise<'rolled-back' | 'already-back' | 'untouched' | 'read-again'> {
    const { cluster, release, revision, upgradeId } = input;
    const where = `${release} on ${cluster.name}`;
    const { history, facts } = await readState(cluster, release, upgradeId);
    const current = history.at(-1);
    if (!current) throw ApplicationFailure.nonRetryable(`${where} is not installed`, 'ReleaseMissing');
    if (current.status === 'deployed' && current.revision === revision) return 'untouched';
    if (current.status === 'deployed' && current.description === `Rollback to ${revision}`) return 'already-back';
    // Our upgrade, and our own rollback still pending or failed (ownRevisions): retried, not someone else's.
    if (!facts.ours)
      throw ApplicationFailure.nonRetryable(
        `${where} moved since this upgrade (${historyLine(current)}): not rolling back over someone else's revision`,
        'ReleaseMoved'
      );
    if (facts.status?.startsWith('pending-')) {
      const owner = await pendingOwner(cluster, release, facts);
      if (owner === 'waited') return 'read-again';
      if (owner === 'young')
        throw ApplicationFailure.retryable(
          `${where}: our helm may still be running (${historyLine(current)})`,
          'ReleaseLocked'
        );
    }
    log.warn('rolling back to the pre-upgrade revision', {
      cluster: cluster.name,
      release,
      from: historyLine(current),
      to: revision,
    });
    // Job templates are immutable: the admission Jobs block a rollback as they block an upgrade.
    // Deleted here, once a rollback is certain, so a cluster the upgrade never changed is left as it is.
    if (input.deleteJobs?.length) await run('kubectl', cmd.kubectlDeleteJobs(cluster, input.deleteJobs));
    await holding(cluster, release, upgradeId, current.revision + 1, () =>
      run('helm', cmd.helmRollback(cluster, release, revision, helmDuration(deps.helmTimeoutMs)), {
        timeoutMs: deps.helmTimeoutMs + 60_000,
        cluster: cluster.name,
      })
    );
    return 'rolled-back';
  }

  /**
   * `helm upgrade --install`, at most once per release and never over someone else's work: a retry
   * finds our revision deployed and returns; a pending revision that is not ours, or ours but young
   * enough that its helm may still run, is waited for (`ReleaseLocked`, retried); an old pending
   * revision of ours asks the workflow for a rollback (`PendingRollbackNeeded`); values changed by
   * someone since the plan stop the cluster (`ValuesChanged`).
   */
  async function upgradeRelease(input: {
    upgradeId: string;
    cluster: ClusterRef;
    step: UpgradeStep;
    backup?: BackupRef;
    /**
     * Jobs to delete right before `helm upgrade`: set for the upgrade that follows a rollback of our
     * interrupted revision, which brought the old admission Jobs back (their template is immutable).
     */
    deleteJobs?: string[];
  }): Promise<{ revision: number; alreadyDone: boolean }> {
    const { cluster, step, upgradeId } = input;
    const where = `${step.release} on ${cluster.name}`;
    const { history, facts } = await readState(cluster, step.release, upgradeId);
    if (facts.ours && facts.status === 'deployed' && facts.chartVersion === step.version)
      return { revision: facts.revision ?? 0, alreadyDone: true };
    if (!facts.installed && !step.install)
      throw ApplicationFailure.nonRetryable(`${where} is not installed any more; re-run plan`, 'ReleaseMissing');
    // Planned as a fresh install, but someone installed it since: never overwrite their values.
    if (facts.installed && step.install && !facts.ours)
      throw ApplicationFailure.nonRetryable(
        `values changed since the plan: re-run plan (${where} was installed since: ${facts.historyLine})`,
        'ValuesChanged'
      );
    const line = facts.historyLine ?? '';
    if (facts.status?.startsWith('pending-')) {
      if (!facts.ours)
        throw ApplicationFailure.retryable(`${where} is held by another helm operation (${line})`, 'ReleaseLocked');
      const owner = await pendingOwner(cluster, step.release, facts);
      // Our helm ended while we waited for its lease: what it left decides, read again.
      if (owner === 'waited') return upgradeRelease(input);
      const age = Date.now() - Date.parse(facts.updated ?? '');
      if (owner === 'young')
        throw ApplicationFailure.retryable(
          `${where}: our earlier helm may still be running (${line}); waiting ${Math.ceil((deps.pendingGraceMs - age) / 1000)} s more before rolling it back`,
          'ReleaseLocked'
        );
      if (facts.status === 'pending-install' || step.fromRevision === undefined)
        throw ApplicationFailure.nonRetryable(
          `${where} is stuck ${facts.status} (${line}); check it with helm history before retrying`,
          'ReleaseStuck'
        );
      throw ApplicationFailure.create({
        message: `${where} was left pending by our interrupted helm (${line}): roll back to revision ${step.fromRevision} first`,
        type: 'PendingRollbackNeeded',
        nonRetryable: true,
      });
    }
    if (facts.status === 'failed' && !facts.ours)
      throw ApplicationFailure.nonRetryable(`${where} failed by another operation (${line})`, 'ReleaseFailed');
    const moved = baseMoved(history, step.fromRevision);
    if (moved)
      throw ApplicationFailure.nonRetryable(
        `values changed since the plan: re-run plan (${where} is now at ${historyLine(moved)}, planned from revision ${step.fromRevision})`,
        'ValuesChanged'
      );
    let backupFile: string | undefined;
    let removeBackupFile = async (): Promise<void> => undefined;
    if (step.useBackup) {
      if (!input.backup) throw ApplicationFailure.nonRetryable(`no values backup for ${where}`, 'BackupMissing');
      if (input.backup.store === 'cluster') {
        const opened = await deps.clusterStore.open(cluster, input.backup);
        backupFile = opened.file;
        removeBackupFile = opened.remove;
      } else backupFile = await deps.store.verified(input.backup);
    }
    const next = (history.at(-1)?.revision ?? 0) + 1;
    try {
      // A chart that is not the pinned one is refused here, before helm runs.
      const chart = await deps.charts.get(step, { cluster: cluster.name });
      if (input.deleteJobs?.length) await run('kubectl', cmd.kubectlDeleteJobs(cluster, input.deleteJobs));
      await holding(cluster, step.release, upgradeId, next, () =>
        run(
          'helm',
          cmd.helmUpgrade(
            cluster,
            step,
            backupFile,
            {
              description: cmd.upgradeDescription(upgradeId),
              labels: { [OWNER_LABEL]: ownerLabelValue(upgradeId, next) },
              timeout: helmDuration(deps.helmTimeoutMs),
            },
            chart.file
          ),
          // helm stops itself at its --timeout; the process limit only catches a helm that hangs past it.
          { timeoutMs: deps.helmTimeoutMs + 60_000, cluster: cluster.name }
        )
      );
    } finally {
      await removeBackupFile();
    }
    const after = await readState(cluster, step.release, upgradeId);
    return { revision: after.facts.revision ?? 0, alreadyDone: false };
  }

  return {
    readState,

    upgradeRelease,

    /** Rolls back a pending revision of ours to the pre-upgrade one; does nothing when that is no longer so. */
    async rollbackRelease(input: {
      upgradeId: string;
      cluster: ClusterRef;
      release: ReleaseName;
      revision: number;
      /** Jobs to delete right before `helm rollback` (the admission Jobs: their template is immutable). */
      deleteJobs?: string[];
    }): Promise<{ rolledBack: boolean }> {
      for (;;) {
        const { facts } = await readState(input.cluster, input.release, input.upgradeId);
        if (!facts.status?.startsWith('pending-') || !facts.ours) return { rolledBack: false };
        // Our own rollback of it, interrupted in turn (pending-rollback): the same wait as any helm of ours.
        const owner = await pendingOwner(input.cluster, input.release, facts);
        if (owner === 'waited') continue; // its helm ended meanwhile: read again
        if (owner === 'young')
          throw ApplicationFailure.retryable(
            `${input.release} on ${input.cluster.name}: our helm may still be running (${facts.historyLine})`,
            'ReleaseLocked'
          );
        log.warn('rolling back a revision our interrupted helm left pending', {
          cluster: input.cluster.name,
          release: input.release,
          pending: facts.historyLine,
          to: input.revision,
        });
        if (input.deleteJobs?.length) await run('kubectl', cmd.kubectlDeleteJobs(input.cluster, input.deleteJobs));
        await holding(input.cluster, input.release, input.upgradeId, (facts.revision ?? 0) + 1, () =>
          run(
            'helm',
            cmd.helmRollback(input.cluster, input.release, input.revision, helmDuration(deps.helmTimeoutMs)),
            {
              timeoutMs: deps.helmTimeoutMs + 60_000,
              cluster: input.cluster.name,
            }
          )
        );
        return { rolledBack: true };
      }
    },

    /**
     * Puts a release back to the revision it had before this upgrade (automatic rollback of a failed
     * cluster, and `npm run rollback`). Only over a revision this upgrade made: a release someone
     * else moved since is refused. Going back twice changes nothing; a release the upgrade never
     * changed is `untouched` and gets no rollback record.
     */
    async rollbackToRevision(input: {
      upgradeId: string;
      cluster: ClusterRef;
      release: ReleaseName;
      revision: number;
      /** Recorded on the cluster: a rerun of this upgrade then leaves it alone (unless --retry-failed). */
      record?: { version: Version; cause: string };
      /** Jobs to delete just before `helm rollback` (the admission Jobs), only when it runs. */
      deleteJobs?: string[];
    }): Promise<{ rolledBack: boolean; untouched?: true }> {
      const done = await rollBack(input);
      // Nothing of this upgrade's to undo: no rollback happened, so no record says one did.
      if (done === 'untouched') return { rolledBack: false, untouched: true };
      if (input.record)
        await writeRecord(
          run,
          input.cluster,
          cmd.ROLLBACK_RECORD,
          {
            upgradeId: input.upgradeId,
            version: input.record.version,
            at: new Date().toISOString(),
            cause: input.record.cause.slice(0, 500),
          },
          deps.workDir
        );
      return { rolledBack: done === 'rolled-back' };
    },

    async verifyRelease(input: {
      cluster: ClusterRef;
      release: ReleaseName;
      version: Version;
    }): Promise<{ revision: number }> {
      const facts = releaseFacts(input.release, await readHistory(input.cluster, input.release), () => false);
      if (facts.status !== 'deployed' || facts.chartVersion !== input.version) {
        throw ApplicationFailure.create({
          message: `${input.release} on ${input.cluster.name} is ${facts.installed ? `${facts.status} at ${facts.chartVersion}` : 'not installed'}, expected deployed at ${input.version}`,
          type: 'ReleaseNotAtTarget',
        });
      }
      return { revision: facts.revision ?? 0 };
    },
  };
}
