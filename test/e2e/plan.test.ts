/**
 * `npm run plan` and `start-upgrade --dry-run` against real sandbox clusters: the exact commands
 * per cluster, the CRD preview (server-side dry run) with custom-resource counts, the fields other
 * managers own and the CRD downgrades, and nothing changed or started.
 */
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSandbox, writeFleetFile, type Sandbox, type SandboxCluster } from '../../sandbox';
import { skoalaInitChart } from '../../sandbox/chart-sources';
import path from 'node:path';

const NS = 'skoala-system';

function cli(sb: Sandbox, args: string[]) {
  return execa(process.execPath, ['--import', 'tsx', 'scripts/cli.ts', ...args], {
    reject: false,
    all: true,
    // No Temporal anywhere: planning must not need it.
    env: {
      ...sb.helmEnv,
      SKOALA_HELM: sb.tools.helm,
      SKOALA_KUBECTL: sb.tools.kubectl,
      TEMPORAL_ADDRESS: '127.0.0.1:1',
    },
  });
}

async function revisions(sb: Sandbox): Promise<number[]> {
  return Promise.all(
    [sb.controlPlane, ...sb.workers].map(async (c) => {
      const rel = c === sb.controlPlane ? 'skoala' : 'skoala-init';
      const out = await execa(sb.tools.helm, ['history', rel, '-n', NS, '--kubeconfig', c.kubeconfig, '-o', 'json'], {
        env: sb.helmEnv,
      });
      return (JSON.parse(out.stdout) as unknown[]).length;
    })
  );
}

/** Every CRD's resourceVersion: any write to a CRD changes it. */
async function crdVersions(sb: Sandbox, c: SandboxCluster): Promise<string> {
  const out = await execa(sb.tools.kubectl, [
    '--kubeconfig',
    c.kubeconfig,
    'get',
    'crd',
    '-o',
    'jsonpath={range .items[*]}{.metadata.name}={.metadata.resourceVersion}{"\\n"}{end}',
  ]);
  return out.stdout;
}

/** One cluster's part of the printed plan: from its heading to the blank line after it. */
const section = (out: string, cluster: string): string => {
  const from = out.indexOf(`\n${cluster} (`);
  return from < 0 ? '' : out.slice(from + 1, out.indexOf('\n\n', from + 1));
};

const GATEWAYS = 'gateways.gateway.networking.k8s.io';
const HTTPROUTES = 'httproutes.gateway.networking.k8s.io';

describe('plan from 0.18.0', () => {
  let sb: Sandbox;
  let fleet: string;
  beforeAll(async () => {
    sb = await startSandbox({ workers: 2, installVersion: '0.18.0', log: () => {} });
    fleet = await writeFleetFile(sb, path.join(sb.dir, 'fleet.yaml'));
    // A user's gateway route: the CRD preview must count it.
    const w1 = sb.workers[0];
    if (!w1) throw new Error('no worker');
    await execa(sb.tools.kubectl, ['--kubeconfig', w1.kubeconfig, 'apply', '-n', 'default', '-f', '-'], {
      input:
        'apiVersion: projectcontour.io/v1\nkind: HTTPProxy\nmetadata: { name: shop }\nspec: { virtualhost: { fqdn: shop.example.com } }\n',
    });
    // On worker-2, someone else takes a field of one CRD over (server-side, forced), and a newer
    // Gateway-API bundle is installed for another: the preview must name both.
    const w2 = sb.workers[1];
    if (!w2) throw new Error('no worker-2');
    const gatewayApi = skoalaInitChart('0.18.0')['charts/contour-provisioner-prereq/crds/gateway-api.yaml'] ?? '';
    const theirs = gatewayApi
      .split(/^---\n/m)
      .find((doc) => doc.includes(`name: ${GATEWAYS}`))
      ?.replace('chart-version: "0.18.0"', 'chart-version: "0.18.0-patched"');
    if (!theirs?.includes('0.18.0-patched')) throw new Error('no gateways CRD in the fixture chart');
    const k2 = [sb.tools.kubectl, '--kubeconfig', w2.kubeconfig] as const;
    await execa(
      k2[0],
      [...k2.slice(1), 'apply', '--server-side', '--field-manager', 'someone-else', '--force-conflicts', '-f', '-'],
      {
        input: theirs,
      }
    );
    await execa(k2[0], [
      ...k2.slice(1),
      'annotate',
      'crd',
      HTTPROUTES,
      'gateway.networking.k8s.io/bundle-version=v1.99.0',
      '--overwrite',
    ]);
  });
  afterAll(async () => {
    await sb?.stop();
  });

  it('prints the exact commands per cluster and the CRD preview, changing nothing', async () => {
    const before = await revisions(sb);
    const crdsBefore = await Promise.all(sb.workers.map((w) => crdVersions(sb, w)));
    const run = await cli(sb, ['plan', '--version', '0.19.2', '--fleet', fleet]);
    expect(run.exitCode, run.all).toBe(0);
    const out = run.stdout;
    const cp = sb.controlPlane;
    expect(out).toContain('note: DB-migration Job: runs (required by the runbook for this version range)');
    expect(out).toContain(`control-plane (control-plane, skoala 0.18.0 -> 0.19.2):`);
    expect(out).toContain(
      `1. kubectl --kubeconfig ${cp.kubeconfig} --context control-plane apply -n skoala-system -f ${path.resolve('sandbox/fixtures/db-migration-job.yaml')} -o name`
    );
    expect(out).toContain(
      `2. helm --kubeconfig ${cp.kubeconfig} --kube-context control-plane get values skoala -n skoala-system --revision 1 -o yaml`
    );
    expect(out).toMatch(
      /helm --kubeconfig \S+ --kube-context control-plane upgrade --install --create-namespace -n skoala-system skoala skoala\/skoala --version 0\.19\.2 -f '<values backup of skoala>' --set hive\.image\.tag=v0\.19\.2 --set sesame\.image\.tag=v0\.19\.2 --history-max 10/
    );
    expect(out).toContain('[gate] wait for approval of the CRD re-apply');
    expect(out).toMatch(
      /worker-1 \(worker, skoala-init 0\.18\.0 -> 0\.19\.2\):[\s\S]*CRD httpproxies\.projectcontour\.io: change, 1 custom resource\(s\)/
    );
    expect(out).toMatch(/worker-2 \(worker[\s\S]*CRD httpproxies\.projectcontour\.io: change, 0 custom resource\(s\)/);

    // Conflicts: the dry run is not forced, so the API server names the other field managers.
    const w1 = section(out, 'worker-1');
    const w2 = section(out, 'worker-2');
    expect(w1).toContain(
      'CRD httpproxies.projectcontour.io: change, 1 custom resource(s)\n       CONFLICT with helm: .metadata.annotations.fixtures.skoala-upgrade/chart-version'
    );
    expect(w1).not.toContain('someone-else');
    expect(w1).not.toContain('DOWNGRADE');
    expect(w2).toMatch(
      new RegExp(
        `CRD ${GATEWAYS}: change, 0 custom resource\\(s\\)\\n(?: +CONFLICT .*\\n)* +CONFLICT with someone-else: \\.metadata\\.annotations\\.fixtures\\.skoala-upgrade/chart-version`
      )
    );
    expect(w2).toMatch(
      new RegExp(
        `CRD ${HTTPROUTES}: change, 0 custom resource\\(s\\)\\n(?: +CONFLICT .*\\n)* +DOWNGRADE: installed v1\\.99\\.0 is newer than the chart's v1\\.19\\.2; refused unless --force-crd-reapply`
      )
    );
    expect(w2.match(/DOWNGRADE/g)).toHaveLength(1);
    expect(w2).toContain('takes conflicting fields over: it applies with --force-conflicts');

    expect(await revisions(sb)).toEqual(before);
    expect(await Promise.all(sb.workers.map((w) => crdVersions(sb, w)))).toEqual(crdsBefore);
    const jobs = await execa(sb.tools.kubectl, ['--kubeconfig', cp.kubeconfig, 'get', 'jobs', '-n', NS, '-o', 'name']);
    expect(jobs.stdout).toBe('');
  });

  it('start-upgrade --dry-run prints the same plan and needs no Temporal', async () => {
    const run = await cli(sb, ['start-upgrade', '--dry-run', '--version', '0.19.2', '--fleet', fleet]);
    expect(run.exitCode, run.all).toBe(0);
    expect(run.stdout).toContain('Plan skoala-upgrade-sandbox-0.19.2: skoala and skoala-init to 0.19.2');
  });

  it('refuses a plan whose DB migration has no manifest, naming what to provide', async () => {
    const noJob = await writeFleetFile(sb, path.join(sb.dir, 'fleet-no-job.yaml'), { dbMigrationJob: undefined });
    const run = await cli(sb, ['plan', '--version', '0.19.2', '--fleet', noJob]);
    expect(run.exitCode).toBe(2);
    expect(run.stderr).toBe(
      'skoala-upgrade: upgrade refused: the DB-migration Job is required from 0.18.0 to 0.19.2: set dbMigrationJob in the fleet file to the Job manifest (or pass --db-migration never if it already ran)'
    );
  });
});
