/** Reading an upgrade's state: the live query while it runs, the recorded result once it ended. */
import { WorkflowFailedError, type Client } from '@temporalio/client';
import type { UpgradeResult, UpgradeStatus } from '../../runbook/types';
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
      return { kind: 'running', status: await handle.query(statusQuery) };
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
    return { kind: 'failed', message };
  }
}
