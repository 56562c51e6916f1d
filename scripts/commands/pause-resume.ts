/**
 * `npm run pause -- --by NAME [--reason TEXT]` and `npm run resume -- --by NAME`: clusters running
 * finish, no new one starts, until resumed. Updates on the upgrade workflow: a refusal (already
 * paused, not paused, the upgrade ended) comes back at once; who and why are recorded in history.
 */
import { WorkflowUpdateFailedError, type Client } from '@temporalio/client';
import { pauseUpdate, resumeUpdate } from '../../workflows/messages';
import { ExitError } from '../lib/errors';
import { resolveUpgradeId } from '../lib/temporal';

export interface PauseOptions {
  by?: string;
  reason?: string;
  workflowId?: string;
}

export function validatePause(opts: PauseOptions): void {
  if (!opts.by?.trim()) throw new ExitError('--by NAME is required: pause and resume record who did it');
}

export async function pauseOrResume(
  action: 'pause' | 'resume',
  opts: PauseOptions,
  client: Client
): Promise<{ workflowId: string; answer: string }> {
  validatePause(opts);
  const workflowId = await resolveUpgradeId(client, opts.workflowId);
  const answer = await client.workflow
    .getHandle(workflowId)
    .executeUpdate(action === 'pause' ? pauseUpdate : resumeUpdate, {
      args: [{ by: (opts.by as string).trim(), ...(opts.reason ? { reason: opts.reason } : {}) }],
    })
    .catch((err: unknown) => {
      if (err instanceof WorkflowUpdateFailedError)
        throw new ExitError(`refused: ${err.cause?.message ?? err.message}`);
      throw err;
    });
  return { workflowId, answer };
}
