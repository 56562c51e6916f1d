/**
 * `npm run plan` and `start-upgrade --dry-run` against real sandbox clusters: the exact commands
 * per cluster, the CRD preview (server-side dry run) with custom-resource counts, the fields other
 * managers own and the CRD downgrades, the manifest diff of each upgrade (redacted), and nothing
 * changed or started.
 */
import { execa } from 'execa';
import { writeFile } from 'node:fs/promises';
import { parse } from 'yaml';
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
    // customValues: the control plane's skoala is installed with a database password of its own.
    sb = await startSandbox({ workers: 2, installVersion: '0.18.0', customValues: true, log: () => {} });
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
    // The chart archive each worker host pulls once, named by the digest preflight pinned.
    expect(out).toMatch(/note: chart archives pinned by sha256 \(skoala [0-9a-f]{12}, skoala-init [0-9a-f]{12}\)/);
    expect(out).toMatch(
      /helm --kubeconfig \S+ --kube-context control-plane upgrade --install --create-namespace -n skoala-system skoala '<chart cache>\/skoala-0\.19\.2-[0-9a-f]{64}\.tgz' -f '<values backup of skoala>' --set hive\.image\.tag=v0\.19\.2 --set sesame\.image\.tag=v0\.19\.2 --history-max 10/
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

  it('shows what each upgrade changes, with --diff and compact, and never the fixture password', async () => {
    const cp = sb.controlPlane;
    // The password as the sandbox installed it, read back raw (before any redaction): the search below can find it.
    const raw = await execa(
      sb.tools.helm,
      ['get', 'values', 'skoala', '-n', NS, '--kubeconfig', cp.kubeconfig, '-o', 'yaml'],
      { env: sb.helmEnv }
    );
    const password: unknown = (
      parse(raw.stdout) as { hive?: { configMap?: { data?: { database?: { password?: unknown } } } } }
    ).hive?.configMap?.data?.database?.password;
    if (typeof password !== 'string' || password === '') throw new Error(`no fixture password in: ${raw.stdout}`);
    expect(raw.stdout).toContain(password);

    const full = await cli(sb, ['plan', '--version', '0.19.2', '--fleet', fleet, '--diff']);
    expect(full.exitCode, full.all).toBe(0);
    expect(section(full.stdout, 'control-plane')).toContain(
      '+          image: release.daocloud.io/skoala/hive:v0.19.2'
    );
    expect(section(full.stdout, 'worker-1')).toContain('--- a/deployment/skoala-agent\trevision 1');
    expect(section(full.stdout, 'worker-1')).toContain(
      '+          image: release.daocloud.io/skoala/skoala-agent:v0.19.2'
    );

    // The compact plan, with a values file that also rotates the password: the Secret and the value
    // change, so both passwords sit in what is diffed, and neither is printed.
    const rotated = `rotated-${password}-2`;
    const valuesFile = path.join(sb.dir, 'rotate-password.yaml');
    await writeFile(valuesFile, `hive: { configMap: { data: { database: { password: ${rotated} } } } }\n`);
    const rotateFleet = await writeFleetFile(sb, path.join(sb.dir, 'fleet-rotate.yaml'), {
      valuesFiles: { skoala: [valuesFile], skoalaInit: [] },
    });
    const compact = await cli(sb, ['plan', '--version', '0.19.2', '--fleet', rotateFleet]);
    expect(compact.exitCode, compact.all).toBe(0);
    const cpPlan = section(compact.stdout, 'control-plane');
    expect(cpPlan).toContain('~ deployment/hive: image: release.daocloud.io/skoala/hive:v0.18.0 -> ...:v0.19.2');
    expect(cpPlan).toContain('~ secret/skoala-db: password: <redacted> -> <redacted, changed>');
    expect(cpPlan).toContain('~ hive.configMap.data.database.password: <redacted> -> <redacted, changed>');
    expect(cpPlan).toContain('~ hive.image.tag: v0.18.0 -> v0.19.2');
    for (const w of ['worker-1', 'worker-2'])
      expect(section(compact.stdout, w)).toContain(
        'manifest diff (skoala-init 0.18.0 -> 0.19.2, server-side dry run): 3 changed, 0 added, 0 removed, 1 unchanged\n' +
          '       ~ deployment/nacos-operator: image: release.daocloud.io/skoala/nacos-operator:v0.18.0 -> ...:v0.19.2'
      );
    expect(section(compact.stdout, 'worker-1')).toContain(
      '~ deployment/skoala-agent: image: release.daocloud.io/skoala/skoala-agent:v0.18.0 -> ...:v0.19.2'
    );
    for (const out of [full.all, compact.all]) {
      expect(out).not.toContain(password);
      expect(out).not.toContain(rotated);
    }
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
