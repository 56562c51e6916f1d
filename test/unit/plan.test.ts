/**
 * planUpgrade on a fleet of one control plane and two workers: which steps, in which order, with
 * which values, and when the plan is refused.
 */
import { describe, expect, it } from 'vitest';
import { commandsOfStep } from '../../runbook/commands';
import { DEFAULT_HEALTH_TIMEOUT_MS, PlanRefused, planUpgrade, rulesFor } from '../../runbook/plan';
import { decideRules, type RuleDecisions } from '../../runbook/rules';
import type {
  ClusterFacts,
  ClusterPlan,
  CrdRecord,
  Fleet,
  FleetFacts,
  ReleaseFacts,
  Step,
  UpgradeOptions,
  UpgradeRequest,
} from '../../runbook/types';

const REPO = { name: 'skoala', url: 'https://release.daocloud.io/chartrepo/skoala' };
const CONTOUR = 'charts/contour-provisioner/crds/contour.yaml';
const GATEWAY_API = 'charts/contour-provisioner-prereq/crds/gateway-api.yaml';
const HIGRESS = 'charts/contour-provisioner/crds/higress.gen.yaml';

function fleetOf(over: Partial<Fleet> = {}): Fleet {
  return {
    name: 'prod',
    chartRepo: REPO,
    controlPlane: { name: 'global', kubeconfig: '/kc/global', namespace: 'skoala-system' },
    workers: [
      { name: 'w1', kubeconfig: '/kc/w1', namespace: 'skoala-system' },
      { name: 'w2', context: 'w2-admin', namespace: 'skoala-system' },
    ],
    valuesFiles: { skoala: [], skoalaInit: [] },
    dbMigrationJob: '/ops/job.yaml',
    extraCrds: [],
    ...over,
  };
}

const T0 = '2025-01-01T00:00:00Z';

/** A release whose newest revision is deployed, as preflight reads it (by someone else: not ours). */
const deployed = (chartVersion: string, revision = 3): ReleaseFacts => ({
  installed: true,
  chartVersion,
  revision,
  status: 'deployed',
  description: 'Upgrade complete',
  historyLine: `revision ${revision} (deployed, chart-${chartVersion}, ${T0}): Upgrade complete`,
  ours: false,
  updated: T0,
  lastDeployed: { revision, chartVersion },
});

/** A newest revision that is not deployed, on top of the deployed one `base`. */
function onTop(
  base: { revision: number; chartVersion: string },
  newest: { chartVersion: string; status: string; ours: boolean; description?: string },
  release = 'skoala-init'
): ReleaseFacts {
  const revision = base.revision + 1;
  const description = newest.description ?? (newest.status.startsWith('pending-') ? 'Preparing upgrade' : 'failed');
  return {
    installed: true,
    chartVersion: newest.chartVersion,
    revision,
    status: newest.status,
    description,
    historyLine: `revision ${revision} (${newest.status}, ${release}-${newest.chartVersion}, ${T0}): ${description}`,
    ours: newest.ours,
    updated: T0,
    lastDeployed: base,
  };
}

const crdRecord = (version: string): CrdRecord => ({ version, upgradeId: 'u-0', at: T0 });

const clusterFacts = (
  cluster: string,
  release: ReleaseFacts,
  kubeVersion = '1.33.1',
  crds?: CrdRecord
): ClusterFacts => ({
  cluster,
  kubeVersion,
  release,
  ...(crds ? { crds } : {}),
});

/** Every cluster at `from` (or not installed when undefined), unless overridden. */
function factsAt(
  from: string | undefined,
  over: { cp?: ReleaseFacts; w1?: ClusterFacts; w2?: ClusterFacts } = {}
): FleetFacts {
  const rel = from === undefined ? { installed: false } : deployed(from);
  return {
    controlPlane: clusterFacts('global', over.cp ?? rel),
    workers: [over.w1 ?? clusterFacts('w1', rel), over.w2 ?? clusterFacts('w2', rel)],
  };
}

function requestFor(to: string, opts: Partial<UpgradeOptions> = {}, fleet: Fleet = fleetOf()): UpgradeRequest {
  return {
    upgradeId: 'u-1',
    fleet,
    options: {
      targetVersion: to,
      allowDowngrade: false,
      dbMigration: 'auto',
      forceCrdReapply: false,
      maxParallel: 2,
      ...opts,
    },
  };
}

const kinds = (p: ClusterPlan) => p.steps.map((s) => s.kind);
function stepOf<K extends Step['kind']>(p: ClusterPlan, kind: K): Step & { kind: K } {
  const found = p.steps.find((s): s is Step & { kind: K } => s.kind === kind);
  if (!found) throw new Error(`no ${kind} step in ${p.cluster.name}'s plan: ${kinds(p).join(', ')}`);
  return found;
}

function refusal(fn: () => unknown): PlanRefused {
  try {
    fn();
  } catch (err) {
    if (err instanceof PlanRefused) return err;
    throw err;
  }
  throw new Error('the plan was not refused');
}

describe('0.18.0 -> 0.19.2 (DB migration required, CRDs re-applied)', () => {
  const plan = planUpgrade(requestFor('0.19.2'), factsAt('0.18.0'));

  it('control plane: DB Job first, then the runbook order', () => {
    expect(kinds(plan.controlPlane)).toEqual([
      'runDbMigrationJob',
      'backupValues',
      'addChartRepo',
      'updateChartRepo',
      'upgradeRelease',
      'verifyWorkloads',
      'verifyRelease',
    ]);
    expect(stepOf(plan.controlPlane, 'runDbMigrationJob').manifest).toBe('/ops/job.yaml');
    expect(plan.controlPlane).toMatchObject({ role: 'control-plane', release: 'skoala', from: '0.18.0', to: '0.19.2' });
    expect(plan.controlPlane.skipped).toBeUndefined();
  });

  it('control plane: backup pinned to the installed revision, upgrade with hive and sesame tags only', () => {
    expect(stepOf(plan.controlPlane, 'backupValues')).toEqual({ kind: 'backupValues', release: 'skoala', revision: 3 });
    expect(stepOf(plan.controlPlane, 'upgradeRelease')).toEqual({
      kind: 'upgradeRelease',
      release: 'skoala',
      chart: 'skoala',
      repo: REPO,
      version: '0.19.2',
      set: [
        ['hive.image.tag', 'v0.19.2'],
        ['sesame.image.tag', 'v0.19.2'],
      ],
      useBackup: true,
      valuesFiles: [],
      fromRevision: 3,
    });
    expect(stepOf(plan.controlPlane, 'verifyRelease')).toEqual({
      kind: 'verifyRelease',
      release: 'skoala',
      version: '0.19.2',
    });
  });

  it('workers: no admission-Job deletion before 0.26.2, CRD gate then re-apply before verify', () => {
    for (const w of plan.workers) {
      expect(kinds(w)).toEqual([
        'backupValues',
        'addChartRepo',
        'updateChartRepo',
        'upgradeRelease',
        'verifyWorkloads',
        'awaitCrdApproval',
        'reapplyCrds',
        'verifyRelease',
      ]);
      expect(w).toMatchObject({ role: 'worker', release: 'skoala-init', from: '0.18.0', to: '0.19.2' });
    }
    expect(plan.workers.map((w) => w.cluster.name)).toEqual(['w1', 'w2']);
  });

  it('workers: skoala-init values without seata, CRDs from the target chart', () => {
    const w = plan.workers[0] as ClusterPlan;
    expect(stepOf(w, 'upgradeRelease').set).toEqual([
      ['nacos-operator.image.tag', 'v0.19.2'],
      ['skoala-agent.image.tag', 'v0.19.2'],
      ['sentinel-operator.image.tag', 'v0.19.2'],
    ]);
    expect(stepOf(w, 'awaitCrdApproval').manifests).toEqual([CONTOUR, GATEWAY_API]);
    expect(stepOf(w, 'reapplyCrds')).toEqual({
      kind: 'reapplyCrds',
      chart: 'skoala-init',
      repo: REPO,
      version: '0.19.2',
      chartFiles: [CONTOUR, GATEWAY_API],
      extraFiles: [],
      allowDowngrade: false,
    });
  });

  it('notes say why the DB Job runs', () => {
    expect(plan.notes.join('\n')).toMatch(/DB-migration Job: runs \(required/);
  });
});

describe('0.27.2 -> 0.28.1', () => {
  const plan = planUpgrade(requestFor('0.28.1'), factsAt('0.27.2'));

  it('control plane: no DB Job (the engine migrates itself)', () => {
    expect(kinds(plan.controlPlane)).toEqual([
      'backupValues',
      'addChartRepo',
      'updateChartRepo',
      'upgradeRelease',
      'verifyWorkloads',
      'verifyRelease',
    ]);
    expect(plan.notes.join('\n')).toMatch(/DB-migration Job: skipped \(not needed: the engine migrates its own tables/);
  });

  it('workers: admission Jobs deleted right before the upgrade', () => {
    for (const w of plan.workers) {
      expect(kinds(w)).toEqual([
        'backupValues',
        'addChartRepo',
        'updateChartRepo',
        'deleteAdmissionJobs',
        'upgradeRelease',
        'verifyWorkloads',
        'awaitCrdApproval',
        'reapplyCrds',
        'verifyRelease',
      ]);
      expect(stepOf(w, 'deleteAdmissionJobs').jobs).toEqual(['gateway-api-admission', 'gateway-api-admission-patch']);
    }
  });

  it('workers: seata-operator tag is set', () => {
    expect(stepOf(plan.workers[1] as ClusterPlan, 'upgradeRelease').set).toContainEqual([
      'seata-operator.image.tag',
      'v0.28.1',
    ]);
  });
});

describe('0.52.1 -> 0.53.0 (the chart manages its CRDs)', () => {
  it('no gate and no CRD step', () => {
    const plan = planUpgrade(requestFor('0.53.0'), factsAt('0.52.1'));
    for (const w of plan.workers) {
      expect(kinds(w)).toEqual([
        'backupValues',
        'addChartRepo',
        'updateChartRepo',
        'deleteAdmissionJobs',
        'upgradeRelease',
        'verifyWorkloads',
        'verifyRelease',
      ]);
    }
    expect(plan.notes).toContain('0.53.0 updates its own CRDs: no CRD step and no approval gate');
  });

  it('--force-crd-reapply brings the gate and the re-apply back', () => {
    const plan = planUpgrade(requestFor('0.53.0', { forceCrdReapply: true }), factsAt('0.52.1'));
    for (const w of plan.workers) {
      expect(kinds(w)).toEqual([
        'backupValues',
        'addChartRepo',
        'updateChartRepo',
        'deleteAdmissionJobs',
        'upgradeRelease',
        'verifyWorkloads',
        'awaitCrdApproval',
        'reapplyCrds',
        'verifyRelease',
      ]);
      expect(stepOf(w, 'reapplyCrds').chartFiles).toEqual([CONTOUR, GATEWAY_API, HIGRESS]);
    }
    expect(plan.notes.join('\n')).toMatch(/--force-crd-reapply/);
  });
});

describe('clusters already at the target', () => {
  it('are skipped with no steps (a worker with its CRD step recorded as done)', () => {
    const plan = planUpgrade(
      requestFor('0.28.1'),
      factsAt('0.27.2', { w2: clusterFacts('w2', deployed('0.28.1', 7), '1.33.1', crdRecord('0.28.1')) })
    );
    expect(plan.workers[1]).toMatchObject({ skipped: 'already at target', steps: [], from: '0.28.1', to: '0.28.1' });
    expect(plan.workers[0]?.skipped).toBeUndefined();
    expect(plan.workers[0]?.steps.length).toBeGreaterThan(0);
  });

  it('a control plane at the target needs no DB Job manifest even where the rule would require it', () => {
    const plan = planUpgrade(
      requestFor('0.19.2', {}, fleetOf({ dbMigrationJob: undefined })),
      factsAt('0.18.0', { cp: deployed('0.19.2', 5) })
    );
    expect(plan.controlPlane).toMatchObject({ skipped: 'already at target', steps: [] });
  });

  it('a release at the target version that is not deployed (our failed attempt) is upgraded again', () => {
    const plan = planUpgrade(
      requestFor('0.28.1'),
      factsAt('0.27.2', {
        w1: clusterFacts(
          'w1',
          onTop({ revision: 7, chartVersion: '0.27.2' }, { chartVersion: '0.28.1', status: 'failed', ours: true })
        ),
      })
    );
    expect(plan.workers[0]?.skipped).toBeUndefined();
    // from the last deployed revision, not the failed one on top of it
    expect(stepOf(plan.workers[0] as ClusterPlan, 'upgradeRelease').fromRevision).toBe(7);
  });
});

describe('fresh install (--allow-install)', () => {
  const plan = planUpgrade(
    requestFor('0.19.2', { allowInstall: true }, fleetOf({ dbMigrationJob: undefined })),
    factsAt(undefined)
  );

  it('no backup step and no DB Job', () => {
    expect(kinds(plan.controlPlane)).toEqual([
      'addChartRepo',
      'updateChartRepo',
      'upgradeRelease',
      'verifyWorkloads',
      'verifyRelease',
    ]);
    expect(kinds(plan.workers[0] as ClusterPlan)).toEqual([
      'addChartRepo',
      'updateChartRepo',
      'upgradeRelease',
      'verifyWorkloads',
      'awaitCrdApproval',
      'reapplyCrds',
      'verifyRelease',
    ]);
  });

  it('the upgrade installs without a backup and without a from-revision', () => {
    for (const p of [plan.controlPlane, ...plan.workers]) {
      const up = stepOf(p, 'upgradeRelease');
      expect(up.useBackup).toBe(false);
      expect(up.fromRevision).toBeUndefined();
      expect(up.install).toBe(true);
      expect(p.from).toBeUndefined();
    }
  });

  it('a note names the clusters and explains the missing backup and DB Job', () => {
    expect(plan.notes).toContain(
      'fresh install on global, w1, w2 (--allow-install): no values backup; a fresh skoala creates its own database schema, so the DB-migration Job is not run for it'
    );
  });

  it('without --allow-install a release that is not installed is refused, naming each cluster and the flag', () => {
    const err = refusal(() =>
      planUpgrade(requestFor('0.19.2', {}, fleetOf({ dbMigrationJob: undefined })), factsAt(undefined))
    );
    expect(err.problems).toEqual([
      'global: skoala is not installed; pass --allow-install to install it instead of upgrading',
      'w1: skoala-init is not installed; pass --allow-install to install it instead of upgrading',
      'w2: skoala-init is not installed; pass --allow-install to install it instead of upgrading',
    ]);
  });

  it('one worker without its release: only that one is refused, or installed with --allow-install', () => {
    const facts = factsAt('0.27.2', { w2: clusterFacts('w2', { installed: false }) });
    expect(refusal(() => planUpgrade(requestFor('0.28.1'), facts)).problems).toEqual([
      'w2: skoala-init is not installed; pass --allow-install to install it instead of upgrading',
    ]);

    const mixed = planUpgrade(requestFor('0.28.1', { allowInstall: true }), facts);
    const [upgraded, installed] = mixed.workers as [ClusterPlan, ClusterPlan];
    // nothing to delete or back up where nothing is installed
    expect(kinds(installed)).toEqual([
      'addChartRepo',
      'updateChartRepo',
      'upgradeRelease',
      'verifyWorkloads',
      'awaitCrdApproval',
      'reapplyCrds',
      'verifyRelease',
    ]);
    expect(stepOf(installed, 'upgradeRelease')).toMatchObject({ install: true, useBackup: false });
    expect(kinds(upgraded)).toContain('deleteAdmissionJobs');
    expect(stepOf(upgraded, 'upgradeRelease').install).toBeUndefined();
    expect(stepOf(mixed.controlPlane, 'upgradeRelease').install).toBeUndefined();
    expect(mixed.notes).toContain(
      'fresh install on w2 (--allow-install): no values backup; a fresh skoala creates its own database schema, so the DB-migration Job is not run for it'
    );
  });

  it('a control plane installed fresh gets no DB Job, even with --db-migration always', () => {
    const p = planUpgrade(requestFor('0.28.1', { allowInstall: true, dbMigration: 'always' }), factsAt(undefined));
    expect(kinds(p.controlPlane)).toEqual([
      'addChartRepo',
      'updateChartRepo',
      'upgradeRelease',
      'verifyWorkloads',
      'verifyRelease',
    ]);
  });
});

describe('downgrades', () => {
  it('are refused by default, naming the cluster and the flag', () => {
    const err = refusal(() => planUpgrade(requestFor('0.27.2'), factsAt('0.28.1')));
    expect(err.problems).toHaveLength(3);
    expect(err.problems[0]).toBe(
      'global: 0.27.2 is older than the installed 0.28.1; pass --allow-downgrade to go down'
    );
    expect(err.message).toContain('w1: 0.27.2 is older');
    expect(err.message).toContain('w2: 0.27.2 is older');
  });

  it('go ahead with allowDowngrade', () => {
    const plan = planUpgrade(requestFor('0.27.2', { allowDowngrade: true }), factsAt('0.28.1'));
    expect(plan.controlPlane).toMatchObject({ from: '0.28.1', to: '0.27.2' });
    expect(stepOf(plan.controlPlane, 'upgradeRelease').version).toBe('0.27.2');
  });

  it('one cluster ahead of the target is enough to refuse', () => {
    const err = refusal(() =>
      planUpgrade(requestFor('0.28.0'), factsAt('0.27.2', { w2: clusterFacts('w2', deployed('0.28.1')) }))
    );
    expect(err.problems).toEqual(['w2: 0.28.0 is older than the installed 0.28.1; pass --allow-downgrade to go down']);
  });
});

describe('worker Kubernetes version', () => {
  it('a worker on 1.24 is refused, naming the cluster', () => {
    const err = refusal(() =>
      planUpgrade(requestFor('0.28.1'), factsAt('0.27.2', { w2: clusterFacts('w2', deployed('0.27.2'), '1.24.17') }))
    );
    expect(err).toBeInstanceOf(PlanRefused);
    expect(err.name).toBe('PlanRefused');
    expect(err.problems).toEqual(['w2: Kubernetes 1.24.17 is below 1.25.0, which the Gateway-API CRDs need']);
  });

  it('a worker on 1.25.0 is fine', () => {
    const plan = planUpgrade(
      requestFor('0.28.1'),
      factsAt('0.27.2', { w2: clusterFacts('w2', deployed('0.27.2'), '1.25.0') })
    );
    expect(plan.workers[1]?.steps.length).toBeGreaterThan(0);
  });

  it('every problem is reported at once', () => {
    const err = refusal(() =>
      planUpgrade(
        requestFor('0.19.2', {}, fleetOf({ dbMigrationJob: undefined })),
        factsAt('0.18.0', { w1: clusterFacts('w1', deployed('0.18.0'), '1.24.0') })
      )
    );
    expect(err.problems).toHaveLength(2);
    expect(err.problems[0]).toMatch(/^w1: Kubernetes 1\.24\.0/);
    expect(err.problems[1]).toMatch(/set dbMigrationJob/);
  });
});

describe('DB-migration Job', () => {
  it('required but no manifest: refused, telling the operator to set dbMigrationJob', () => {
    const err = refusal(() =>
      planUpgrade(requestFor('0.19.2', {}, fleetOf({ dbMigrationJob: undefined })), factsAt('0.18.0'))
    );
    expect(err.message).toContain('set dbMigrationJob in the fleet file');
    expect(err.message).toContain('from 0.18.0 to 0.19.2');
  });

  it('--db-migration never skips it, manifest or not', () => {
    for (const dbMigrationJob of [undefined, '/ops/job.yaml']) {
      const plan = planUpgrade(
        requestFor('0.19.2', { dbMigration: 'never' }, fleetOf({ dbMigrationJob })),
        factsAt('0.18.0')
      );
      expect(kinds(plan.controlPlane)).not.toContain('runDbMigrationJob');
      expect(kinds(plan.controlPlane)[0]).toBe('backupValues');
      expect(plan.notes.join('\n')).toMatch(/skipped .*--db-migration never/);
    }
  });

  it('--db-migration always runs it where the rule would not', () => {
    const plan = planUpgrade(requestFor('0.28.1', { dbMigration: 'always' }), factsAt('0.27.2'));
    expect(kinds(plan.controlPlane)[0]).toBe('runDbMigrationJob');
  });

  it('--db-migration always without a manifest is refused', () => {
    const err = refusal(() =>
      planUpgrade(
        requestFor('0.28.1', { dbMigration: 'always' }, fleetOf({ dbMigrationJob: undefined })),
        factsAt('0.27.2')
      )
    );
    expect(err.message).toContain('dbMigrationJob');
  });

  it('from 0.19.x within [0.19.0, 0.22.0): not run in auto mode', () => {
    const plan = planUpgrade(requestFor('0.21.2', {}, fleetOf({ dbMigrationJob: undefined })), factsAt('0.19.0'));
    expect(kinds(plan.controlPlane)).not.toContain('runDbMigrationJob');
  });
});

describe('fleet-level options', () => {
  it('extra CRDs come after the chart ones in the gate and in the re-apply', () => {
    const plan = planUpgrade(
      requestFor('0.28.1', {}, fleetOf({ extraCrds: ['/ops/extra-a.yaml', '/ops/extra-b.yaml'] })),
      factsAt('0.27.2')
    );
    const w = plan.workers[0] as ClusterPlan;
    expect(stepOf(w, 'awaitCrdApproval').manifests).toEqual([
      CONTOUR,
      GATEWAY_API,
      '/ops/extra-a.yaml',
      '/ops/extra-b.yaml',
    ]);
    expect(stepOf(w, 'reapplyCrds')).toMatchObject({
      chartFiles: [CONTOUR, GATEWAY_API],
      extraFiles: ['/ops/extra-a.yaml', '/ops/extra-b.yaml'],
    });
  });

  it('imageRegistry sets global.imageRegistry on both releases, after the image tags', () => {
    const plan = planUpgrade(
      requestFor('0.28.1', { uiVersion: '0.19.0' }, fleetOf({ imageRegistry: 'harbor.local/dce' })),
      factsAt('0.27.2')
    );
    expect(stepOf(plan.controlPlane, 'upgradeRelease').set).toEqual([
      ['hive.image.tag', 'v0.28.1'],
      ['sesame.image.tag', 'v0.28.1'],
      ['ui.image.tag', 'v0.19.0'],
      ['global.imageRegistry', 'harbor.local/dce'],
    ]);
    for (const w of plan.workers) {
      expect(stepOf(w, 'upgradeRelease').set.at(-1)).toEqual(['global.imageRegistry', 'harbor.local/dce']);
    }
  });

  it('no imageRegistry: no global.imageRegistry', () => {
    const plan = planUpgrade(requestFor('0.28.1'), factsAt('0.27.2'));
    for (const p of [plan.controlPlane, ...plan.workers]) {
      expect(stepOf(p, 'upgradeRelease').set.map(([k]) => k)).not.toContain('global.imageRegistry');
    }
  });

  it('values files go to their own release', () => {
    const plan = planUpgrade(
      requestFor('0.28.1', {}, fleetOf({ valuesFiles: { skoala: ['/v/skoala.yaml'], skoalaInit: ['/v/init.yaml'] } })),
      factsAt('0.27.2')
    );
    expect(stepOf(plan.controlPlane, 'upgradeRelease').valuesFiles).toEqual(['/v/skoala.yaml']);
    expect(stepOf(plan.workers[0] as ClusterPlan, 'upgradeRelease').valuesFiles).toEqual(['/v/init.yaml']);
  });
});

describe('skoala-init always follows skoala', () => {
  it.each([
    ['0.19.2', '0.18.0'],
    ['0.28.1', '0.27.2'],
    ['0.53.0', '0.52.1'],
  ])('to %s: every worker targets exactly the control plane version', (to, from) => {
    // workers at different versions, one of them on another line entirely
    const plan = planUpgrade(
      requestFor(to, { allowInstall: true }),
      factsAt(from, { w1: clusterFacts('w1', deployed('0.17.1')), w2: clusterFacts('w2', { installed: false }) })
    );
    expect(plan.targetVersion).toBe(to);
    expect(plan.controlPlane.to).toBe(to);
    for (const w of plan.workers) {
      expect(w.to).toBe(plan.controlPlane.to);
      expect(stepOf(w, 'upgradeRelease').version).toBe(to);
      expect(stepOf(w, 'verifyRelease').version).toBe(to);
    }
    expect(stepOf(plan.controlPlane, 'upgradeRelease').version).toBe(to);
  });
});

describe('preflight facts', () => {
  it('facts that do not match the fleet are refused', () => {
    const facts = factsAt('0.27.2');
    facts.workers = [facts.workers[1] as ClusterFacts, facts.workers[0] as ClusterFacts];
    const err = refusal(() => planUpgrade(requestFor('0.28.1'), facts));
    expect(err.problems).toEqual(['no preflight facts for cluster w1', 'no preflight facts for cluster w2']);
  });

  it('the plan carries the upgrade ID and the target', () => {
    const plan = planUpgrade(requestFor('0.28.1'), factsAt('0.27.2'));
    expect(plan).toMatchObject({ upgradeId: 'u-1', targetVersion: '0.28.1' });
  });
});

describe('chart archives pinned by the digests preflight recorded', () => {
  const SKOALA = 'a1'.repeat(32);
  const INIT = 'b2'.repeat(32);
  const pinnedFacts = (from: string, over: Parameters<typeof factsAt>[1] = {}): FleetFacts => ({
    ...factsAt(from, over),
    chartSha256: { skoala: SKOALA, 'skoala-init': INIT },
  });

  it("each upgrade step and each CRD step carries its chart's sha256, and a note says so", () => {
    const plan = planUpgrade(requestFor('0.19.2'), pinnedFacts('0.18.0'));
    expect(stepOf(plan.controlPlane, 'upgradeRelease').chartSha256).toBe(SKOALA);
    for (const w of plan.workers) {
      expect(stepOf(w, 'upgradeRelease').chartSha256).toBe(INIT);
      expect(stepOf(w, 'reapplyCrds').chartSha256).toBe(INIT);
    }
    expect(plan.notes).toContain(
      `chart archives pinned by sha256 (skoala ${SKOALA.slice(0, 12)}, skoala-init ${INIT.slice(0, 12)}): each worker host pulls each once and refuses a copy that differs`
    );
  });

  it('a worker at the target that only finishes its CRD step pins it too', () => {
    const at = clusterFacts('w1', deployed('0.19.2'));
    const plan = planUpgrade(requestFor('0.19.2'), pinnedFacts('0.18.0', { w1: at }));
    expect(kinds(plan.workers[0] as ClusterPlan)).toEqual(['awaitCrdApproval', 'reapplyCrds', 'verifyRelease']);
    expect(stepOf(plan.workers[0] as ClusterPlan, 'reapplyCrds').chartSha256).toBe(INIT);
  });

  it('facts recorded before preflight returned digests: the same plan as before, no field, no note', () => {
    const before = planUpgrade(requestFor('0.19.2'), factsAt('0.18.0'));
    expect(JSON.stringify(before)).not.toContain('chartSha256');
    expect(before.notes.join(' ')).not.toContain('pinned');
    const pinned = planUpgrade(requestFor('0.19.2'), pinnedFacts('0.18.0'));
    const unpin = (steps: Step[]) =>
      steps.map((st) => {
        if (st.kind !== 'upgradeRelease' && st.kind !== 'reapplyCrds') return st;
        const { chartSha256: _, ...rest } = st;
        return rest;
      });
    expect(unpin(pinned.controlPlane.steps)).toEqual(before.controlPlane.steps);
    expect(pinned.workers.map((w) => unpin(w.steps))).toEqual(before.workers.map((w) => w.steps));
  });
});

describe('releases left pending or failed', () => {
  const base = { revision: 3, chartVersion: '0.27.2' };

  it.each(['pending-install', 'pending-upgrade', 'pending-rollback', 'failed'])(
    '%s by someone else: refused, naming the cluster, the status and the helm history line',
    (status) => {
      const w1 = onTop(base, { chartVersion: '0.28.1', status, ours: false });
      const err = refusal(() => planUpgrade(requestFor('0.28.1'), factsAt('0.27.2', { w1: clusterFacts('w1', w1) })));
      expect(err.problems).toEqual([
        `w1: skoala-init is ${status} and not by this upgrade (helm history: revision 4 (${status}, skoala-init-0.28.1, ${T0}): ${w1.description}); finish or roll it back first`,
      ]);
    }
  );

  it('on the control plane too, and every such cluster at once', () => {
    const cp = onTop(
      base,
      { chartVersion: '0.28.1', status: 'failed', ours: false, description: 'Upgrade "skoala" failed: timed out' },
      'skoala'
    );
    const w2 = onTop(base, { chartVersion: '0.28.1', status: 'pending-upgrade', ours: false });
    const err = refusal(() => planUpgrade(requestFor('0.28.1'), factsAt('0.27.2', { cp, w2: clusterFacts('w2', w2) })));
    expect(err.problems).toEqual([
      `global: skoala is failed and not by this upgrade (helm history: revision 4 (failed, skoala-0.28.1, ${T0}): Upgrade "skoala" failed: timed out); finish or roll it back first`,
      `w2: skoala-init is pending-upgrade and not by this upgrade (helm history: revision 4 (pending-upgrade, skoala-init-0.28.1, ${T0}): Preparing upgrade); finish or roll it back first`,
    ]);
  });

  it.each(['pending-upgrade', 'failed'])(
    '%s by this upgrade (a rerun): planned, from the last deployed revision',
    (status) => {
      const w1 = onTop(base, { chartVersion: '0.28.1', status, ours: true });
      const plan = planUpgrade(requestFor('0.28.1'), factsAt('0.27.2', { w1: clusterFacts('w1', w1) }));
      const w = plan.workers[0] as ClusterPlan;
      expect(w.skipped).toBeUndefined();
      expect(w.from).toBe('0.27.2');
      expect(stepOf(w, 'backupValues')).toEqual({ kind: 'backupValues', release: 'skoala-init', revision: 3 });
      expect(stepOf(w, 'upgradeRelease')).toMatchObject({ fromRevision: 3, useBackup: true, version: '0.28.1' });
    }
  );
});

describe('the last deployed revision is what an upgrade starts from', () => {
  it('worker: a failed revision of ours on top of a deployed one: from and fromRevision are the deployed one', () => {
    // revision 5 failed at 0.28.1 on top of revision 4, deployed at 0.27.1
    const w1 = onTop({ revision: 4, chartVersion: '0.27.1' }, { chartVersion: '0.28.1', status: 'failed', ours: true });
    const plan = planUpgrade(requestFor('0.28.1'), factsAt('0.27.2', { w1: clusterFacts('w1', w1) }));
    const w = plan.workers[0] as ClusterPlan;
    expect(w).toMatchObject({ from: '0.27.1', to: '0.28.1' });
    expect(stepOf(w, 'backupValues').revision).toBe(4);
    expect(stepOf(w, 'upgradeRelease').fromRevision).toBe(4);
  });

  it('control plane: the DB rule reads the last deployed version, not the failed one on top', () => {
    // a failed 0.19.2 on top of a deployed 0.18.0: the schema is still 0.18.0's, so the Job is required
    const cp = onTop(
      { revision: 6, chartVersion: '0.18.0' },
      { chartVersion: '0.19.2', status: 'failed', ours: true },
      'skoala'
    );
    const request = requestFor('0.19.2');
    const facts = factsAt('0.18.0', { cp });
    const plan = planUpgrade(request, facts);
    expect(plan.controlPlane).toMatchObject({ from: '0.18.0', to: '0.19.2' });
    expect(kinds(plan.controlPlane)[0]).toBe('runDbMigrationJob');
    expect(stepOf(plan.controlPlane, 'upgradeRelease').fromRevision).toBe(6);
    expect(stepOf(plan.controlPlane, 'backupValues').revision).toBe(6);
    expect(rulesFor(request, facts).dbMigrationNeed).toBe('required');
  });

  it('a downgrade is judged against the last deployed version too', () => {
    // pending 0.29.0 of ours on top of 0.28.1: going to 0.28.1 is no downgrade
    const w1 = onTop(
      { revision: 3, chartVersion: '0.28.1' },
      { chartVersion: '0.29.0', status: 'pending-upgrade', ours: true }
    );
    expect(() => planUpgrade(requestFor('0.28.1'), factsAt('0.27.2', { w1: clusterFacts('w1', w1) }))).not.toThrow();
  });
});

describe('workers already at the target (a rerun finishes the CRD step)', () => {
  const atTarget = (name: string, version: string, crds?: CrdRecord) =>
    clusterFacts(name, deployed(version, 7), '1.33.1', crds);

  it.each([
    ['no CRD record', undefined],
    ['a CRD record of an earlier version', crdRecord('0.27.2')],
  ])('%s: only the gate, the CRD re-apply and verify, and a note', (_, crds) => {
    const plan = planUpgrade(requestFor('0.28.1'), factsAt('0.27.2', { w2: atTarget('w2', '0.28.1', crds) }));
    const w2 = plan.workers[1] as ClusterPlan;
    expect(w2.skipped).toBeUndefined();
    expect(w2).toMatchObject({ role: 'worker', release: 'skoala-init', from: '0.28.1', to: '0.28.1' });
    expect(kinds(w2)).toEqual(['awaitCrdApproval', 'reapplyCrds', 'verifyRelease']);
    expect(stepOf(w2, 'reapplyCrds')).toEqual({
      kind: 'reapplyCrds',
      chart: 'skoala-init',
      repo: REPO,
      version: '0.28.1',
      chartFiles: [CONTOUR, GATEWAY_API],
      extraFiles: [],
      allowDowngrade: false,
    });
    expect(stepOf(w2, 'awaitCrdApproval').manifests).toEqual([CONTOUR, GATEWAY_API]);
    expect(stepOf(w2, 'verifyRelease')).toEqual({ kind: 'verifyRelease', release: 'skoala-init', version: '0.28.1' });
    expect(plan.notes).toContain(
      'already at 0.28.1 but their CRD step is not recorded as done, so only the gate and the CRD re-apply run: w2'
    );
    // w1 is upgraded in full
    expect(kinds(plan.workers[0] as ClusterPlan)).toContain('upgradeRelease');
  });

  it('the CRD record at the target: skipped, no note', () => {
    const plan = planUpgrade(
      requestFor('0.28.1'),
      factsAt('0.27.2', { w2: atTarget('w2', '0.28.1', crdRecord('0.28.1')) })
    );
    expect(plan.workers[1]).toMatchObject({ skipped: 'already at target', steps: [] });
    expect(plan.notes.join('\n')).not.toMatch(/CRD step is not recorded/);
  });

  it('--force-crd-reapply: the gate and the CRD step even with the record at the target', () => {
    const plan = planUpgrade(
      requestFor('0.53.0', { forceCrdReapply: true }),
      factsAt('0.52.1', { w1: atTarget('w1', '0.53.0', crdRecord('0.53.0')) })
    );
    const w1 = plan.workers[0] as ClusterPlan;
    expect(kinds(w1)).toEqual(['awaitCrdApproval', 'reapplyCrds', 'verifyRelease']);
    expect(stepOf(w1, 'reapplyCrds').chartFiles).toEqual([CONTOUR, GATEWAY_API, HIGRESS]);
    expect(plan.notes).toContain('already at 0.53.0; CRDs re-applied anyway (--force-crd-reapply), after the gate: w1');
  });

  it('a version whose chart manages its CRDs needs no CRD step: skipped without a record', () => {
    const plan = planUpgrade(requestFor('0.53.0'), factsAt('0.52.1', { w1: atTarget('w1', '0.53.0') }));
    expect(plan.workers[0]).toMatchObject({ skipped: 'already at target', steps: [] });
  });

  it('the whole fleet at the target, no worker recorded: the control plane is skipped, every worker gets the CRD step', () => {
    const plan = planUpgrade(requestFor('0.28.1'), factsAt('0.28.1'));
    expect(plan.controlPlane).toMatchObject({ skipped: 'already at target', steps: [] });
    for (const w of plan.workers) expect(kinds(w)).toEqual(['awaitCrdApproval', 'reapplyCrds', 'verifyRelease']);
    expect(plan.notes).toContain(
      'already at 0.28.1 but their CRD step is not recorded as done, so only the gate and the CRD re-apply run: w1, w2'
    );
  });

  it('twelve workers at the target without a CRD record: the note names ten and counts the rest', () => {
    const names = Array.from({ length: 12 }, (_, i) => `w${i + 1}`);
    const fleet = fleetOf({
      workers: names.map((name) => ({ name, kubeconfig: `/kc/${name}`, namespace: 'skoala-system' })),
    });
    const facts: FleetFacts = {
      controlPlane: clusterFacts('global', deployed('0.28.1')),
      workers: names.map((name) => atTarget(name, '0.28.1')),
    };
    const plan = planUpgrade(requestFor('0.28.1', {}, fleet), facts);
    for (const w of plan.workers) expect(kinds(w)).toEqual(['awaitCrdApproval', 'reapplyCrds', 'verifyRelease']);
    expect(plan.notes).toContain(
      'already at 0.28.1 but their CRD step is not recorded as done, so only the gate and the CRD re-apply run: w1, w2, w3, w4, w5, w6, w7, w8, w9, w10 and 2 more'
    );
  });
});

describe('planUpgrade(request, facts, rules): the given rules, not runbook/rules.ts', () => {
  const runbook = decideRules('0.18.0', '0.19.2', { dbMigration: 'auto' });

  it('without rules it plans from runbook/rules.ts for the control plane version', () => {
    const request = requestFor('0.19.2');
    const facts = factsAt('0.18.0');
    expect(rulesFor(request, facts)).toEqual(runbook);
    expect(planUpgrade(request, facts, runbook)).toEqual(planUpgrade(request, facts));
  });

  it('chartManagesCrds from the given rules: no CRD step for 0.19.2', () => {
    const plan = planUpgrade(requestFor('0.19.2'), factsAt('0.18.0'), { ...runbook, chartManagesCrds: true });
    for (const w of plan.workers) {
      expect(kinds(w)).toEqual([
        'backupValues',
        'addChartRepo',
        'updateChartRepo',
        'upgradeRelease',
        'verifyWorkloads',
        'verifyRelease',
      ]);
    }
    expect(plan.notes).toContain('0.19.2 updates its own CRDs: no CRD step and no approval gate');
  });

  it('values, CRD files, admission Jobs, the DB Job and the Kubernetes minimum all come from the rules', () => {
    const rules = {
      ...runbook,
      runDbMigration: false,
      skoalaSet: [['hive.image.tag', 'v9']] as [string, string][],
      skoalaInitSet: [['agent.tag', 'v9']] as [string, string][],
      deletesAdmissionJobs: true,
      admissionJobs: ['old-admission'],
      crdFiles: ['crds/only.yaml'],
      minWorkerKubeVersion: '1.20.0',
    };
    const plan = planUpgrade(
      requestFor('0.19.2'),
      factsAt('0.18.0', { w1: clusterFacts('w1', deployed('0.18.0'), '1.24.0') }),
      rules
    );
    expect(kinds(plan.controlPlane)).not.toContain('runDbMigrationJob');
    expect(stepOf(plan.controlPlane, 'upgradeRelease').set).toEqual([['hive.image.tag', 'v9']]);
    const w = plan.workers[0] as ClusterPlan;
    expect(stepOf(w, 'upgradeRelease').set).toEqual([['agent.tag', 'v9']]);
    expect(stepOf(w, 'deleteAdmissionJobs').jobs).toEqual(['old-admission']);
    expect(stepOf(w, 'reapplyCrds').chartFiles).toEqual(['crds/only.yaml']);
    expect(stepOf(w, 'awaitCrdApproval').manifests).toEqual(['crds/only.yaml']);
  });

  it('a DB Job the given rules require needs its manifest', () => {
    const err = refusal(() =>
      planUpgrade(requestFor('0.28.1', {}, fleetOf({ dbMigrationJob: undefined })), factsAt('0.27.2'), {
        ...decideRules('0.27.2', '0.28.1', { dbMigration: 'auto' }),
        dbMigrationNeed: 'required',
        runDbMigration: true,
      })
    );
    expect(err.problems).toEqual([
      'the DB-migration Job is required from 0.27.2 to 0.28.1: set dbMigrationJob in the fleet file to the Job manifest (or pass --db-migration never if it already ran)',
    ]);
  });
});

describe('the health check after each upgrade', () => {
  const SKOALA = ['hive', 'sesame'];
  const SKOALA_INIT = ['skoala-agent', 'nacos-operator', 'sentinel-operator', 'seata-operator'];

  /** The rules as an upgrade recorded before health checks existed has them: no healthContainers at all. */
  function recordedBeforeHealthChecks(rules: RuleDecisions): RuleDecisions {
    const old: RuleDecisions = JSON.parse(JSON.stringify(rules));
    delete old.healthContainers;
    return old;
  }

  it('right after helm upgrade on the control plane, with its re-tagged containers and the default 10 minutes', () => {
    const plan = planUpgrade(requestFor('0.28.1'), factsAt('0.27.2'));
    expect(DEFAULT_HEALTH_TIMEOUT_MS).toBe(600_000);
    const steps = kinds(plan.controlPlane);
    expect(steps[steps.indexOf('upgradeRelease') + 1]).toBe('verifyWorkloads');
    expect(steps.filter((k) => k === 'verifyWorkloads')).toHaveLength(1);
    expect(stepOf(plan.controlPlane, 'verifyWorkloads')).toEqual({
      kind: 'verifyWorkloads',
      release: 'skoala',
      version: '0.28.1',
      containers: SKOALA,
      timeoutMs: 600_000,
    });
  });

  it('right after helm upgrade on every worker: before the CRD gate, so a bad version never reaches it', () => {
    const plan = planUpgrade(requestFor('0.28.1'), factsAt('0.27.2'));
    for (const w of plan.workers) {
      const steps = kinds(w);
      expect(steps.slice(steps.indexOf('upgradeRelease'))).toEqual([
        'upgradeRelease',
        'verifyWorkloads',
        'awaitCrdApproval',
        'reapplyCrds',
        'verifyRelease',
      ]);
      expect(stepOf(w, 'verifyWorkloads')).toEqual({
        kind: 'verifyWorkloads',
        release: 'skoala-init',
        version: '0.28.1',
        containers: SKOALA_INIT,
        timeoutMs: 600_000,
      });
    }
  });

  it('its timeout comes from the options (--health-timeout)', () => {
    const plan = planUpgrade(requestFor('0.28.1', { healthTimeoutMs: 90_000 }), factsAt('0.27.2'));
    for (const p of [plan.controlPlane, ...plan.workers]) expect(stepOf(p, 'verifyWorkloads').timeoutMs).toBe(90_000);
  });

  it('a fresh install is health-checked too', () => {
    const plan = planUpgrade(
      requestFor('0.28.1', { allowInstall: true }, fleetOf({ dbMigrationJob: undefined })),
      factsAt(undefined)
    );
    for (const p of [plan.controlPlane, ...plan.workers]) {
      const steps = kinds(p);
      expect(steps[steps.indexOf('upgradeRelease') + 1]).toBe('verifyWorkloads');
    }
  });

  it('its containers come from the given rules, per release', () => {
    const rules = {
      ...decideRules('0.27.2', '0.28.1', { dbMigration: 'auto' }),
      healthContainers: { skoala: ['hive'], 'skoala-init': ['agent-x'] },
    };
    const plan = planUpgrade(requestFor('0.28.1'), factsAt('0.27.2'), rules);
    expect(stepOf(plan.controlPlane, 'verifyWorkloads').containers).toEqual(['hive']);
    for (const w of plan.workers) expect(stepOf(w, 'verifyWorkloads').containers).toEqual(['agent-x']);
  });

  it('rules recorded before health checks existed: no health step anywhere, and the note says so', () => {
    const request = requestFor('0.28.1', { healthTimeoutMs: 90_000 });
    const facts = factsAt('0.27.2');
    const plan = planUpgrade(request, facts, recordedBeforeHealthChecks(rulesFor(request, facts)));
    for (const p of [plan.controlPlane, ...plan.workers]) expect(kinds(p)).not.toContain('verifyWorkloads');
    expect(kinds(plan.workers[0] as ClusterPlan)).toEqual([
      'backupValues',
      'addChartRepo',
      'updateChartRepo',
      'deleteAdmissionJobs',
      'upgradeRelease',
      'awaitCrdApproval',
      'reapplyCrds',
      'verifyRelease',
    ]);
    const note = plan.notes.find((n) => n.startsWith('On failure: '));
    expect(note).toContain('; no workload health check;');
    expect(note).not.toContain('roll out within');
  });

  it('not in the CRD-only plan of a worker already at the target (nothing was upgraded)', () => {
    const plan = planUpgrade(
      requestFor('0.28.1'),
      factsAt('0.27.2', { w2: clusterFacts('w2', deployed('0.28.1', 7)) })
    );
    expect(kinds(plan.workers[1] as ClusterPlan)).toEqual(['awaitCrdApproval', 'reapplyCrds', 'verifyRelease']);
    expect(kinds(plan.workers[0] as ClusterPlan)).toContain('verifyWorkloads');
  });

  it('a control plane at the target is skipped, no health step; a worker still below it gets one', () => {
    const plan = planUpgrade(requestFor('0.28.1'), factsAt('0.28.1', { w1: clusterFacts('w1', deployed('0.27.2')) }));
    expect(plan.controlPlane).toMatchObject({ skipped: 'already at target', steps: [] });
    expect(kinds(plan.workers[0] as ClusterPlan)).toContain('verifyWorkloads');
  });
});

describe('the failure-policy note', () => {
  const ROLLBACK =
    'On failure: rollback (helm rollback to the pre-upgrade revision, then health-checked again; CRDs are not rolled back: they are updated in place, stay compatible with the older release, and deleting them would delete every custom resource)';
  const STOP = 'On failure: stop (a failed cluster is left as it failed)';
  const NO_AUTO_ROLLBACK =
    '; the control plane runs a DB-migration Job, so it is NOT rolled back automatically (the schema moved): it stops with the manual steps';
  const HEALTH_281 = "each release's workloads must roll out within 600 s, re-tagged containers at v0.28.1";

  const policyNotes = (notes: string[]) => notes.filter((n) => n.startsWith('On failure: '));
  const policyNote = (request: UpgradeRequest, facts: FleetFacts, rules?: RuleDecisions): string => {
    const notes = policyNotes(planUpgrade(request, facts, rules).notes);
    expect(notes).toHaveLength(1);
    return notes[0] as string;
  };

  it('every plan has exactly one, whatever it plans', () => {
    const plans = [
      planUpgrade(requestFor('0.19.2'), factsAt('0.18.0')),
      planUpgrade(requestFor('0.28.1', { onFailure: 'stop' }), factsAt('0.27.2')),
      planUpgrade(requestFor('0.53.0', { onFailure: 'rollback' }), factsAt('0.52.1')),
      planUpgrade(requestFor('0.28.1'), factsAt('0.28.1')),
      planUpgrade(
        requestFor('0.19.2', { allowInstall: true }, fleetOf({ dbMigrationJob: undefined })),
        factsAt(undefined)
      ),
    ];
    for (const plan of plans) expect(policyNotes(plan.notes)).toHaveLength(1);
  });

  it('rollback: helm rollback to the pre-upgrade revision, CRDs left in place, the health check and no budget', () => {
    expect(policyNote(requestFor('0.28.1', { onFailure: 'rollback' }), factsAt('0.27.2'))).toBe(
      `${ROLLBACK}; ${HEALTH_281}; no failure budget`
    );
  });

  it('stop: a failed cluster is left as it failed, with the timeout from the options', () => {
    expect(policyNote(requestFor('0.28.1', { onFailure: 'stop', healthTimeoutMs: 90_000 }), factsAt('0.27.2'))).toBe(
      `${STOP}; each release's workloads must roll out within 90 s, re-tagged containers at v0.28.1; no failure budget`
    );
  });

  it('no policy in the request reads as stop, as the workflows read it (only "rollback" rolls back)', () => {
    expect(policyNote(requestFor('0.28.1'), factsAt('0.27.2'))).toBe(`${STOP}; ${HEALTH_281}; no failure budget`);
  });

  it('rollback with a DB-migration Job on the control plane: it is not rolled back automatically', () => {
    expect(policyNote(requestFor('0.19.2', { onFailure: 'rollback' }), factsAt('0.18.0'))).toBe(
      `${ROLLBACK}${NO_AUTO_ROLLBACK}; each release's workloads must roll out within 600 s, re-tagged containers at v0.19.2; no failure budget`
    );
    // --db-migration always brings the Job, so the same
    expect(
      policyNote(requestFor('0.28.1', { onFailure: 'rollback', dbMigration: 'always' }), factsAt('0.27.2'))
    ).toContain(NO_AUTO_ROLLBACK);
  });

  it('no DB Job run (never, or a fresh control plane): the control plane is rolled back like the rest', () => {
    expect(
      policyNote(requestFor('0.19.2', { onFailure: 'rollback', dbMigration: 'never' }), factsAt('0.18.0'))
    ).not.toContain('DB-migration Job');
    expect(
      policyNote(
        requestFor('0.28.1', { onFailure: 'rollback', dbMigration: 'always', allowInstall: true }),
        factsAt(undefined)
      )
    ).not.toContain('DB-migration Job');
  });

  it('stop with a DB Job: nothing is rolled back anyway, so no DB clause', () => {
    expect(policyNote(requestFor('0.19.2', { onFailure: 'stop' }), factsAt('0.18.0'))).toBe(
      `${STOP}; each release's workloads must roll out within 600 s, re-tagged containers at v0.19.2; no failure budget`
    );
  });

  it('canaries are named last, in the given order, ten at most', () => {
    expect(policyNote(requestFor('0.28.1', { onFailure: 'rollback', canaries: ['w2', 'w1'] }), factsAt('0.27.2'))).toBe(
      `${ROLLBACK}; ${HEALTH_281}; no failure budget; canaries first: w2, w1`
    );
    expect(policyNote(requestFor('0.28.1', { onFailure: 'stop', canaries: [] }), factsAt('0.27.2'))).not.toContain(
      'canaries'
    );
    const names = Array.from({ length: 12 }, (_, i) => `w${i + 1}`);
    const fleet = fleetOf({
      workers: names.map((name) => ({ name, kubeconfig: `/kc/${name}`, namespace: 'skoala-system' })),
    });
    const facts: FleetFacts = {
      controlPlane: clusterFacts('global', deployed('0.27.2')),
      workers: names.map((name) => clusterFacts(name, deployed('0.27.2'))),
    };
    expect(policyNote(requestFor('0.28.1', { canaries: names }, fleet), facts)).toMatch(
      /; canaries first: w1, w2, w3, w4, w5, w6, w7, w8, w9, w10 and 2 more$/
    );
  });

  it('max failures: the budget, then no new cluster starts (0 is a budget too)', () => {
    expect(policyNote(requestFor('0.28.1', { onFailure: 'rollback', maxFailures: 2 }), factsAt('0.27.2'))).toBe(
      `${ROLLBACK}; ${HEALTH_281}; at most 2 failed worker cluster(s), then no new cluster starts`
    );
    expect(policyNote(requestFor('0.28.1', { onFailure: 'stop', maxFailures: 0 }), factsAt('0.27.2'))).toBe(
      `${STOP}; ${HEALTH_281}; at most 0 failed worker cluster(s), then no new cluster starts`
    );
  });

  it('everything at once: DB clause, health, budget, canaries, in that order', () => {
    expect(
      policyNote(
        requestFor('0.19.2', { onFailure: 'rollback', healthTimeoutMs: 300_000, maxFailures: 1, canaries: ['w1'] }),
        factsAt('0.18.0')
      )
    ).toBe(
      `${ROLLBACK}${NO_AUTO_ROLLBACK}; each release's workloads must roll out within 300 s, re-tagged containers at v0.19.2; at most 1 failed worker cluster(s), then no new cluster starts; canaries first: w1`
    );
  });
});

describe('fleet backupStore: cluster', () => {
  const inCluster = planUpgrade(
    requestFor('0.19.2', {}, fleetOf({ backupStore: 'cluster' })),
    factsAt('0.18.0', { w2: clusterFacts('w2', deployed('0.18.0', 7)) })
  );
  const onHost = planUpgrade(requestFor('0.19.2'), factsAt('0.18.0'));

  it('every backupValues step is kept in the cluster: the control plane and each worker, same revision pinning', () => {
    expect(stepOf(inCluster.controlPlane, 'backupValues')).toEqual({
      kind: 'backupValues',
      release: 'skoala',
      revision: 3,
      store: 'cluster',
    });
    expect(inCluster.workers.map((w) => stepOf(w, 'backupValues'))).toEqual([
      { kind: 'backupValues', release: 'skoala-init', revision: 3, store: 'cluster' },
      { kind: 'backupValues', release: 'skoala-init', revision: 7, store: 'cluster' },
    ]);
  });

  it('the order of the steps does not change', () => {
    expect(kinds(inCluster.controlPlane)).toEqual(kinds(onHost.controlPlane));
    expect(inCluster.workers.map(kinds)).toEqual(onHost.workers.map(kinds));
  });

  it.each([
    ['absent', fleetOf()],
    ["'dir'", fleetOf({ backupStore: 'dir' })],
  ])('backupStore %s: no store key on any backupValues step', (_, fleet) => {
    const plan = planUpgrade(requestFor('0.19.2', {}, fleet), factsAt('0.18.0'));
    for (const p of [plan.controlPlane, ...plan.workers]) {
      const step = stepOf(p, 'backupValues');
      expect(Object.keys(step)).not.toContain('store');
      expect(step).toEqual({ kind: 'backupValues', release: p.release, revision: 3 });
    }
  });

  it('a fresh install still has no backup step', () => {
    const plan = planUpgrade(
      requestFor('0.19.2', { allowInstall: true }, fleetOf({ backupStore: 'cluster' })),
      factsAt(undefined)
    );
    for (const p of [plan.controlPlane, ...plan.workers]) expect(kinds(p)).not.toContain('backupValues');
  });

  it('commandsOfStep prints helm get values, then kubectl create of the Secret with the values on stdin', () => {
    const [w1, w2] = inCluster.workers as [ClusterPlan, ClusterPlan];
    expect(commandsOfStep(w1.cluster, stepOf(w1, 'backupValues'))).toEqual([
      {
        tool: 'helm',
        argv: [
          '--kubeconfig',
          '/kc/w1',
          'get',
          'values',
          'skoala-init',
          '-n',
          'skoala-system',
          '--revision',
          '3',
          '-o',
          'yaml',
        ],
      },
      {
        tool: 'kubectl',
        argv: [
          '--kubeconfig',
          '/kc/w1',
          'create',
          '-n',
          'skoala-system',
          '-f',
          '-',
          '-o',
          'name',
          '<Secret with the values, on stdin>',
        ],
      },
    ]);
    // A context-only cluster: helm's --kube-context, kubectl's --context.
    expect(commandsOfStep(w2.cluster, stepOf(w2, 'backupValues'))).toEqual([
      {
        tool: 'helm',
        argv: [
          '--kube-context',
          'w2-admin',
          'get',
          'values',
          'skoala-init',
          '-n',
          'skoala-system',
          '--revision',
          '7',
          '-o',
          'yaml',
        ],
      },
      {
        tool: 'kubectl',
        argv: [
          '--context',
          'w2-admin',
          'create',
          '-n',
          'skoala-system',
          '-f',
          '-',
          '-o',
          'name',
          '<Secret with the values, on stdin>',
        ],
      },
    ]);
    const cp = inCluster.controlPlane;
    expect(commandsOfStep(cp.cluster, stepOf(cp, 'backupValues')).map((c) => [c.tool, ...c.argv])).toEqual([
      [
        'helm',
        '--kubeconfig',
        '/kc/global',
        'get',
        'values',
        'skoala',
        '-n',
        'skoala-system',
        '--revision',
        '3',
        '-o',
        'yaml',
      ],
      [
        'kubectl',
        '--kubeconfig',
        '/kc/global',
        'create',
        '-n',
        'skoala-system',
        '-f',
        '-',
        '-o',
        'name',
        '<Secret with the values, on stdin>',
      ],
    ]);
  });

  it('without it, commandsOfStep prints only helm get values (the file is written by the worker)', () => {
    const w1 = onHost.workers[0] as ClusterPlan;
    const commands = commandsOfStep(w1.cluster, stepOf(w1, 'backupValues'));
    expect(commands.map((c) => c.tool)).toEqual(['helm']);
    expect(commands[0]?.argv).toContain('get');
  });
});
