/** The exact helm and kubectl argument arrays: what `npm run plan` prints is what the activities run. */
import { describe, expect, it } from 'vitest';
import * as cmd from '../../runbook/commands';
import type { ClusterRef, Step } from '../../runbook/types';

const REPO = { name: 'skoala', url: 'https://release.daocloud.io/chartrepo/skoala' };
const both: ClusterRef = { name: 'w1', kubeconfig: '/kc/w1.yaml', context: 'w1-admin', namespace: 'skoala-system' };
const kubeconfigOnly: ClusterRef = { name: 'w2', kubeconfig: '/kc/w2.yaml', namespace: 'skoala-system' };
const contextOnly: ClusterRef = { name: 'w3', context: 'w3-admin', namespace: 'engine' };

const upgradeStep: Step & { kind: 'upgradeRelease' } = {
  kind: 'upgradeRelease',
  release: 'skoala-init',
  chart: 'skoala-init',
  repo: REPO,
  version: '0.28.1',
  set: [
    ['nacos-operator.image.tag', 'v0.28.1'],
    ['global.imageRegistry', 'harbor.local/dce'],
  ],
  useBackup: true,
  valuesFiles: ['/v/site.yaml', '/v/tuning.yaml'],
  fromRevision: 3,
};

const marks: cmd.HelmRunMarks = {
  description: 'skoala-upgrade skoala-upgrade-prod-0.28.1',
  labels: { 'skoala-upgrade.io/revision': 'abc.r4' },
  timeout: '600s',
};

describe('cluster flags', () => {
  it('helm uses --kube-context, kubectl uses --context', () => {
    expect(cmd.helmTarget(both)).toEqual(['--kubeconfig', '/kc/w1.yaml', '--kube-context', 'w1-admin']);
    expect(cmd.kubectlTarget(both)).toEqual(['--kubeconfig', '/kc/w1.yaml', '--context', 'w1-admin']);
  });

  it('only what is given', () => {
    expect(cmd.helmTarget(kubeconfigOnly)).toEqual(['--kubeconfig', '/kc/w2.yaml']);
    expect(cmd.kubectlTarget(kubeconfigOnly)).toEqual(['--kubeconfig', '/kc/w2.yaml']);
    expect(cmd.helmTarget(contextOnly)).toEqual(['--kube-context', 'w3-admin']);
    expect(cmd.kubectlTarget(contextOnly)).toEqual(['--context', 'w3-admin']);
  });
});

describe('helmUpgrade', () => {
  it('backup first, then the values files, then the --set pairs, then --history-max', () => {
    expect(cmd.helmUpgrade(both, upgradeStep, '/backups/u-1/w1/skoala-init.yaml')).toEqual([
      '--kubeconfig',
      '/kc/w1.yaml',
      '--kube-context',
      'w1-admin',
      'upgrade',
      '--install',
      '--create-namespace',
      '-n',
      'skoala-system',
      'skoala-init',
      'skoala/skoala-init',
      '--version',
      '0.28.1',
      '-f',
      '/backups/u-1/w1/skoala-init.yaml',
      '-f',
      '/v/site.yaml',
      '-f',
      '/v/tuning.yaml',
      '--set',
      'nacos-operator.image.tag=v0.28.1',
      '--set',
      'global.imageRegistry=harbor.local/dce',
      '--history-max',
      '10',
    ]);
  });

  it('no backup file: no -f for it', () => {
    const fresh = {
      ...upgradeStep,
      useBackup: false,
      valuesFiles: [],
      set: [['hive.image.tag', 'v0.19.2']] as [string, string][],
    };
    expect(cmd.helmUpgrade(contextOnly, { ...fresh, release: 'skoala', chart: 'skoala', version: '0.19.2' })).toEqual([
      '--kube-context',
      'w3-admin',
      'upgrade',
      '--install',
      '--create-namespace',
      '-n',
      'engine',
      'skoala',
      'skoala/skoala',
      '--version',
      '0.19.2',
      '--set',
      'hive.image.tag=v0.19.2',
      '--history-max',
      '10',
    ]);
  });

  it('never reuses values nor rolls back on its own', () => {
    const argv = cmd.helmUpgrade(both, upgradeStep, '/b.yaml', marks);
    expect(argv).not.toContain('--reuse-values');
    expect(argv).not.toContain('--atomic');
  });

  it('with marks: --description, the --labels pairs and helm --timeout come last', () => {
    expect(cmd.helmUpgrade(kubeconfigOnly, upgradeStep, '/b.yaml', marks)).toEqual([
      '--kubeconfig',
      '/kc/w2.yaml',
      'upgrade',
      '--install',
      '--create-namespace',
      '-n',
      'skoala-system',
      'skoala-init',
      'skoala/skoala-init',
      '--version',
      '0.28.1',
      '-f',
      '/b.yaml',
      '-f',
      '/v/site.yaml',
      '-f',
      '/v/tuning.yaml',
      '--set',
      'nacos-operator.image.tag=v0.28.1',
      '--set',
      'global.imageRegistry=harbor.local/dce',
      '--history-max',
      '10',
      '--description',
      'skoala-upgrade skoala-upgrade-prod-0.28.1',
      '--labels',
      'skoala-upgrade.io/revision=abc.r4',
      '--timeout',
      '600s',
    ]);
  });

  it('several labels are one comma-separated --labels value', () => {
    const argv = cmd.helmUpgrade(kubeconfigOnly, upgradeStep, undefined, {
      ...marks,
      labels: { 'skoala-upgrade.io/revision': 'abc.r4', team: 'ops' },
    });
    expect(argv.slice(argv.indexOf('--labels'), argv.indexOf('--labels') + 2)).toEqual([
      '--labels',
      'skoala-upgrade.io/revision=abc.r4,team=ops',
    ]);
  });

  it("with the host's chart archive: the file instead of <repo>/<chart> --version (nothing to fetch), every other flag kept", () => {
    const oci = { ...upgradeStep, repo: { name: 'harbor', url: 'oci://harbor.local/skoala', caFile: '/ca.pem' } };
    const file = '/work/charts/skoala-init-0.28.1-abc.tgz';
    for (const step of [upgradeStep, oci]) {
      const named = cmd.helmUpgrade(kubeconfigOnly, step, '/b.yaml', marks);
      const local = cmd.helmUpgrade(kubeconfigOnly, step, '/b.yaml', marks, file);
      const ref = named.indexOf('skoala-init') + 1;
      const flagsAfter = named.indexOf('-f');
      expect(local).toEqual([...named.slice(0, ref), file, ...named.slice(flagsAfter)]);
    }
    expect(cmd.helmUpgrade(kubeconfigOnly, upgradeStep, '/b.yaml', marks, file).slice(7, 10)).toEqual([
      'skoala-init',
      file,
      '-f',
    ]);
    expect(cmd.helmUpgradeDryRun(kubeconfigOnly, upgradeStep, '/b.yaml', file)).toEqual([
      ...cmd.helmUpgrade(kubeconfigOnly, upgradeStep, '/b.yaml', undefined, file),
      '--dry-run=server',
      '-o',
      'json',
    ]);
  });

  it('upgradeDescription names the upgrade', () => {
    expect(cmd.upgradeDescription('skoala-upgrade-prod-0.28.1')).toBe('skoala-upgrade skoala-upgrade-prod-0.28.1');
  });
});

describe('read-only commands', () => {
  it('helmGetValues pins the revision and asks for YAML', () => {
    expect(cmd.helmGetValues(both, 'skoala', 7)).toEqual([
      '--kubeconfig',
      '/kc/w1.yaml',
      '--kube-context',
      'w1-admin',
      'get',
      'values',
      'skoala',
      '-n',
      'skoala-system',
      '--revision',
      '7',
      '-o',
      'yaml',
    ]);
  });

  it('helmListRelease lists every state of exactly that release', () => {
    expect(cmd.helmListRelease(kubeconfigOnly, 'skoala-init')).toEqual([
      '--kubeconfig',
      '/kc/w2.yaml',
      'list',
      '-n',
      'skoala-system',
      '-a',
      '--filter',
      '^skoala-init$',
      '-o',
      'json',
    ]);
  });

  it('helmHistory: the newest 20 revisions of exactly that release, as JSON', () => {
    expect(cmd.helmHistory(both, 'skoala-init')).toEqual([
      '--kubeconfig',
      '/kc/w1.yaml',
      '--kube-context',
      'w1-admin',
      'history',
      'skoala-init',
      '-n',
      'skoala-system',
      '--max',
      '20',
      '-o',
      'json',
    ]);
  });

  it('kubectlReleaseLabels: only the labels of the release Secrets, one JSON map a line', () => {
    const argv = cmd.kubectlReleaseLabels(contextOnly, 'skoala');
    expect(argv).toEqual([
      '--context',
      'w3-admin',
      'get',
      'secrets',
      '-n',
      'engine',
      '-l',
      'owner=helm,name=skoala',
      '-o',
      'jsonpath={range .items[*]}{.metadata.labels}{"\\n"}{end}',
    ]);
    // never the Secrets' data, which holds the values
    expect(argv[argv.indexOf('-o') + 1]).toMatch(/^jsonpath=/);
    expect(argv.join(' ')).not.toMatch(/\.data\b/);
  });

  it('kubectlListCustomResources: the resources of several CRDs in every namespace, by name', () => {
    expect(
      cmd.kubectlListCustomResources(both, ['httpproxies.projectcontour.io', 'gateways.gateway.networking.k8s.io'])
    ).toEqual([
      '--kubeconfig',
      '/kc/w1.yaml',
      '--context',
      'w1-admin',
      'get',
      'httpproxies.projectcontour.io,gateways.gateway.networking.k8s.io',
      '-A',
      '-o',
      'name',
    ]);
  });

  it('kubectlGetCrdRecord: the record ConfigMap in the engine namespace, nothing when absent', () => {
    expect(cmd.CRD_RECORD).toBe('skoala-upgrade-crds');
    expect(cmd.kubectlGetCrdRecord(both)).toEqual([
      '--kubeconfig',
      '/kc/w1.yaml',
      '--context',
      'w1-admin',
      'get',
      'configmap',
      'skoala-upgrade-crds',
      '-n',
      'skoala-system',
      '--ignore-not-found',
      '-o',
      'json',
    ]);
  });

  it('helmShowChart names the chart through the added repository, as the runbook does', () => {
    expect(cmd.helmShowChart(REPO, 'skoala', '0.28.1')).toEqual([
      'show',
      'chart',
      'skoala/skoala',
      '--version',
      '0.28.1',
    ]);
  });

  it('kubectlServerVersion', () => {
    expect(cmd.kubectlServerVersion(both)).toEqual([
      '--kubeconfig',
      '/kc/w1.yaml',
      '--context',
      'w1-admin',
      'version',
      '-o',
      'json',
    ]);
  });

  it('kubectlGetIfExists: one object by kind and name, nothing printed when absent', () => {
    expect(cmd.kubectlGetIfExists(contextOnly, 'job', 'db')).toEqual([
      '--context',
      'w3-admin',
      'get',
      'job',
      'db',
      '-n',
      'engine',
      '--ignore-not-found',
      '-o',
      'json',
    ]);
  });
});

describe('changing commands', () => {
  it('helm repo add overwrites a same-named repo; update names it', () => {
    expect(cmd.helmRepoAdd(REPO)).toEqual([
      'repo',
      'add',
      'skoala',
      'https://release.daocloud.io/chartrepo/skoala',
      '--force-update',
    ]);
    expect(cmd.helmRepoUpdate(REPO)).toEqual(['repo', 'update', 'skoala']);
  });

  it('kubectlApplyJob prints the applied name', () => {
    expect(cmd.kubectlApplyJob(both, '/ops/job.yaml')).toEqual([
      '--kubeconfig',
      '/kc/w1.yaml',
      '--context',
      'w1-admin',
      'apply',
      '-n',
      'skoala-system',
      '-f',
      '/ops/job.yaml',
      '-o',
      'name',
    ]);
  });

  it('kubectlDeleteJobs tolerates absent Jobs', () => {
    expect(cmd.kubectlDeleteJobs(kubeconfigOnly, ['gateway-api-admission', 'gateway-api-admission-patch'])).toEqual([
      '--kubeconfig',
      '/kc/w2.yaml',
      'delete',
      'jobs',
      '-n',
      'skoala-system',
      'gateway-api-admission',
      'gateway-api-admission-patch',
      '--ignore-not-found',
    ]);
  });

  it('helmRollback to a revision, bounded by helm --timeout (5m0s unless given)', () => {
    expect(cmd.helmRollback(both, 'skoala-init', 3)).toEqual([
      '--kubeconfig',
      '/kc/w1.yaml',
      '--kube-context',
      'w1-admin',
      'rollback',
      'skoala-init',
      '3',
      '-n',
      'skoala-system',
      '--timeout',
      '5m0s',
    ]);
    expect(cmd.helmRollback(contextOnly, 'skoala', 7, '600s')).toEqual([
      '--kube-context',
      'w3-admin',
      'rollback',
      'skoala',
      '7',
      '-n',
      'engine',
      '--timeout',
      '600s',
    ]);
  });

  it('kubectlApplyFile: server-side into the engine namespace, printing the applied name', () => {
    expect(cmd.kubectlApplyFile(kubeconfigOnly, '/tmp/x/crd-record.yaml')).toEqual([
      '--kubeconfig',
      '/kc/w2.yaml',
      'apply',
      '--server-side',
      '--field-manager',
      'skoala-upgrade',
      '--force-conflicts',
      '-n',
      'skoala-system',
      '-f',
      '/tmp/x/crd-record.yaml',
      '-o',
      'name',
    ]);
  });

  it('helmPullChart untars into the given directory', () => {
    expect(cmd.helmPullChart(REPO, 'skoala-init', '0.52.1', '/work/chart-x')).toEqual([
      'pull',
      'skoala/skoala-init',
      '--version',
      '0.52.1',
      '--untar',
      '--untardir',
      '/work/chart-x',
    ]);
  });

  it('helmPullChartArchive: the archive itself into a directory (no --untar); TLS flags for OCI', () => {
    expect(cmd.helmPullChartArchive(REPO, 'skoala-init', '0.52.1', '/work/charts/.pull-x')).toEqual([
      'pull',
      'skoala/skoala-init',
      '--version',
      '0.52.1',
      '--destination',
      '/work/charts/.pull-x',
    ]);
    const oci = { name: 'harbor', url: 'oci://harbor.local/skoala/', caFile: '/ca.pem' };
    expect(cmd.helmPullChartArchive(oci, 'skoala', '0.52.1', '/d')).toEqual([
      'pull',
      'oci://harbor.local/skoala/skoala',
      '--version',
      '0.52.1',
      '--ca-file',
      '/ca.pem',
      '--destination',
      '/d',
    ]);
  });

  it('cachedChartName names the archive by its content; untarChart unpacks it, never as its owner', () => {
    expect(cmd.cachedChartName('skoala-init', '0.52.1', 'ab12')).toBe('skoala-init-0.52.1-ab12.tgz');
    expect(cmd.cachedChartName('skoala', '1.0.0+build/../x', 'ab12')).toBe('skoala-1.0.0+build_.._x-ab12.tgz');
    expect(cmd.untarChart('/c/a.tgz', '/tmp/x')).toEqual(['-xzf', '/c/a.tgz', '-C', '/tmp/x', '--no-same-owner']);
  });

  it('kubectlApplyCrd: server-side, taking over conflicting fields, never a delete', () => {
    const argv = cmd.kubectlApplyCrd(both, '/c/gateway-api.yaml');
    expect(argv).toEqual([
      '--kubeconfig',
      '/kc/w1.yaml',
      '--context',
      'w1-admin',
      'apply',
      '--server-side',
      '--force-conflicts',
      '--field-manager',
      'skoala-upgrade',
      '-f',
      '/c/gateway-api.yaml',
      '-o',
      'json',
    ]);
    expect(argv).not.toContain('delete');
    expect(argv).not.toContain('replace');
  });

  it('kubectlApplyCrd dry run asks the server', () => {
    expect(cmd.kubectlApplyCrd(contextOnly, '/c/x.yaml', true)).toEqual([
      '--context',
      'w3-admin',
      'apply',
      '--server-side',
      '--force-conflicts',
      '--field-manager',
      'skoala-upgrade',
      '--dry-run=server',
      '-f',
      '/c/x.yaml',
      '-o',
      'json',
    ]);
  });

  it('kubectlApplyCrd of several files: one run, each file its own -f, in order', () => {
    const argv = cmd.kubectlApplyCrd(contextOnly, ['/c/crd-1.yaml', '/c/crd-2.yaml'], {
      dryRun: true,
      forceConflicts: false,
    });
    expect(argv.slice(-6)).toEqual(['-f', '/c/crd-1.yaml', '-f', '/c/crd-2.yaml', '-o', 'json']);
    expect(argv).not.toContain('--force-conflicts');
  });
});

describe('commandsOfStep', () => {
  it('runDbMigrationJob: one kubectl apply', () => {
    expect(cmd.commandsOfStep(both, { kind: 'runDbMigrationJob', manifest: '/ops/job.yaml' })).toEqual([
      { tool: 'kubectl', argv: cmd.kubectlApplyJob(both, '/ops/job.yaml') },
    ]);
  });

  it('backupValues: helm get values at the revision', () => {
    expect(cmd.commandsOfStep(both, { kind: 'backupValues', release: 'skoala', revision: 3 })).toEqual([
      { tool: 'helm', argv: cmd.helmGetValues(both, 'skoala', 3) },
    ]);
  });

  it('addChartRepo and updateChartRepo', () => {
    expect(cmd.commandsOfStep(both, { kind: 'addChartRepo', repo: REPO })).toEqual([
      { tool: 'helm', argv: ['repo', 'add', 'skoala', REPO.url, '--force-update'] },
    ]);
    expect(cmd.commandsOfStep(both, { kind: 'updateChartRepo', repo: REPO })).toEqual([
      { tool: 'helm', argv: ['repo', 'update', 'skoala'] },
    ]);
  });

  it('deleteAdmissionJobs: kubectl delete jobs', () => {
    const jobs = ['gateway-api-admission', 'gateway-api-admission-patch'];
    expect(cmd.commandsOfStep(kubeconfigOnly, { kind: 'deleteAdmissionJobs', jobs })).toEqual([
      { tool: 'kubectl', argv: cmd.kubectlDeleteJobs(kubeconfigOnly, jobs) },
    ]);
  });

  /** What is only known when the upgrade runs, as `npm run plan` prints it. */
  const placeholderMarks: cmd.HelmRunMarks = {
    description: '<upgrade ID>',
    labels: { 'skoala-upgrade.io/revision': '<owner mark>' },
    timeout: '600s',
  };

  it('upgradeRelease with a backup: placeholders name the backup, the marks and the cached chart archive', () => {
    const [only, ...rest] = cmd.commandsOfStep(both, upgradeStep);
    expect(rest).toEqual([]);
    expect(only?.tool).toBe('helm');
    expect(only?.argv).toEqual(
      cmd.helmUpgrade(
        both,
        upgradeStep,
        '<values backup of skoala-init>',
        placeholderMarks,
        '<chart cache>/skoala-init-0.28.1-<sha256>.tgz'
      )
    );
    // Pinned by the plan: the archive's name says which one.
    const sha = 'ab'.repeat(32);
    expect(cmd.commandsOfStep(both, { ...upgradeStep, chartSha256: sha })[0]?.argv).toContain(
      `<chart cache>/skoala-init-0.28.1-${sha}.tgz`
    );
    expect(only?.argv.slice(-6)).toEqual([
      '--description',
      '<upgrade ID>',
      '--labels',
      'skoala-upgrade.io/revision=<owner mark>',
      '--timeout',
      '600s',
    ]);
  });

  it('upgradeRelease without a backup: no -f placeholder', () => {
    const step = { ...upgradeStep, useBackup: false, valuesFiles: [] };
    expect(cmd.commandsOfStep(both, step)).toEqual([
      {
        tool: 'helm',
        argv: cmd.helmUpgrade(both, step, undefined, placeholderMarks, '<chart cache>/skoala-init-0.28.1-<sha256>.tgz'),
      },
    ]);
    expect(cmd.commandsOfStep(both, step)[0]?.argv).not.toContain('-f');
  });

  it('awaitCrdApproval: the gate, no command', () => {
    expect(cmd.commandsOfStep(both, { kind: 'awaitCrdApproval', manifests: ['a.yaml'] })).toEqual([
      { tool: 'gate', argv: ['wait for approval of the CRD re-apply'] },
    ]);
  });

  it("reapplyCrds: the host's chart archive unpacked, one server-side apply of every file, chart files first, then the CRD record", () => {
    const step: Step = {
      kind: 'reapplyCrds',
      chart: 'skoala-init',
      repo: REPO,
      version: '0.52.1',
      chartFiles: [
        'charts/contour-provisioner/crds/contour.yaml',
        'charts/contour-provisioner-prereq/crds/gateway-api.yaml',
      ],
      extraFiles: ['/ops/extra.yaml'],
      allowDowngrade: false,
      chartSha256: 'cd'.repeat(32),
    };
    expect(cmd.commandsOfStep(both, step)).toEqual([
      {
        tool: 'tar',
        argv: ['-xzf', `<chart cache>/skoala-init-0.52.1-${'cd'.repeat(32)}.tgz`, '-C', '<tmp>', '--no-same-owner'],
      },
      {
        tool: 'kubectl',
        argv: cmd.kubectlApplyCrd(both, [
          '<tmp>/skoala-init/charts/contour-provisioner/crds/contour.yaml',
          '<tmp>/skoala-init/charts/contour-provisioner-prereq/crds/gateway-api.yaml',
          '/ops/extra.yaml',
        ]),
      },
      {
        tool: 'kubectl',
        argv: cmd.kubectlApplyFile(both, '<ConfigMap skoala-upgrade-crds: CRD step done at 0.52.1>'),
      },
    ]);
  });

  it('verifyRelease: helm history', () => {
    expect(cmd.commandsOfStep(both, { kind: 'verifyRelease', release: 'skoala-init', version: '0.28.1' })).toEqual([
      { tool: 'helm', argv: cmd.helmHistory(both, 'skoala-init') },
    ]);
  });

  it('verifyWorkloads: helm get manifest, then the check with its containers, version and timeout', () => {
    const step: Step = {
      kind: 'verifyWorkloads',
      release: 'skoala-init',
      version: '0.28.1',
      containers: ['skoala-agent', 'nacos-operator'],
      timeoutMs: 600_000,
    };
    expect(cmd.commandsOfStep(both, step)).toEqual([
      {
        tool: 'helm',
        argv: [
          '--kubeconfig',
          '/kc/w1.yaml',
          '--kube-context',
          'w1-admin',
          'get',
          'manifest',
          'skoala-init',
          '-n',
          'skoala-system',
        ],
      },
      {
        tool: 'check',
        argv: [
          'wait until every Deployment/StatefulSet/DaemonSet of skoala-init rolled out (skoala-agent, nacos-operator at v0.28.1), within 600 s',
        ],
      },
    ]);
    expect(cmd.commandsOfStep(both, step)[0]?.argv).toEqual(cmd.helmGetManifest(both, 'skoala-init'));
  });

  it("verifyWorkloads: the cluster's own flags and namespace, the timeout in whole seconds", () => {
    const step: Step = {
      kind: 'verifyWorkloads',
      release: 'skoala',
      version: '0.19.2',
      containers: ['hive'],
      timeoutMs: 90_400,
    };
    expect(cmd.commandsOfStep(contextOnly, step)).toEqual([
      { tool: 'helm', argv: ['--kube-context', 'w3-admin', 'get', 'manifest', 'skoala', '-n', 'engine'] },
      {
        tool: 'check',
        argv: ['wait until every Deployment/StatefulSet/DaemonSet of skoala rolled out (hive at v0.19.2), within 90 s'],
      },
    ]);
  });

  it('no step kind ever prints a kubectl delete of a CRD', () => {
    const steps: Step[] = [
      { kind: 'runDbMigrationJob', manifest: '/j.yaml' },
      { kind: 'backupValues', release: 'skoala-init', revision: 1 },
      { kind: 'addChartRepo', repo: REPO },
      { kind: 'updateChartRepo', repo: REPO },
      { kind: 'deleteAdmissionJobs', jobs: ['gateway-api-admission'] },
      upgradeStep,
      { kind: 'awaitCrdApproval', manifests: [] },
      {
        kind: 'reapplyCrds',
        chart: 'skoala-init',
        repo: REPO,
        version: '0.52.1',
        chartFiles: ['c.yaml'],
        extraFiles: [],
        allowDowngrade: false,
      },
      {
        kind: 'verifyWorkloads',
        release: 'skoala-init',
        version: '0.52.1',
        containers: ['skoala-agent'],
        timeoutMs: 600_000,
      },
      { kind: 'verifyRelease', release: 'skoala-init', version: '0.52.1' },
    ];
    const deletes = steps
      .flatMap((s) => cmd.commandsOfStep(both, s))
      .filter((c) => c.tool === 'kubectl' && c.argv.includes('delete'));
    expect(deletes.map((c) => c.argv.slice(c.argv.indexOf('delete'), c.argv.indexOf('delete') + 2))).toEqual([
      ['delete', 'jobs'],
    ]);
  });
});
