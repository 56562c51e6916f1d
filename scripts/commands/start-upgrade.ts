/**
 * `npm run start-upgrade -- --version 0.19.2 [--fleet fleet.yaml] [--max-parallel N] [--follow] [--dry-run]`:
 * validates everything, then starts the one upgrade of this fleet, or attaches to it when it is
 * already running to the same version with the same rollout flags. A running upgrade to another
 * version, or to the same one with other flags (--canary, --on-failure...), is refused (exit 2).
 */
import { WorkflowExecutionAlreadyStartedError, WorkflowIdConflictPolicy, type Client } from '@temporalio/client';
import { upgradeWorkflowId } from '../../runbook/fleet';
import type { UpgradeRequest } from '../../runbook/types';
import { upgradeEngine } from '../../workflows';
import { statusQuery } from '../../workflows/messages';
import { ExitError } from '../lib/errors';
import { differences, startedWith, type StartedWith } from '../lib/started-with';
import { searchAttributesRegistered, startAttributes } from '../lib/search-attributes';
import { workflowUrl, type TemporalEnv } from '../lib/temporal';

export interface StartResult {
  workflowId: string;
  runId: string;
  url: string;
  /** True when this fleet's upgrade to this version was already running: we attached to it. */
  attached: boolean;
  /** Why the upgrade runs without the Skoala* search attributes, when it does. */
  searchAttributesMissing?: string;
}

/** `request` comes from buildRequest (plan.ts): validated before any connection is made. */
export async function startUpgrade(request: UpgradeRequest, client: Client, t: TemporalEnv): Promise<StartResult> {
  const workflowId = upgradeWorkflowId(request.fleet.name);
  const version = request.options.targetVersion;
  const registered = await searchAttributesRegistered(client, t.namespace);
  try {
    // FAIL, not USE_EXISTING: the server decides atomically whether this call started the upgrade,
    // so two operators starting at the same instant see one "started" and one "attached".
    const handle = await client.workflow.start(upgradeEngine, {
      taskQueue: t.taskQueue,
      workflowId,
      args: [{ request }],
      workflowIdConflictPolicy: WorkflowIdConflictPolicy.FAIL,
      memo: { targetVersion: version, upgradeId: request.upgradeId, startedWith: startedWith(request.options) },
      ...(registered.ok ? { typedSearchAttributes: startAttributes(request.fleet.name, version) } : {}),
      staticSummary: `skoala + skoala-init -> ${version} on fleet ${request.fleet.name} (${request.fleet.workers.length} worker clusters)`,
      staticDetails: `control plane: ${request.fleet.controlPlane.name}\nworkers: ${request.fleet.workers.map((w) => w.name).join(', ')}\nmax parallel: ${request.options.maxParallel}`,
    });
    return {
      workflowId,
      runId: handle.firstExecutionRunId,
      url: workflowUrl(t, workflowId),
      attached: false,
      ...(registered.hint ? { searchAttributesMissing: registered.hint } : {}),
    };
  } catch (err) {
    if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
  }
  const handle = client.workflow.getHandle(workflowId);
  const running = await handle.describe();
  const live = await handle.query(statusQuery).catch(() => undefined);
  const runningVersion = running.memo?.targetVersion ?? live?.targetVersion;
  if (runningVersion !== version) {
    const phase = live?.phase ?? 'unknown: no worker answered';
    throw new ExitError(
      `refused: upgrade ${workflowId} to ${String(runningVersion)} is running (phase ${phase}); one upgrade per fleet at a time: let it finish or cancel it (npm run cancel) before starting ${version}`
    );
  }
  // Attaching must not hide that this call asked for another rollout than the one running.
  const runningWith = running.memo?.startedWith as StartedWith | undefined;
  const differ = runningWith ? differences(runningWith, startedWith(request.options)) : [];
  if (differ.length > 0)
    throw new ExitError(
      `refused: upgrade ${workflowId} to ${version} is already running with other options: ${differ.join(', ')}; run start-upgrade with the running options to attach, or steer it with pause/hold/retry/skip, or cancel it and start again`
    );
  return { workflowId, runId: running.runId, url: workflowUrl(t, workflowId), attached: true };
}
