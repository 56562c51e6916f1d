/**
 * `npm run rollback -- --cluster NAME | --all --by NAME [--workflow-id ID] [--fleet F]`: puts
 * clusters of an upgrade back to the revision recorded before it, as a workflow (durable, and
 * visible in the Temporal UI). A cluster whose release moved since the upgrade is refused; one the
 * upgrade never changed is left alone (`unchanged`, no rollback record); the control plane after a
 * DB-migration Job is refused unless `--after-db-restore` says the database was restored first.
 */
import type { Client } from '@temporalio/client';
import { upgradeWorkflowId } from '../../runbook/fleet';
import { DEFAULT_HEALTH_TIMEOUT_MS } from '../../runbook/plan';
import type { ClusterStatus } from '../../runbook/types';
import { rollbackClusters } from '../../workflows';
import { statusQuery } from '../../workflows/messages';
import type { RollbackOutcome, RollbackTarget } from '../../workflows/rollback-clusters';
import type { PlanMemo } from '../../workflows/plan-memo';
import { ExitError } from '../lib/errors';
import type { StartedWith } from '../lib/started-with';
import { loadFleet } from '../lib/inputs';
import type { TemporalEnv } from '../lib/temporal';

export interface RollbackOptions {
  cluster?: string;
  all?: boolean;
  by?: string;
  workflowId?: string;
  fleet: string;
  /** The skoala database was restored to its pre-upgrade backup: the control plane may go back too. */
  afterDbRestore?: boolean;
}

export interface RollbackResult {
  workflowId: string;
  results: RollbackOutcome[];
}

/**
 * Clusters an upgrade may have changed: the ones it can put back. A cluster that never started is
 * left out here; one cancelled or skipped at an unknown point is looked at by the rollback activity,
 * which leaves a release the upgrade never changed as it is (`unchanged`).
 */
const changed = (c: ClusterStatus) =>
  c.fromRevision !== undefined &&
  c.from !== undefined &&
  !['pending', 'not-started', 'already-at-target'].includes(c.state);

export async function rollback(opts: RollbackOptions, client: Client, t: TemporalEnv): Promise<RollbackResult> {
  if (!!opts.cluster === !!opts.all) throw new ExitError('name one cluster with --cluster NAME, or pass --all');
  if (!opts.by?.trim()) throw new ExitError('--by NAME is required: rollbacks record who asked for them');
  const fleet = await loadFleet(opts.fleet);
  const upgrade = opts.workflowId ?? upgradeWorkflowId(fleet.name);
  const handle = client.workflow.getHandle(upgrade);
  const description = await handle.describe().catch(() => {
    throw new ExitError(`no upgrade with workflow ID ${upgrade}`);
  });
  if (description.status.name === 'RUNNING')
    throw new ExitError(`upgrade ${upgrade} is still running: cancel it first (npm run cancel), then roll back`);
  const status = await handle.query(statusQuery).catch((err: unknown) => {
    throw new ExitError(`cannot read ${upgrade} (is a worker running?): ${(err as Error).message}`, 3);
  });
  const all = [status.controlPlane, ...status.workers];
  let chosen: ClusterStatus[];
  if (opts.cluster) {
    const c = all.find((x) => x.cluster === opts.cluster);
    if (!c)
      throw new ExitError(
        `cluster ${opts.cluster} is not in ${upgrade} (it has: ${all.map((x) => x.cluster).join(', ')})`
      );
    if (!changed(c))
      throw new ExitError(`cluster ${c.cluster} was not changed by ${upgrade} (${c.state}): nothing to roll back`);
    chosen = [c];
  } else {
    chosen = all.filter(changed);
    if (chosen.length === 0) throw new ExitError(`${upgrade} changed no cluster: nothing to roll back`);
  }
  // After the DB-migration Job the schema moved: skoala's old revision against it is what the
  // automatic path refuses, and so does this, unless the database was put back first.
  const memo = description.memo as { plan?: PlanMemo; startedWith?: StartedWith } | undefined;
  const migrated = memo?.plan?.controlPlane.steps.includes('runDbMigrationJob') ?? false;
  const cp = chosen.find((c) => c.role === 'control-plane');
  if (cp && migrated && !opts.afterDbRestore) {
    const again = `npm run rollback -- ${opts.cluster ? `--cluster ${cp.cluster}` : '--all'} --by ${opts.by.trim()}${opts.workflowId ? ` --workflow-id ${upgrade}` : ''} --after-db-restore`;
    throw new ExitError(
      `refused: ${upgrade} ran the DB-migration Job on the control plane ${cp.cluster}, so the database schema moved and skoala revision ${cp.fromRevision} would run against it; nothing was rolled back. To go back: (1) restore the skoala database from the backup taken before the upgrade; (2) ${again}` +
        (opts.all ? ' (or roll back worker clusters alone with --cluster NAME)' : '')
    );
  }
  const refs = new Map([fleet.controlPlane, ...fleet.workers].map((r) => [r.name, r]));
  const targets: RollbackTarget[] = chosen.map((c) => {
    const cluster = refs.get(c.cluster);
    if (!cluster) throw new ExitError(`cluster ${c.cluster} of ${upgrade} is not in ${opts.fleet}`);
    return {
      cluster,
      release: c.role === 'control-plane' ? 'skoala' : 'skoala-init',
      revision: c.fromRevision as number,
      version: c.from as string,
    };
  });
  const workflowId = `${upgrade}/rollback-${Date.now()}`;
  const results = await client.workflow.execute(rollbackClusters, {
    taskQueue: t.taskQueue,
    workflowId,
    args: [
      {
        upgradeId: status.upgradeId,
        version: status.targetVersion,
        targets,
        by: opts.by.trim(),
        // The upgrade's own --health-timeout (an upgrade started before it was kept: the default).
        healthTimeoutMs: memo?.startedWith?.healthTimeoutMs ?? DEFAULT_HEALTH_TIMEOUT_MS,
      },
    ],
    staticSummary: `roll back ${targets.map((x) => x.cluster.name).join(', ')} of ${upgrade}`,
  });
  return { workflowId, results };
}
