/**
 * Preflight, second half: every image the target charts use must exist in its registry before the
 * DB Job or any upgrade runs. Checked on each site's own task queue (its workers reach its
 * registry), one activity per queue for all of its clusters.
 */
import { ApplicationFailure, setCurrentDetails } from '@temporalio/workflow';
import { missingImagesLine, type MissingImage } from '../runbook/images';
import type { ClusterPlan, FleetFacts, Plan, Step, UpgradeRequest } from '../runbook/types';
import type { Proxies } from './activities';
import { errorMessage } from './errors';

type Target = { cluster: ClusterPlan['cluster']; kubeVersion: string; step: Step & { kind: 'upgradeRelease' } };

export async function checkImagesAtPreflight(
  request: UpgradeRequest,
  plan: Plan,
  facts: FleetFacts,
  acts: Proxies
): Promise<void> {
  const kubeVersions = new Map([facts.controlPlane, ...facts.workers].map((f) => [f.cluster, f.kubeVersion] as const));
  const byQueue = new Map<string, Target[]>();
  for (const p of [plan.controlPlane, ...plan.workers]) {
    const step = p.steps.find((s) => s.kind === 'upgradeRelease');
    if (p.skipped || step?.kind !== 'upgradeRelease') continue;
    const queue = p.cluster.taskQueue ?? '';
    const kubeVersion = kubeVersions.get(p.cluster.name) ?? '';
    byQueue.set(queue, [...(byQueue.get(queue) ?? []), { cluster: p.cluster, kubeVersion, step }]);
  }
  if (byQueue.size === 0) return;
  setCurrentDetails('preflight: checking that every image of the target charts is in its registry');
  const queues = [...byQueue.entries()];
  const results = await Promise.allSettled(
    queues.map(([queue, targets]) =>
      acts.job.checkImages.executeWithOptions(
        {
          ...acts.options.job,
          ...(queue ? { taskQueue: queue } : {}),
          summary: `check images (${targets.length} clusters)`,
        },
        [{ targets, chartRepo: request.fleet.chartRepo, registries: request.fleet.registries ?? [] }]
      )
    )
  );
  const missing: MissingImage[] = [];
  const problems: string[] = [];
  results.forEach((r, i) => {
    if (r.status === 'fulfilled') missing.push(...r.value.missing);
    else problems.push(`image check on ${queues[i]?.[0] || 'the default task queue'}: ${errorMessage(r.reason)}`);
  });
  if (missing.length > 0) problems.unshift(`images missing from their registries: ${missingImagesLine(missing)}`);
  if (problems.length > 0)
    throw ApplicationFailure.nonRetryable(
      `preflight failed, nothing was changed: ${problems.join('; ')}`,
      'PreflightFailed'
    );
}
