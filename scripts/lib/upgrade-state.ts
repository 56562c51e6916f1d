/** Reading an upgrade's state: the live query while it runs, the recorded result once it ended. */
import { WorkflowFailedError, WorkflowUpdateFailedError, type Client } from '@temporalio/client';
import type { UpgradeResult, UpgradeStatus } from '../../runbook/types';
import pLimit from 'p-limit';
import { statusQuery } from '../../workflows/messages';
import { EXIT, ExitError } from './errors';
import { statusOfResult } from './render';

export type UpgradeState =
  | { kind: 'running'; status: UpgradeStatus }
  | { kind: 'completed'; status: UpgradeStatus; result: UpgradeResult }
  | { kind: 'failed'; message: string; status?: UpgradeStatus }
  | { kind: 'cancelled'; status?: UpgradeStatus };

export async function readUpgrade(client: Client, workflowId: string): Promise<UpgradeState> {
  const handle = client.workflow.getHandle(workflowId);
  let description;
  try {
    description = await handle.describe();
  } catch {
    throw new ExitError(`no upgrade with workflow ID ${workflowId}`);
  }
  if (description.status.name === 'RUNNING') {
    try {
      const status = await handle.query(statusQuery);
      await addRetrying(client, workflowId, status);
      return { kind: 'running', status };
    } catch (err) {
      throw new ExitError(
        `${workflowId} is running but no worker answered (is \`npm run worker\` running?): ${(err as Error).message}`,
        EXIT.unreachable
      );
    }
  }
  if (description.status.name === 'CANCELLED') {
    // A closed workflow still answers queries (a worker replays it): every cluster's final state.
    return { kind: 'cancelled', status: await handle.query(statusQuery).catch(() => undefined) };
  }
  try {
    const result = (await handle.result()) as UpgradeResult;
    return { kind: 'completed', status: statusOfResult(result), result };
  } catch (err) {
    const message = err instanceof WorkflowFailedError ? (err.cause?.message ?? err.message) : (err as Error).message;
    // A failed upgrade still answers its status query (a worker replays it): the final per-cluster table.
    const status = await handle.query(statusQuery).catch(() => undefined);
    return { kind: 'failed', message, ...(status ? { status } : {}) };
  }
}

/** "upgrade X finished at T (completed)" for a closed upgrade; undefined while it runs or when it is unknown. */
export async function endedUpgradeMessage(client: Client, workflowId: string): Promise<string | undefined> {
  const d = await client.workflow
    .getHandle(workflowId)
    .describe()
    .catch(() => undefined);
  if (!d || d.status.name === 'RUNNING') return undefined;
  const how = d.status.name === 'COMPLETED' ? 'finished' : `ended ${d.status.name.toLowerCase()}`;
  return `upgrade ${workflowId} has ${how}${d.closeTime ? ` at ${d.closeTime.toISOString()}` : ''}`;
}

/**
 * A running cluster whose activity fails and retries looks "running" to the parent: its child's
 * pending activities say what fails, at which attempt. Read for running clusters only (at most
 * --max-parallel of them), a few at a time.
 */
async function addRetrying(client: Client, workflowId: string, status: UpgradeStatus): Promise<void> {
  const running = status.workers.filter((w) => w.state === 'running');
  const limit = pLimit(8);
  await Promise.all(
    running.map((w) =>
      limit(async () => {
        const d = await client.workflow
          .getHandle(`${workflowId}/${w.cluster}`)
          .describe()
          .catch(() => undefined);
        const failing = d?.raw.pendingActivities?.find((a) => (a.attempt ?? 1) > 1 && a.lastFailure?.message);
        if (failing)
          w.retrying = {
            activity: failing.activityType?.name ?? 'activity',
            attempt: failing.attempt ?? 2,
            error: (failing.lastFailure?.message ?? '').split('\n')[0] ?? '',
          };
      })
    )
  );
}

/**
 * For `.catch()` on an update to the upgrade: a refusal by its validator becomes `refused: <why>`;
 * an upgrade that has closed (no update reaches it) says how it ended, not the server's words.
 */
export const refusedUpdate =
  (client: Client, workflowId: string, then = '') =>
  async (err: unknown): Promise<never> => {
    if (err instanceof WorkflowUpdateFailedError) throw new ExitError(`refused: ${err.cause?.message ?? err.message}`);
    if (err instanceof ExitError) throw err; // sendUpdate gave up: it said what is known
    const ended = await endedUpgradeMessage(client, workflowId);
    if (ended) throw new ExitError(`refused: ${ended}${then}`);
    throw err;
  };
