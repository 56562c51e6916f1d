/**
 * The CRD preview against real kube-apiservers with the real kubectl: what it says for
 * helm-installed CRDs, CRDs whose fields other managers own, a downgrade, a deleted CRD and CRDs
 * already at the target, how many kubectl processes one preview of a cluster runs, and that it
 * changes nothing.
 */
import { execa } from 'execa';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chartRepoSession } from '../../activities/chart-repo';
import { crdPreviewLines, previewCrds, type CrdChange } from '../../activities/crd-preview';
import { crdActivities } from '../../activities/crds';
import { createRunner, type CommandRunner } from '../../activities/exec';
import type { ClusterRef, Step } from '../../runbook/types';
import { startSandbox, type Sandbox, type SandboxCluster } from '../../sandbox';
import { skoalaInitChart } from '../../sandbox/chart-sources';
import { realActivityEnv } from '../helpers/activity-env';

const NS = 'skoala-system';
const CONTOUR = 'charts/contour-provisioner/crds/contour.yaml';
const GATEWAY_API = 'charts/contour-provisioner-prereq/crds/gateway-api.yaml';
const FX = '.metadata.annotations.fixtures.skoala-upgrade/chart-version';
const GW = '.metadata.annotations.gateway.networking.k8s.io/bundle-version';
const GATEWAYS = 'gateways.gateway.networking.k8s.io';
const HTTPROUTES = 'httproutes.gateway.networking.k8s.io';

let sb: Sandbox;
let workDir: string;

/** The runner the worker uses, counting the kubectl processes it starts (verb and kind of each). */
function countingRunner(): { run: CommandRunner; kubectl: string[] } {
  const real = createRunner({ helm: sb.tools.helm, kubectl: sb.tools.kubectl, env: sb.helmEnv });
  const kubectl: string[] = [];
  const run: CommandRunner = (tool, argv, opts) => {
    if (tool === 'kubectl') kubectl.push(argv.slice(4, 6).join(' '));
    return real(tool, argv, opts);
  };
  return { run, kubectl };
}

const ref = (c: SandboxCluster): ClusterRef => ({
  name: c.name,
  kubeconfig: c.kubeconfig,
  context: c.context,
  namespace: NS,
});

const step = (): Step & { kind: 'reapplyCrds' } => ({
  kind: 'reapplyCrds',
  chart: 'skoala-init',
  repo: { name: 'skoala', url: sb.chartRepo.url },
  version: '0.19.2',
  chartFiles: [CONTOUR, GATEWAY_API],
  extraFiles: [],
  allowDowngrade: false,
});

async function preview(c: SandboxCluster): Promise<{ changes: CrdChange[]; kubectl: string[] }> {
  const { run, kubectl } = countingRunner();
  const changes = await previewCrds(
    run,
    chartRepoSession(run, { ...process.env, ...sb.helmEnv }),
    workDir,
    ref(c),
    step()
  );
  return { changes, kubectl };
}

const kubectl = (c: SandboxCluster, args: string[], input?: string) =>
  execa(sb.tools.kubectl, ['--kubeconfig', c.kubeconfig, '--context', c.context, ...args], input ? { input } : {});

/** One CRD document of a fixture chart version, edited. */
function fixtureDoc(version: string, file: string, name: string, edit: (doc: string) => string = (d) => d): string {
  const doc = (skoalaInitChart(version)[file] ?? '').split(/^---\n/m).find((d) => d.includes(`name: ${name}\n`));
  if (!doc) throw new Error(`no ${name} in the ${version} fixture chart`);
  return edit(doc);
}

/** Every CRD's resourceVersion: any write to a CRD changes it. */
const crdVersions = async (c: SandboxCluster): Promise<string> =>
  (
    await kubectl(c, [
      'get',
      'crd',
      '-o',
      'jsonpath={range .items[*]}{.metadata.name}={.metadata.resourceVersion}{"\\n"}{end}',
    ])
  ).stdout;

const crd = (name: string, action: CrdChange['action'], over: Partial<CrdChange> = {}): CrdChange => ({
  cluster: 'worker-1',
  crd: name,
  action,
  customResources: 0,
  conflicts: [],
  ...over,
});
const helmOwns = (...fields: string[]) => [{ manager: 'helm', fields }];

const CONTOUR_CRDS = [
  'contourconfigurations.projectcontour.io',
  'contourdeployments.projectcontour.io',
  'extensionservices.projectcontour.io',
  'httpproxies.projectcontour.io',
  'tlscertificatedelegations.projectcontour.io',
];
const GATEWAY_CRDS = [
  'gatewayclasses.gateway.networking.k8s.io',
  GATEWAYS,
  'grpcroutes.gateway.networking.k8s.io',
  HTTPROUTES,
  'referencegrants.gateway.networking.k8s.io',
  'tcproutes.gateway.networking.k8s.io',
  'tlsroutes.gateway.networking.k8s.io',
  'udproutes.gateway.networking.k8s.io',
];

beforeAll(async () => {
  sb = await startSandbox({ workers: 2, installVersion: '0.18.0', log: () => {} });
  workDir = await mkdtemp(path.join(tmpdir(), 'crd-preview-e2e-'));
  const [w1, w2] = sb.workers as [SandboxCluster, SandboxCluster];
  // worker-1 as helm left it, plus a user's HTTPProxy: the preview counts it.
  await kubectl(
    w1,
    ['apply', '-n', 'default', '-f', '-'],
    'apiVersion: projectcontour.io/v1\nkind: HTTPProxy\nmetadata: { name: shop }\nspec: { virtualhost: { fqdn: shop.example.com } }\n'
  );
  // worker-2: other managers (an applier and kubectl annotate), a newer bundle, a deleted CRD and
  // one CRD already at the target version.
  const ssa = (manager: string, doc: string) =>
    kubectl(w2, ['apply', '--server-side', '--field-manager', manager, '--force-conflicts', '-f', '-'], doc);
  await ssa(
    'someone-else',
    fixtureDoc('0.18.0', GATEWAY_API, GATEWAYS, (d) =>
      d.replace('chart-version: "0.18.0"', 'chart-version: "0.18.0-patched"')
    )
  );
  await ssa(
    'someone-else',
    fixtureDoc('0.18.0', CONTOUR, 'tlscertificatedelegations.projectcontour.io', (d) =>
      d.replace('chart-version: "0.18.0"', 'chart-version: "0.18.0-theirs"')
    )
  );
  await ssa('skoala-upgrade', fixtureDoc('0.19.2', GATEWAY_API, 'gatewayclasses.gateway.networking.k8s.io'));
  await kubectl(w2, ['annotate', 'crd', HTTPROUTES, 'gateway.networking.k8s.io/bundle-version=v1.99.0', '--overwrite']);
  await kubectl(w2, ['delete', 'crd', 'udproutes.gateway.networking.k8s.io', '--wait']);
});
afterAll(async () => {
  await sb?.stop();
  if (workDir) await rm(workDir, { recursive: true, force: true });
});

describe('the CRD preview on real API servers', () => {
  it('helm-installed CRDs: each field helm owns that the chart changes, the custom resources, in four kubectl calls', async () => {
    const w1 = sb.workers[0] as SandboxCluster;
    const before = await crdVersions(w1);
    const { changes, kubectl: calls } = await preview(w1);
    expect(changes).toEqual([
      ...CONTOUR_CRDS.map((n) =>
        crd(n, 'change', { conflicts: helmOwns(FX), customResources: n === 'httpproxies.projectcontour.io' ? 1 : 0 })
      ),
      ...GATEWAY_CRDS.map((n) => crd(n, 'change', { conflicts: helmOwns(FX, GW) })),
    ]);
    // The installed CRDs, one dry run of all of them, the forced one (conflicts met), the custom resources.
    expect(calls).toEqual([
      'get crd',
      'apply --server-side',
      'apply --server-side',
      `get ${[...CONTOUR_CRDS, ...GATEWAY_CRDS].join(',')}`,
    ]);
    expect(await crdVersions(w1)).toBe(before);
  });

  it('other managers, a downgrade, a deleted CRD and one at the target: as the API server says, twice the same', async () => {
    const w2 = sb.workers[1] as SandboxCluster;
    const before = await crdVersions(w2);
    const first = await preview(w2);
    const at = (n: string, action: CrdChange['action'], over: Partial<CrdChange> = {}) =>
      crd(n, action, { cluster: 'worker-2', ...over });
    expect(first.changes).toEqual([
      ...CONTOUR_CRDS.slice(0, 4).map((n) => at(n, 'change', { conflicts: helmOwns(FX) })),
      at('tlscertificatedelegations.projectcontour.io', 'change', {
        conflicts: [{ manager: 'someone-else', fields: [FX] }],
      }),
      at('gatewayclasses.gateway.networking.k8s.io', 'unchanged'),
      at(GATEWAYS, 'change', {
        conflicts: [
          { manager: 'someone-else', fields: [FX, GW] },
          { manager: 'helm', fields: [GW] },
        ],
      }),
      at('grpcroutes.gateway.networking.k8s.io', 'change', { conflicts: helmOwns(FX, GW) }),
      at(HTTPROUTES, 'change', {
        conflicts: [
          { manager: 'helm', fields: [FX] },
          { manager: 'kubectl-annotate', fields: [GW] },
        ],
        downgrade: { installed: 'v1.99.0', chart: 'v1.19.2' },
      }),
      ...GATEWAY_CRDS.slice(4, 7).map((n) => at(n, 'change', { conflicts: helmOwns(FX, GW) })),
      at('udproutes.gateway.networking.k8s.io', 'create'),
    ]);
    expect(crdPreviewLines(first.changes).filter((l) => l.includes('DOWNGRADE'))).toEqual([
      "  DOWNGRADE: installed v1.99.0 is newer than the chart's v1.19.2; refused unless --force-crd-reapply",
    ]);
    expect(first.kubectl).toHaveLength(4);
    // The approval is re-checked with a second preview: the same answer.
    const second = await preview(w2);
    expect(second.changes).toEqual(first.changes);
    expect(second.kubectl).toEqual(first.kubectl);
    expect(await crdVersions(w2)).toBe(before);
  });

  it('after the CRD step: everything unchanged, no conflicts, and no forced dry run', async () => {
    const w1 = sb.workers[0] as SandboxCluster;
    const { run } = countingRunner();
    const env = realActivityEnv();
    const acts = crdActivities({ run, repos: chartRepoSession(run, { ...process.env, ...sb.helmEnv }), workDir });
    await env.run(acts.reapplyCrds, { upgradeId: 'u-e2e', cluster: ref(w1), step: step() });
    const { changes, kubectl: calls } = await preview(w1);
    expect(changes.map((c) => [c.crd, c.action, c.conflicts])).toEqual(
      [...CONTOUR_CRDS, ...GATEWAY_CRDS].map((n) => [n, 'unchanged', []])
    );
    expect(changes.find((c) => c.crd === 'httpproxies.projectcontour.io')?.customResources).toBe(1);
    expect(calls.map((c) => c.split(' ')[0])).toEqual(['get', 'apply', 'get']);
  });
});
