/** The plan memo must stay far below the server's 32 KiB memo limit, whatever the fleet size. */
import { describe, expect, it } from 'vitest';
import { planUpgrade } from '../../runbook/plan';
import type { ClusterFacts } from '../../runbook/types';
import { memoOf } from '../../workflows/plan-memo';
import { fleetOf, requestFor } from '../workflow/request';

describe('memoOf', () => {
  it('groups 1,000 workers on mixed versions into a few KiB', () => {
    const fleet = fleetOf(1000);
    const facts = (name: string, i: number): ClusterFacts => {
      const chartVersion = i % 3 === 0 ? '0.19.2' : '0.18.0';
      const revision = 1 + (i % 7);
      return {
        cluster: name,
        kubeVersion: '1.30.0',
        release: {
          installed: true,
          chartVersion,
          revision,
          status: 'deployed',
          historyLine: `revision ${revision} (deployed, skoala-init-${chartVersion}, 2025-01-01T00:00:00Z): Upgrade complete`,
          ours: false,
          lastDeployed: { revision, chartVersion },
        },
        // the workers at the target finished their CRD step in an earlier run
        ...(chartVersion === '0.19.2'
          ? { crds: { version: '0.19.2', upgradeId: 'earlier', at: '2025-01-01T00:00:00Z' } }
          : {}),
      };
    };
    const plan = planUpgrade(requestFor(fleet), {
      controlPlane: facts('control-plane', 1),
      workers: fleet.workers.map((w, i) => facts(w.name, i)),
    });
    const memo = memoOf(plan);
    expect(JSON.stringify(memo).length).toBeLessThan(4096);
    expect(memo.workerGroups.map((g) => [g.from, g.skipped ?? 'upgrade', g.count])).toEqual([
      ['0.19.2', 'already at target', 334],
      ['0.18.0', 'upgrade', 666],
    ]);
    expect(memo.workerGroups[1]?.clusters).toHaveLength(10);
  });
});
