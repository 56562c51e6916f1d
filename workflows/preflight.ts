/**
 * Preflight: read every cluster and the chart repository, change nothing. Each cluster is read on
 * its own site's task queue, by the workers that will upgrade it, which also check the fleet's
 * files there. Then the version rules are decided once and recorded (a local activity).
 */
import { ApplicationFailure, setCurrentDetails } from '@temporalio/workflow';
import type { RuleDecisions } from '../runbook/rules';
import { installedVersion } from '../runbook/plan';
import type { ClusterFacts, ClusterRef, FleetFacts, UpgradeRequest } from '../runbook/types';
import type { Proxies } from './activities';
import { errorMessage } from './errors';

/** The files a cluster's steps will read, as the fleet names them. */
function filesOf(request: UpgradeRequest, cluster: ClusterRef, role: 'control-plane' | 'worker') {
  const { fleet } = request;
  const files: { field: string; path: string }[] = [];
  if (cluster.kubeconfig) files.push({ field: `${cluster.name}.kubeconfig`, path: cluster.kubeconfig });
  if (role === 'control-plane') {
    if (fleet.dbMigrationJob) files.push({ field: 'dbMigrationJob', path: fleet.dbMigrationJob });
    fleet.valuesFiles.skoala.forEach((path, i) => files.push({ field: `valuesFiles.skoala[${i}]`, path }));
  } else {
    fleet.valuesFiles.skoalaInit.forEach((path, i) => files.push({ field: `valuesFiles.skoalaInit[${i}]`, path }));
    fleet.extraCrds.forEach((path, i) => files.push({ field: `extraCrds[${i}]`, path }));
  }
  return files;
}

export async function preflight(request: UpgradeRequest, acts: Proxies): Promise<FleetFacts> {
  const { fleet, options } = request;
  setCurrentDetails('preflight: reading every cluster and the chart repository');
  const version = options.targetVersion;
  const clusters = [
    { cluster: fleet.controlPlane, role: 'control-plane' as const },
    ...fleet.workers.map((cluster) => ({ cluster, role: 'worker' as const })),
  ];
  const chartNames = ['skoala', 'skoala-init'] as const;
  const [charts, read] = await Promise.all([
    Promise.allSettled(
      chartNames.map((chart) => acts.quick.checkChartVersion({ repo: fleet.chartRepo, chart, version }))
    ),
    Promise.allSettled(
      clusters.map(({ cluster, role }) =>
        acts.quick.preflightCluster.executeWithOptions(
          {
            ...acts.options.quick,
            ...(cluster.taskQueue ? { taskQueue: cluster.taskQueue } : {}),
            summary: `preflight ${cluster.name}`,
          },
          [
            {
              upgradeId: request.upgradeId,
              cluster,
              release: role === 'control-plane' ? 'skoala' : 'skoala-init',
              files: filesOf(request, cluster, role),
            },
          ]
        )
      )
    ),
  ]);
  const names = ['chart skoala', 'chart skoala-init', ...clusters.map((c) => c.cluster.name)];
  const problems = [...charts, ...read].flatMap((r, i) =>
    r.status === 'rejected' ? [`${names[i]}: ${errorMessage(r.reason)}`] : []
  );
  if (problems.length > 0) {
    throw ApplicationFailure.nonRetryable(
      `preflight failed, nothing was changed: ${problems.join('; ')}`,
      'PreflightFailed'
    );
  }
  const [controlPlane, ...workers] = read.map((r) => (r as PromiseFulfilledResult<ClusterFacts>).value);
  // Results recorded before the check returned the archive's digest have none: their plan pins nothing.
  const chartSha256 = Object.fromEntries(
    charts.flatMap((r, i) => (r.status === 'fulfilled' && r.value.sha256 ? [[chartNames[i], r.value.sha256]] : []))
  );
  return {
    controlPlane: controlPlane as ClusterFacts,
    workers,
    ...(Object.keys(chartSha256).length > 0 ? { chartSha256 } : {}),
  };
}

/** The rules' decisions for this upgrade, recorded once in history (see activities decideRules). */
export function recordRules(request: UpgradeRequest, facts: FleetFacts, acts: Proxies): Promise<RuleDecisions> {
  const { options } = request;
  return acts.local.decideRules({
    from: installedVersion(facts.controlPlane),
    to: options.targetVersion,
    dbMigration: options.dbMigration,
    uiVersion: options.uiVersion,
  });
}
