/** Builds upgrade requests and fake fleets for workflow tests. */
import type { Fleet, ReleaseFacts, UpgradeRequest } from '../../runbook/types';
import { FakeFleet } from './fake-activities';

export function fleetOf(workers: number): Fleet {
  const ref = (name: string) => ({
    name,
    kubeconfig: `/nonexistent/${name}.kubeconfig`,
    context: name,
    namespace: 'skoala-system',
  });
  return {
    name: 'test',
    chartRepo: { name: 'skoala', url: 'http://127.0.0.1:1/charts' },
    controlPlane: ref('control-plane'),
    workers: Array.from({ length: workers }, (_, i) => ref(`worker-${i + 1}`)),
    valuesFiles: { skoala: [], skoalaInit: [] },
    dbMigrationJob: '/nonexistent/job.yaml',
    extraCrds: [],
  };
}

export function requestFor(
  fleet: Fleet,
  opts: Partial<UpgradeRequest['options']> = {},
  upgradeId = `test-${Math.random().toString(36).slice(2, 8)}`
): UpgradeRequest {
  return {
    upgradeId,
    fleet,
    options: {
      targetVersion: '0.19.2',
      allowDowngrade: false,
      dbMigration: 'auto',
      forceCrdReapply: false,
      maxParallel: 5,
      ...opts,
    },
    tuning: { retryInitialInterval: '50ms', retryMaximumAttempts: 4, approvalReminder: '1s' },
  };
}

export function fakeFleetAt(fleet: Fleet, version: string, upgradeMs = 0): FakeFleet {
  const at: ReleaseFacts = { installed: true, chartVersion: version, revision: 1, status: 'deployed' };
  const clusters = Object.fromEntries([fleet.controlPlane, ...fleet.workers].map((c) => [c.name, { ...at }]));
  return new FakeFleet({ clusters, upgradeMs });
}
