/**
 * Whether a worker cluster may start now: not held (`npm run hold`), and inside one of its
 * maintenance windows when the fleet file gives it any. A cluster kept back gets a reason in
 * `status` ("held by ...", "waiting for window, opens at ..."), cleared when it may start.
 */
import { windowsFor, windowState, describeWindow } from '../runbook/windows';
import type { MaintenanceWindow, UpgradeRequest } from '../runbook/types';
import type { FleetStatus } from './fleet-status';
import { holdOf } from './rollout-control';

export interface StartRound {
  /** True (and the reason recorded) when the cluster may not start now. */
  keepsBack(cluster: string): boolean;
  /** How many clusters this round kept back. */
  readonly keptBack: number;
  /** The earliest time a window keeping a cluster back opens (epoch ms). */
  readonly opensAt: number | undefined;
  /** Clears the reasons of clusters no longer kept back. */
  end(): void;
}

export function startGate(request: UpgradeRequest, status: FleetStatus) {
  const all = request.fleet.windows ?? [];
  // Per cluster: its windows and a key naming that set, so a round computes each set's state once.
  const windowsOf = new Map<string, { list: MaintenanceWindow[]; key: string }>();
  const labelled = (name: string) => ({ name, labels: status.labelsOf(name) });
  let reasoned = new Set<string>();

  return {
    round(now: number): StartRound {
      const holds = status.rollout.holds ?? [];
      const states = new Map<string, ReturnType<typeof windowState>>();
      const keptNow = new Set<string>();
      let opensAt: number | undefined;
      const why = (cluster: string): string | undefined => {
        if (holds.length > 0) {
          const h = holdOf(status, cluster);
          if (h) return `held by ${h.by} (${h.selector || 'every cluster'})${h.reason ? `: ${h.reason}` : ''}`;
        }
        if (all.length === 0) return undefined;
        let mine = windowsOf.get(cluster);
        if (!mine) {
          const list = windowsFor(all, labelled(cluster));
          windowsOf.set(cluster, (mine = { list, key: list.map((w) => all.indexOf(w)).join(',') }));
        }
        if (mine.list.length === 0) return undefined;
        let state = states.get(mine.key);
        if (!state) states.set(mine.key, (state = windowState(mine.list, now)));
        if (state.open) return undefined;
        opensAt = Math.min(opensAt ?? Infinity, state.opensAt);
        return `waiting for window, opens at ${new Date(state.opensAt).toISOString()} (${mine.list.map(describeWindow).join('; ')})`;
      };
      return {
        keepsBack(cluster) {
          const reason = why(cluster);
          if (reason === undefined) return false;
          keptNow.add(cluster);
          status.notStartedBecause(cluster, reason);
          return true;
        },
        get keptBack() {
          return keptNow.size;
        },
        get opensAt() {
          return opensAt;
        },
        end() {
          for (const c of reasoned) if (!keptNow.has(c)) status.notStartedBecause(c, undefined);
          reasoned = keptNow;
        },
      };
    },
  };
}
