/**
 * `--follow`: progress until the upgrade ends or waits for an approval. A live table on a TTY
 * (with CI unset); plain lines of what changed elsewhere.
 */
import type { Client } from '@temporalio/client';
import logUpdate from 'log-update';
import type { UpgradeStatus } from '../../runbook/types';
import { renderStatus } from './render';
import { readUpgrade, type UpgradeState } from './upgrade-state';

/** `onScreen`: the live table already shows this final status, so it need not be printed again. */
export type FollowEnd = UpgradeState & { waitingFor?: string[]; onScreen?: boolean };

const liveOutput = (): boolean => Boolean(process.stdout.isTTY) && !process.env.CI;

const ENDED_WELL = new Set(['upgraded', 'already-at-target', 'skipped', 'not-started', 'rejected']);

function changes(prev: UpgradeStatus | undefined, next: UpgradeStatus): string[] {
  const lines: string[] = [];
  if (prev?.phase !== next.phase) lines.push(`phase: ${next.phase}`);
  const before = new Map(
    [prev?.controlPlane, ...(prev?.workers ?? [])].filter((c) => c !== undefined).map((c) => [c.cluster, c])
  );
  for (const c of [next.controlPlane, ...next.workers]) {
    const p = before.get(c.cluster);
    if (p?.state !== c.state || p?.step !== c.step) {
      // The step says where a cluster is, or where it stopped; an upgraded one's last step adds nothing.
      const step = c.step && !ENDED_WELL.has(c.state) ? ` (${c.step})` : '';
      lines.push(`${c.cluster}: ${c.state}${step}${c.error ? `: ${c.error}` : ''}`);
    }
  }
  return lines;
}

export interface FollowOptions {
  pollMs?: number;
  /** Stop following once some cluster waits for approval (the default), or keep going. */
  untilApproval?: boolean;
  out?: (line: string) => void;
  /** Called on every poll while running; the demo approves from here with --yes. */
  onStatus?: (s: UpgradeStatus) => Promise<void>;
}

export async function follow(client: Client, workflowId: string, opts: FollowOptions = {}): Promise<FollowEnd> {
  const out = opts.out ?? ((l: string) => console.log(l));
  const live = liveOutput() && !opts.out;
  let prev: UpgradeStatus | undefined;
  for (;;) {
    const state = await readUpgrade(client, workflowId);
    if (state.kind === 'running') {
      if (live) logUpdate(renderStatus(state.status));
      else changes(prev, state.status).forEach((l) => out(l));
      prev = state.status;
      if (opts.untilApproval !== false && state.status.pendingApprovals.length > 0) {
        if (live) logUpdate.done();
        return { ...state, waitingFor: state.status.pendingApprovals, onScreen: live };
      }
      await opts.onStatus?.(state.status);
    } else {
      if (live) logUpdate.clear();
      if (state.status && !live) changes(prev, state.status).forEach((l) => out(l));
      return state;
    }
    await new Promise((r) => setTimeout(r, opts.pollMs ?? 1000));
  }
}
