/**
 * `npm run pause -- --by NAME [--reason TEXT]` and `npm run resume -- --by NAME`: clusters running
 * finish, no new one starts, until resumed. `npm run hold -- --select S --by NAME` and
 * `npm run release -- --select S|--all --by NAME`: the same for the clusters a selector matches.
 * Updates on the upgrade workflow: a refusal (already paused, not held, the upgrade ended) comes
 * back at once; who and why are recorded in history.
 */
import type { Client } from '@temporalio/client';
import { parseSelector, SelectorError } from '../../runbook/selector';
import { holdUpdate, pauseUpdate, releaseUpdate, resumeUpdate } from '../../workflows/messages';
import { ExitError } from '../lib/errors';
import { resolveUpgradeId } from '../lib/temporal';
import { sendUpdate } from '../lib/send-update';
import { refusedUpdate } from '../lib/upgrade-state';

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
  const answer = await sendUpdate(
    client,
    client.workflow.getHandle(workflowId),
    action === 'pause' ? pauseUpdate : resumeUpdate,
    [{ by: (opts.by as string).trim(), ...(opts.reason ? { reason: opts.reason } : {}) }]
  ).catch(refusedUpdate(client, workflowId));
  return { workflowId, answer };
}

export interface HoldOptions extends PauseOptions {
  select?: string;
  all?: boolean;
}

export function validateHold(action: 'hold' | 'release', opts: HoldOptions): void {
  if ((opts.select === undefined) === !opts.all)
    throw new ExitError(`${action} takes --select 'key=value,...' or --all`);
  if (opts.select !== undefined) {
    if (!opts.select.trim()) throw new ExitError('--select is empty: use --all for every cluster');
    try {
      parseSelector(opts.select);
    } catch (err) {
      if (err instanceof SelectorError) throw new ExitError(`--select: ${err.message}`);
      throw err;
    }
  }
  if (!opts.by?.trim()) throw new ExitError(`--by NAME is required: ${action} records who did it`);
}

export async function holdOrRelease(
  action: 'hold' | 'release',
  opts: HoldOptions,
  client: Client
): Promise<{ workflowId: string; answer: string }> {
  validateHold(action, opts);
  const workflowId = await resolveUpgradeId(client, opts.workflowId);
  const who = { by: (opts.by as string).trim(), ...(opts.reason ? { reason: opts.reason } : {}) };
  const handle = client.workflow.getHandle(workflowId);
  const answer = await (
    action === 'hold'
      ? sendUpdate(client, handle, holdUpdate, [{ ...who, selector: opts.all ? '' : (opts.select as string).trim() }])
      : sendUpdate(client, handle, releaseUpdate, [
          { ...who, ...(opts.all ? { all: true } : { selector: (opts.select as string).trim() }) },
        ])
  ).catch(refusedUpdate(client, workflowId));
  return { workflowId, answer };
}
