/**
 * `npm run start-upgrade -- --version 0.19.2 [--fleet fleet.yaml] [--max-parallel N] [--follow] [--dry-run]`:
 * validates everything, then starts (or attaches to) the one upgrade of this fleet to this version.
 */
import { WorkflowIdConflictPolicy, type Client } from '@temporalio/client';
import type { UpgradeRequest } from '../../runbook/types';
import { upgradeEngine } from '../../workflows';
import { workflowUrl, type TemporalEnv } from '../lib/temporal';

export interface StartResult {
  workflowId: string;
  runId: string;
  url: string;
  /** True when an upgrade of this fleet to this version was already running: we attached to it. */
  attached: boolean;
}

/** `request` comes from buildRequest (plan.ts): validated before any connection is made. */
export async function startUpgrade(request: UpgradeRequest, client: Client, t: TemporalEnv): Promise<StartResult> {
  const workflowId = request.upgradeId;
  const running = await client.workflow
    .getHandle(workflowId)
    .describe()
    .then((d) => d.status.name === 'RUNNING')
    .catch(() => false);
  // USE_EXISTING makes a second start attach even if two operators race past the check above.
  const handle = await client.workflow.start(upgradeEngine, {
    taskQueue: t.taskQueue,
    workflowId,
    args: [{ request }],
    workflowIdConflictPolicy: WorkflowIdConflictPolicy.USE_EXISTING,
    staticSummary: `skoala + skoala-init -> ${request.options.targetVersion} on fleet ${request.fleet.name} (${request.fleet.workers.length} worker clusters)`,
    staticDetails: `control plane: ${request.fleet.controlPlane.name}\nworkers: ${request.fleet.workers.map((w) => w.name).join(', ')}\nmax parallel: ${request.options.maxParallel}`,
  });
  return { workflowId, runId: handle.firstExecutionRunId, url: workflowUrl(t, workflowId), attached: running };
}
