/**
 * The CRD preview (activities/crd-preview.ts) and the CRD step's downgrade guard (activities/crds.ts)
 * with a recorded runner: kubectl's conflict messages and managedFields below were captured from
 * the sandbox's kube-apiserver v1.33.13 and kubectl v1.33.0, and the manifests are the fixture
 * chart's own (sandbox/chart-sources.ts).
 */
import { chartRepoSession } from '../../activities/chart-repo';
import { ApplicationFailure } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseAllDocuments } from 'yaml';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { conflictMessages, fieldsTakenOver, parseConflicts, sameConflicts } from '../../activities/crd-conflicts';
import {
  crdDowngrade,
  crdPreviewLines,
  previewCrds,
  summarizeCrdPreview,
  type Crd,
  type CrdChange,
} from '../../activities/crd-preview';
import { crdActivities } from '../../activities/crds';
import { commandFailure } from '../../activities/errors';
import type { CommandRunner } from '../../activities/exec';
import type { ClusterRef, Step } from '../../runbook/types';
import { skoalaInitChart } from '../../sandbox/chart-sources';
import { RecordingLogger } from '../helpers/recording-logger';

const ADVICE = `Please review the fields above--they currently have other managers. Here
are the ways you can resolve this warning:
* If you intend to manage all of these fields, please re-run the apply
  command with the \`--force-conflicts\` flag.
* If you do not intend to manage all of the fields, please edit your
  manifest to remove references to the fields that should keep their
  current managers.
* You may co-own fields by updating your manifest to match the existing
  value; in this case, you'll become the manager if the other manager(s)
  stop managing the field (remove it from their configuration).
See https://kubernetes.io/docs/reference/using-api/server-side-apply/#conflicts
`;

/** kubectl's stderr, as captured: a dry run of one CRD file without --force-conflicts. */
const STDERR = {
  /** httpproxies after a helm install of 0.18.0, applying 0.19.2: helm (an update manager) owns the annotation. */
  single: `error: Apply failed with 1 conflict: conflict with "helm" using apiextensions.k8s.io/v1: .metadata.annotations.fixtures.skoala-upgrade/chart-version\n${ADVICE}`,
  /** tlscertificatedelegations after `kubectl apply --server-side --field-manager someone-else --force-conflicts`. */
  singleApplier: `error: Apply failed with 1 conflict: conflict with "someone-else": .metadata.annotations.fixtures.skoala-upgrade/chart-version\n${ADVICE}`,
  /** gateways: someone-else took the chart-version annotation over; both own the bundle version. */
  gateways: `error: Apply failed with 3 conflicts: conflicts with "helm" using apiextensions.k8s.io/v1:
- .metadata.annotations.gateway.networking.k8s.io/bundle-version
conflicts with "someone-else":
- .metadata.annotations.fixtures.skoala-upgrade/chart-version
- .metadata.annotations.gateway.networking.k8s.io/bundle-version
${ADVICE}`,
  /** httproutes after `kubectl annotate ... gateway.networking.k8s.io/bundle-version=v1.99.0 --overwrite`. */
  httproutes: `error: Apply failed with 2 conflicts: conflicts with "helm" using apiextensions.k8s.io/v1:
- .metadata.annotations.fixtures.skoala-upgrade/chart-version
conflicts with "kubectl-annotate" using apiextensions.k8s.io/v1:
- .metadata.annotations.gateway.networking.k8s.io/bundle-version
${ADVICE}`,
};

const SPEC_FIELDS = {
  'f:group': {},
  'f:names': { 'f:kind': {}, 'f:listKind': {}, 'f:plural': {}, 'f:singular': {} },
  'f:scope': {},
  'f:versions': {},
};
const HELM_SPEC = { 'f:conversion': { '.': {}, 'f:strategy': {} }, ...SPEC_FIELDS };
const V1 = 'apiextensions.k8s.io/v1';

/** managedFields (status manager left out), as captured: the stored CRD, then a forced dry run's result. */
const MANAGED = {
  gateways: {
    before: [
      {
        manager: 'someone-else',
        operation: 'Apply',
        apiVersion: V1,
        fieldsV1: {
          'f:metadata': {
            'f:annotations': {
              'f:api-approved.kubernetes.io': {},
              'f:fixtures.skoala-upgrade/chart-version': {},
              'f:gateway.networking.k8s.io/bundle-version': {},
            },
          },
          'f:spec': SPEC_FIELDS,
        },
      },
      {
        manager: 'helm',
        operation: 'Update',
        apiVersion: V1,
        fieldsV1: {
          'f:metadata': {
            'f:annotations': {
              '.': {},
              'f:api-approved.kubernetes.io': {},
              'f:gateway.networking.k8s.io/bundle-version': {},
            },
          },
          'f:spec': HELM_SPEC,
        },
      },
    ],
    after: [
      {
        manager: 'someone-else',
        operation: 'Apply',
        apiVersion: V1,
        fieldsV1: { 'f:metadata': { 'f:annotations': { 'f:api-approved.kubernetes.io': {} } }, 'f:spec': SPEC_FIELDS },
      },
      {
        manager: 'skoala-upgrade',
        operation: 'Apply',
        apiVersion: V1,
        fieldsV1: {
          'f:metadata': {
            'f:annotations': {
              'f:api-approved.kubernetes.io': {},
              'f:fixtures.skoala-upgrade/chart-version': {},
              'f:gateway.networking.k8s.io/bundle-version': {},
            },
          },
          'f:spec': SPEC_FIELDS,
        },
      },
      {
        manager: 'helm',
        operation: 'Update',
        apiVersion: V1,
        fieldsV1: {
          'f:metadata': { 'f:annotations': { '.': {}, 'f:api-approved.kubernetes.io': {} } },
          'f:spec': HELM_SPEC,
        },
      },
    ],
  },
  httpproxies: {
    before: [
      {
        manager: 'helm',
        operation: 'Update',
        apiVersion: V1,
        fieldsV1: {
          'f:metadata': { 'f:annotations': { '.': {}, 'f:fixtures.skoala-upgrade/chart-version': {} } },
          'f:spec': HELM_SPEC,
        },
      },
    ],
    // helm keeps the annotations map itself (`{}`, no longer `.`).
    after: [
      {
        manager: 'skoala-upgrade',
        operation: 'Apply',
        apiVersion: V1,
        fieldsV1: {
          'f:metadata': { 'f:annotations': { 'f:fixtures.skoala-upgrade/chart-version': {} } },
          'f:spec': SPEC_FIELDS,
        },
      },
      {
        manager: 'helm',
        operation: 'Update',
        apiVersion: V1,
        fieldsV1: { 'f:metadata': { 'f:annotations': {} }, 'f:spec': HELM_SPEC },
      },
    ],
  },
  httproutes: {
    before: [
      {
        manager: 'helm',
        operation: 'Update',
        apiVersion: V1,
        fieldsV1: {
          'f:metadata': {
            'f:annotations': {
              '.': {},
              'f:api-approved.kubernetes.io': {},
              'f:fixtures.skoala-upgrade/chart-version': {},
            },
          },
          'f:spec': HELM_SPEC,
        },
      },
      {
        manager: 'kubectl-annotate',
        operation: 'Update',
        apiVersion: V1,
        fieldsV1: { 'f:metadata': { 'f:annotations': { 'f:gateway.networking.k8s.io/bundle-version': {} } } },
      },
    ],
    // kubectl-annotate owned nothing else: the API server drops its entry altogether.
    after: [
      {
        manager: 'skoala-upgrade',
        operation: 'Apply',
        apiVersion: V1,
        fieldsV1: {
          'f:metadata': {
            'f:annotations': {
              'f:api-approved.kubernetes.io': {},
              'f:fixtures.skoala-upgrade/chart-version': {},
              'f:gateway.networking.k8s.io/bundle-version': {},
            },
          },
          'f:spec': SPEC_FIELDS,
        },
      },
      {
        manager: 'helm',
        operation: 'Update',
        apiVersion: V1,
        fieldsV1: {
          'f:metadata': { 'f:annotations': { '.': {}, 'f:api-approved.kubernetes.io': {} } },
          'f:spec': HELM_SPEC,
        },
      },
    ],
  },
};

const CONTOUR = 'charts/contour-provisioner/crds/contour.yaml';
const GATEWAY_API = 'charts/contour-provisioner-prereq/crds/gateway-api.yaml';
const REPO = { name: 'skoala', url: 'http://charts.example:8080' };
const w1: ClusterRef = { name: 'w1', kubeconfig: '/kc/w1.yaml', namespace: 'skoala-system' };
const KC = ['--kubeconfig', '/kc/w1.yaml'];

const step = (allowDowngrade = false, version = '0.19.2'): Step & { kind: 'reapplyCrds' } => ({
  kind: 'reapplyCrds',
  chart: 'skoala-init',
  repo: REPO,
  version,
  chartFiles: [CONTOUR, GATEWAY_API],
  extraFiles: [],
  allowDowngrade,
});

/** The fixture chart's CRDs of a version, by name. */
function fixtureCrds(version: string): Map<string, Crd> {
  const files = skoalaInitChart(version);
  const docs = [files[CONTOUR], files[GATEWAY_API]].flatMap((text) =>
    parseAllDocuments(text ?? '').map((d) => d.toJS() as Crd | null)
  );
  return new Map(docs.filter((d): d is Crd => d !== null).map((d) => [d.metadata.name, d]));
}

/** What one CRD looks like on the recorded cluster, and how kubectl answers for it. */
interface ClusterCrd {
  installed: Crd;
  /** The unforced dry run fails with this stderr (a conflict). */
  conflict?: string;
  /** managedFields of the forced dry run's result. */
  after?: unknown[];
}

interface Call {
  tool: string;
  argv: string[];
  /** The CRDs named in the files an apply was given. */
  crd?: string;
}

/**
 * A kubectl/helm double: `helm pull` writes the fixture chart, `get crd` answers from `cluster`,
 * `get <kinds> -o name` lists `resources`. An apply of one or more files, as kubectl 1.33 does it
 * (seen on the sandbox): each object on its own; any error prints no object, only the errors,
 * each without the object's name, `error: ` before a lone one. That fails like the runner, or is
 * returned as is when the caller allows failure.
 */
function recordedCluster(
  cluster: Record<string, ClusterCrd>,
  opts: { chartVersion?: string; resources?: string[] } = {}
): { run: CommandRunner; calls: Call[] } {
  const calls: Call[] = [];
  const run: CommandRunner = async (tool, argv, runOpts) => {
    const call: Call = { tool, argv: [...argv] };
    calls.push(call);
    // The repository is added on this host before the first pull.
    if (tool === 'helm' && argv[0] === 'repo' && argv[1] === 'add') return { stdout: '', stderr: '' };
    if (tool === 'helm' && argv[0] === 'pull') {
      const into = argv[argv.indexOf('--untardir') + 1] as string;
      const files = skoalaInitChart(opts.chartVersion ?? '0.19.2');
      for (const f of [CONTOUR, GATEWAY_API]) {
        await mkdir(path.dirname(path.join(into, 'skoala-init', f)), { recursive: true });
        await writeFile(path.join(into, 'skoala-init', f), files[f] ?? '');
      }
      return { stdout: '', stderr: '' };
    }
    const verb = argv.slice(KC.length, KC.length + 2).join(' ');
    if (verb === 'get crd') {
      const names = argv.slice(KC.length + 2).filter((a, i, all) => !a.startsWith('-') && all[i - 1] !== '-o');
      const found = names.flatMap((n) => (cluster[n] ? [cluster[n].installed] : []));
      if (names.length === 1) return { stdout: found[0] ? JSON.stringify(found[0]) : '', stderr: '' };
      return { stdout: JSON.stringify({ apiVersion: 'v1', kind: 'List', items: found }), stderr: '' };
    }
    if (argv[KC.length] === 'apply') {
      const files = argv.filter((_, i) => argv[i - 1] === '-f');
      const texts = await Promise.all(files.map((f) => readFile(f, 'utf8')));
      const docs = texts.flatMap((t) => parseAllDocuments(t).map((d) => d.toJS() as Crd));
      call.crd = docs.map((d) => d.metadata.name).join(',');
      const errors = argv.includes('--force-conflicts')
        ? []
        : docs.flatMap((d) => cluster[d.metadata.name]?.conflict ?? []);
      if (errors.length > 0) {
        // Captured from runs of one object: kubectl drops `error: ` when it has several to print.
        const stderr = errors.length === 1 ? String(errors[0]) : errors.map((e) => e.replace(/^error: /, '')).join('');
        if (runOpts?.allowFailure) return { stdout: '', stderr, exitCode: 1 };
        // As the real runner reports it: a classified failure holding only the telling stderr lines.
        throw commandFailure({ tool, argv, exitCode: 1, stderr, cluster: 'w1' });
      }
      const stored = docs.map((d) => {
        const after = cluster[d.metadata.name]?.after;
        return { ...d, metadata: { ...d.metadata, ...(after ? { managedFields: after } : {}) } };
      });
      const out = stored.length === 1 ? stored[0] : { apiVersion: 'v1', kind: 'List', items: stored };
      return { stdout: JSON.stringify(out), stderr: '' };
    }
    if (verb.startsWith('get ') && argv.includes('name')) {
      return { stdout: (opts.resources ?? []).map((r) => `${r}\n`).join(''), stderr: '' };
    }
    throw new Error(`unexpected command: ${tool} ${argv.join(' ')}`);
  };
  return { run, calls };
}

/** A CRD as installed: a fixture of some version, with managedFields and extra annotations. */
function installed(version: string, name: string, annotations: Record<string, string> = {}, managed?: unknown[]): Crd {
  const crd = structuredClone(fixtureCrds(version).get(name)) as Crd;
  crd.metadata.annotations = { ...crd.metadata.annotations, ...annotations };
  if (managed) crd.metadata.managedFields = managed as Crd['metadata']['managedFields'];
  return crd;
}

let workDir: string;
beforeEach(async () => {
  workDir = await mkdtemp(path.join(tmpdir(), 'crd-preview-test-'));
});
afterEach(async () => {
  await rm(workDir, { recursive: true, force: true });
});

describe('parseConflicts: kubectl wording from the real API server', () => {
  it('one conflict with an update manager (helm): the manager is named without its API version', () => {
    expect(parseConflicts(STDERR.single)).toEqual({
      count: 1,
      conflicts: [{ manager: 'helm', fields: ['.metadata.annotations.fixtures.skoala-upgrade/chart-version'] }],
    });
  });

  it('one conflict with an applier', () => {
    expect(parseConflicts(STDERR.singleApplier)).toEqual({
      count: 1,
      conflicts: [{ manager: 'someone-else', fields: ['.metadata.annotations.fixtures.skoala-upgrade/chart-version'] }],
    });
  });

  it('several managers, a field co-owned by two, and the advice after the list left out', () => {
    expect(parseConflicts(STDERR.gateways)).toEqual({
      count: 3,
      conflicts: [
        { manager: 'helm', fields: ['.metadata.annotations.gateway.networking.k8s.io/bundle-version'] },
        {
          manager: 'someone-else',
          fields: [
            '.metadata.annotations.fixtures.skoala-upgrade/chart-version',
            '.metadata.annotations.gateway.networking.k8s.io/bundle-version',
          ],
        },
      ],
    });
  });

  it('a file of several objects (no `error:` prefix) and a manager with a subresource and a time parse too', () => {
    expect(parseConflicts(STDERR.httproutes.replace(/^error: /, ''))?.conflicts.map((c) => c.manager)).toEqual([
      'helm',
      'kubectl-annotate',
    ]);
    expect(
      parseConflicts(
        'Apply failed with 1 conflict: conflict with "ctl" with subresource "status" using apps/v1 at 2024-01-02T03:04:05Z: .status.replicas'
      )
    ).toEqual({ count: 1, conflicts: [{ manager: 'ctl', fields: ['.status.replicas'] }] });
  });

  it('what the runner keeps of a multi-line message: the count and the first manager only', () => {
    const failure = commandFailure({ tool: 'kubectl', argv: ['apply'], exitCode: 1, stderr: STDERR.gateways });
    expect(failure.message).toBe(
      'kubectl apply exited 1: error: Apply failed with 3 conflicts: conflicts with "helm" using apiextensions.k8s.io/v1:'
    );
    expect(parseConflicts(failure.message)).toEqual({ count: 3, conflicts: [{ manager: 'helm', fields: [] }] });
  });

  it('anything else is not a conflict', () => {
    expect(
      parseConflicts('The CustomResourceDefinition "x" is invalid: status.storedVersions[0]: Invalid value')
    ).toBeUndefined();
  });
});

describe("conflictMessages: kubectl's stderr of one apply of several objects", () => {
  const plain = (e: string) => e.replace(/^error: /, '');

  it('one message per object that met conflicts, in order; warnings before them are fine', () => {
    const stderr = [STDERR.gateways, STDERR.single, STDERR.httproutes].map(plain).join('');
    const expected = [
      parseConflicts(STDERR.gateways)?.conflicts,
      parseConflicts(STDERR.single)?.conflicts,
      parseConflicts(STDERR.httproutes)?.conflicts,
    ];
    expect(conflictMessages(stderr)).toEqual(expected);
    expect(conflictMessages(`Warning: unrecognized format "x"\n${stderr}`)).toEqual(expected);
    // A lone error: kubectl prints it with `error: `.
    expect(conflictMessages(STDERR.single)).toEqual([
      [{ manager: 'helm', fields: ['.metadata.annotations.fixtures.skoala-upgrade/chart-version'] }],
    ]);
  });

  it('anything else before them, a list shorter than its count, or no conflict: undefined', () => {
    const invalid = 'The CustomResourceDefinition "x" is invalid: spec.scope: Unsupported value: "Bogus"\n';
    expect(conflictMessages(invalid + plain(STDERR.single))).toBeUndefined();
    expect(conflictMessages(plain(STDERR.gateways).replace('with 3 conflicts', 'with 4 conflicts'))).toBeUndefined();
    expect(conflictMessages(invalid)).toBeUndefined();
    expect(conflictMessages('')).toBeUndefined();
  });

  it('sameConflicts: the same manager-field pairs in any order', () => {
    const a = [
      { manager: 'helm', fields: ['.a', '.b'] },
      { manager: 'x', fields: ['.a'] },
    ];
    expect(
      sameConflicts(a, [
        { manager: 'x', fields: ['.a'] },
        { manager: 'helm', fields: ['.b', '.a'] },
      ])
    ).toBe(true);
    expect(sameConflicts(a, [{ manager: 'helm', fields: ['.a', '.b'] }])).toBe(false);
    expect(sameConflicts(a, [...a, { manager: 'x', fields: ['.c'] }])).toBe(false);
  });
});

describe('fieldsTakenOver: the managedFields a forced apply removes from other managers', () => {
  it('equals the conflicts the API server reported (gateways)', () => {
    expect(fieldsTakenOver(MANAGED.gateways.before, MANAGED.gateways.after)).toEqual([
      {
        manager: 'someone-else',
        fields: [
          '.metadata.annotations.fixtures.skoala-upgrade/chart-version',
          '.metadata.annotations.gateway.networking.k8s.io/bundle-version',
        ],
      },
      { manager: 'helm', fields: ['.metadata.annotations.gateway.networking.k8s.io/bundle-version'] },
    ]);
  });

  it('a manager left with nothing disappears from managedFields: all it owned was taken (httproutes)', () => {
    expect(fieldsTakenOver(MANAGED.httproutes.before, MANAGED.httproutes.after)).toEqual([
      { manager: 'helm', fields: ['.metadata.annotations.fixtures.skoala-upgrade/chart-version'] },
      { manager: 'kubectl-annotate', fields: ['.metadata.annotations.gateway.networking.k8s.io/bundle-version'] },
    ]);
  });

  it('prints keys, values and indexes as the API server does; our own fields are never a conflict', () => {
    const before = [
      {
        manager: 'other',
        operation: 'Apply',
        fieldsV1: {
          'f:spec': {
            'f:versions': { 'k:{"name":"v1"}': { '.': {}, 'f:served': {} } },
            'f:list': { 'i:0': {} },
            'f:set': { 'v:"a"': {} },
          },
        },
      },
      { manager: 'skoala-upgrade', operation: 'Apply', fieldsV1: { 'f:spec': { 'f:group': {} } } },
    ];
    expect(fieldsTakenOver(before, [])).toEqual([
      {
        manager: 'other',
        fields: ['.spec.versions[name="v1"]', '.spec.versions[name="v1"].served', '.spec.list[0]', '.spec.set[="a"]'],
      },
    ]);
  });
});

describe('crdDowngrade: the one bundle-version comparison', () => {
  const crd = (annotations: Record<string, string>) => ({ metadata: { name: 'x', annotations } });
  const GW = 'gateway.networking.k8s.io/bundle-version';
  const FX = 'fixtures.skoala-upgrade/chart-version';

  it('an installed bundle newer than the chart is a downgrade (semver, `v` prefix allowed)', () => {
    expect(crdDowngrade(crd({ [GW]: 'v1.3.0' }), crd({ [GW]: 'v1.2.1' }))).toEqual({
      installed: 'v1.3.0',
      chart: 'v1.2.1',
    });
    expect(crdDowngrade(crd({ [GW]: 'v1.10.0' }), crd({ [GW]: 'v1.9.0' }))).toBeDefined(); // not a string order
    expect(crdDowngrade(crd({ [GW]: 'v1.2.1' }), crd({ [GW]: 'v1.2.1-rc.1' }))).toBeDefined();
  });

  it('same or older installed, an annotation on one side only, an unreadable version, nothing installed: none', () => {
    expect(crdDowngrade(crd({ [GW]: 'v1.2.1' }), crd({ [GW]: 'v1.2.1' }))).toBeUndefined();
    expect(crdDowngrade(crd({ [GW]: 'v1.1.0' }), crd({ [GW]: 'v1.2.1' }))).toBeUndefined();
    expect(crdDowngrade(crd({ [GW]: 'v1.3.0' }), crd({}))).toBeUndefined();
    expect(crdDowngrade(crd({}), crd({ [GW]: 'v1.2.1' }))).toBeUndefined();
    expect(crdDowngrade(crd({ [GW]: 'experimental' }), crd({ [GW]: 'v1.2.1' }))).toBeUndefined();
    expect(crdDowngrade(undefined, crd({ [GW]: 'v1.2.1' }))).toBeUndefined();
  });

  it('the fixture charts: their chart-version annotation, and the Gateway-API one first when both are there', () => {
    expect(crdDowngrade(crd({ [FX]: '0.28.1' }), crd({ [FX]: '0.19.2' }))).toEqual({
      installed: '0.28.1',
      chart: '0.19.2',
    });
    expect(crdDowngrade(crd({ [GW]: 'v1.19.2', [FX]: '0.28.1' }), crd({ [GW]: 'v1.19.2', [FX]: '0.19.2' }))).toBe(
      undefined
    );
    expect(crdDowngrade(crd({ [GW]: 'v1.1.0', [FX]: '0.28.1' }), crd({ [FX]: '0.19.2' }))).toEqual({
      installed: '0.28.1',
      chart: '0.19.2',
    });
  });

  it('the fixture charts map a later version to a later bundle', () => {
    const bundle = (v: string) => fixtureCrds(v).get('gateways.gateway.networking.k8s.io')?.metadata.annotations?.[GW];
    expect(bundle('0.19.2')).toBe('v1.19.2');
    expect(
      crdDowngrade(fixtureCrds('0.28.1').get('gateways.gateway.networking.k8s.io'), crd({ [GW]: 'v1.19.2' }))
    ).toEqual({ installed: 'v1.28.1', chart: 'v1.19.2' });
  });
});

describe('previewCrds: one dry run of all CRDs per mode, with the answer of one per CRD', () => {
  const GW_NAME = 'gateways.gateway.networking.k8s.io';
  const HR_NAME = 'httproutes.gateway.networking.k8s.io';
  const HP_NAME = 'httpproxies.projectcontour.io';
  const GC_NAME = 'gatewayclasses.gateway.networking.k8s.io';
  const ALL = [...fixtureCrds('0.19.2').keys()];
  /** `withManagedFields`: httpproxies' managedFields as the API server keeps them (a double may leave them out). */
  const scenario = (withManagedFields = true): Record<string, ClusterCrd> => ({
    // At 0.18.0, helm-installed, one field to take over.
    [HP_NAME]: withManagedFields
      ? {
          installed: installed('0.18.0', HP_NAME, {}, MANAGED.httpproxies.before),
          conflict: STDERR.single,
          after: MANAGED.httpproxies.after,
        }
      : { installed: installed('0.18.0', HP_NAME), conflict: STDERR.single },
    // Already what 0.19.2 brings: the dry run succeeds and changes nothing.
    [GC_NAME]: { installed: installed('0.19.2', GC_NAME) },
    [GW_NAME]: {
      installed: installed(
        '0.18.0',
        GW_NAME,
        { 'fixtures.skoala-upgrade/chart-version': '0.18.0-patched' },
        MANAGED.gateways.before
      ),
      conflict: STDERR.gateways,
      after: MANAGED.gateways.after,
    },
    [HR_NAME]: {
      installed: installed(
        '0.18.0',
        HR_NAME,
        { 'gateway.networking.k8s.io/bundle-version': 'v1.99.0' },
        MANAGED.httproutes.before
      ),
      conflict: STDERR.httproutes,
      after: MANAGED.httproutes.after,
    },
  });
  const resources = ['httpproxy.projectcontour.io/shop', 'gateway.gateway.networking.k8s.io/web'];
  const kubectlCalls = (calls: Call[]) => calls.filter((c) => c.tool === 'kubectl');
  const verbs = (calls: Call[]) => kubectlCalls(calls).map((c) => c.argv.slice(2, 4).join(' '));

  /** The scenario's answer, as the dry runs of one CRD at a time always gave it. */
  function expectScenarioAnswer(changes: CrdChange[]): void {
    const by = new Map(changes.map((c) => [c.crd, c]));
    expect(changes.map((c) => c.crd)).toEqual(ALL);
    expect(by.get(HP_NAME)).toEqual({
      cluster: 'w1',
      crd: HP_NAME,
      action: 'change',
      customResources: 1,
      conflicts: [{ manager: 'helm', fields: ['.metadata.annotations.fixtures.skoala-upgrade/chart-version'] }],
    });
    expect(by.get(GC_NAME)).toEqual({
      cluster: 'w1',
      crd: GC_NAME,
      action: 'unchanged',
      customResources: 0,
      conflicts: [],
    });
    // In the order of the forced dry run's managedFields (the runner keeps one line of kubectl's list).
    expect(by.get(GW_NAME)).toEqual({
      cluster: 'w1',
      crd: GW_NAME,
      action: 'change',
      customResources: 1,
      conflicts: [
        {
          manager: 'someone-else',
          fields: [
            '.metadata.annotations.fixtures.skoala-upgrade/chart-version',
            '.metadata.annotations.gateway.networking.k8s.io/bundle-version',
          ],
        },
        { manager: 'helm', fields: ['.metadata.annotations.gateway.networking.k8s.io/bundle-version'] },
      ],
    });
    expect(by.get(HR_NAME)).toMatchObject({
      action: 'change',
      conflicts: [
        { manager: 'helm', fields: ['.metadata.annotations.fixtures.skoala-upgrade/chart-version'] },
        { manager: 'kubectl-annotate', fields: ['.metadata.annotations.gateway.networking.k8s.io/bundle-version'] },
      ],
      downgrade: { installed: 'v1.99.0', chart: 'v1.19.2' },
    });
    expect(by.get('udproutes.gateway.networking.k8s.io')).toEqual({
      cluster: 'w1',
      crd: 'udproutes.gateway.networking.k8s.io',
      action: 'create',
      customResources: 0,
      conflicts: [],
    });
  }

  it('names every conflict and downgrade in four kubectl calls, dry runs and reads only', async () => {
    const r = recordedCluster(scenario(), { resources });
    expectScenarioAnswer(await previewCrds(r.run, chartRepoSession(r.run), workDir, w1, step()));
    // The installed CRDs, a dry run of all (it meets conflicts), the forced one, the installed kinds' resources.
    const kubectl = kubectlCalls(r.calls);
    expect(verbs(r.calls)).toEqual([
      'get crd',
      'apply --server-side',
      'apply --server-side',
      `get ${HP_NAME},${GC_NAME},${GW_NAME},${HR_NAME}`,
    ]);
    expect(kubectl[0]?.argv).toEqual([
      ...KC,
      'get',
      'crd',
      ...ALL,
      '-o',
      'json',
      '--ignore-not-found',
      '--show-managed-fields',
    ]);
    // Each CRD in a file of its own, as when each had its own dry run: all of them, in order.
    const files = ALL.flatMap((_, i) => ['-f', expect.stringMatching(new RegExp(`/crd-${i + 1}\\.yaml$`))]);
    const dryRun = [...KC, 'apply', '--server-side'];
    const rest = ['--field-manager', 'skoala-upgrade', '--dry-run=server'];
    expect(kubectl[1]?.argv).toEqual([...dryRun, ...rest, ...files, '-o', 'json']);
    expect(kubectl[2]?.argv).toEqual([
      ...dryRun,
      '--force-conflicts',
      ...rest,
      '--show-managed-fields',
      ...files,
      '-o',
      'json',
    ]);
    expect(kubectl[1]?.crd).toBe(ALL.join(','));
    expect(kubectl[3]?.argv).toEqual([...KC, 'get', `${HP_NAME},${GC_NAME},${GW_NAME},${HR_NAME}`, '-A', '-o', 'name']);
    expect(await readdir(workDir)).toEqual([]);
  });

  it('no conflict met: no forced run; nothing installed: no custom resources to list', async () => {
    const r = recordedCluster({ [GC_NAME]: { installed: installed('0.19.2', GC_NAME) } });
    const changes = await previewCrds(r.run, chartRepoSession(r.run), workDir, w1, step());
    expect(changes.filter((c) => c.action !== 'create').map((c) => [c.crd, c.action, c.conflicts])).toEqual([
      [GC_NAME, 'unchanged', []],
    ]);
    expect(verbs(r.calls)).toEqual(['get crd', 'apply --server-side', `get ${GC_NAME}`]);
    const fresh = recordedCluster({});
    expect(
      (await previewCrds(fresh.run, chartRepoSession(fresh.run), workDir, w1, step())).map((c) => c.action)
    ).toEqual(ALL.map(() => 'create'));
    expect(verbs(fresh.calls)).toEqual(['get crd', 'apply --server-side']);
  });

  it("the forced run's managedFields do not account for a message: one dry run per CRD, the same answer", async () => {
    // httpproxies without managedFields: its conflict cannot be told apart from the others'.
    const r = recordedCluster(scenario(false), { resources });
    expectScenarioAnswer(await previewCrds(r.run, chartRepoSession(r.run), workDir, w1, step()));
    const each = r.calls.filter((c) => c.argv.includes('apply')).slice(2);
    for (const a of each) expect(a.argv).toContain('--dry-run=server');
    expect(each.filter((a) => !a.argv.includes('--force-conflicts')).map((a) => a.crd)).toEqual(ALL);
    // Forced (still a dry run) only where the unforced one met a conflict.
    expect(each.filter((a) => a.argv.includes('--force-conflicts')).map((a) => a.crd)).toEqual([
      HP_NAME,
      GW_NAME,
      HR_NAME,
    ]);
    expect(verbs(r.calls).filter((v) => v.startsWith('get'))).toEqual([
      'get crd',
      `get ${HP_NAME},${GC_NAME},${GW_NAME},${HR_NAME}`,
    ]);
  });

  it('a failure that is not a conflict still fails the preview, as the dry run of that CRD alone', async () => {
    const invalid =
      'The CustomResourceDefinition "httpproxies.projectcontour.io" is invalid: spec.versions: Invalid value';
    const r = recordedCluster({ [HP_NAME]: { installed: installed('0.18.0', HP_NAME), conflict: invalid } });
    await expect(previewCrds(r.run, chartRepoSession(r.run), workDir, w1, step())).rejects.toMatchObject({
      type: 'Invalid',
      message: `kubectl apply on w1 exited 1: ${invalid}`,
    });
    expect(r.calls.filter((c) => c.argv.includes('apply')).map((c) => c.crd)).toEqual([
      ALL.join(','),
      ...ALL.slice(0, 4),
    ]);
    expect(await readdir(workDir)).toEqual([]);
  });

  it('a manifest that is not YAML fails the preview after the files before it', async () => {
    const bad = path.join(workDir, 'extra.yaml');
    await writeFile(bad, 'a: [\n');
    const r = recordedCluster({});
    await expect(
      previewCrds(r.run, chartRepoSession(r.run), workDir, w1, { ...step(), extraFiles: [bad] })
    ).rejects.toMatchObject({
      type: 'InvalidManifest',
      message: expect.stringContaining('extra.yaml is not valid YAML'),
    });
    expect(r.calls.filter((c) => c.argv.includes('apply')).map((c) => c.crd)).toEqual([ALL.join(',')]);
    await rm(bad);
  });
});

const change = (crd: string, over: Partial<CrdChange> = {}): CrdChange => ({
  cluster: 'w1',
  crd,
  action: 'change',
  customResources: 0,
  conflicts: [],
  ...over,
});
const SAMPLE: CrdChange[] = [
  change('httpproxies.projectcontour.io', { customResources: 2 }),
  change('gateways.gateway.networking.k8s.io', {
    conflicts: [
      { manager: 'someone-else', fields: ['.metadata.annotations.a', '.spec.versions'] },
      { manager: 'helm', fields: ['.metadata.annotations.b'] },
    ],
  }),
  change('httproutes.gateway.networking.k8s.io', {
    conflicts: [{ manager: 'helm', fields: ['.metadata.annotations.b'] }],
    downgrade: { installed: 'v1.3.0', chart: 'v1.2.1' },
  }),
  change('udproutes.gateway.networking.k8s.io', { action: 'create' }),
  change('tcproutes.gateway.networking.k8s.io', { action: 'unchanged' }),
];

describe('crdPreviewLines and summarizeCrdPreview', () => {
  it('plan lines: each CRD, its conflicts and its downgrade under it', () => {
    expect(crdPreviewLines(SAMPLE)).toEqual([
      'CRD httpproxies.projectcontour.io: change, 2 custom resource(s)',
      'CRD gateways.gateway.networking.k8s.io: change, 0 custom resource(s)',
      '  CONFLICT with someone-else: .metadata.annotations.a, .spec.versions',
      '  CONFLICT with helm: .metadata.annotations.b',
      'CRD httproutes.gateway.networking.k8s.io: change, 0 custom resource(s)',
      '  CONFLICT with helm: .metadata.annotations.b',
      "  DOWNGRADE: installed v1.3.0 is newer than the chart's v1.2.1; refused unless --force-crd-reapply",
      'CRD udproutes.gateway.networking.k8s.io: create, 0 custom resource(s)',
      'CRD tcproutes.gateway.networking.k8s.io: unchanged, 0 custom resource(s)',
      '(the CRD step, once approved, takes conflicting fields over: it applies with --force-conflicts)',
    ]);
    expect(crdPreviewLines(SAMPLE, { allowDowngrade: true })).toContain(
      "  DOWNGRADE: installed v1.3.0 is newer than the chart's v1.2.1; going down anyway (--force-crd-reapply)"
    );
    expect(crdPreviewLines([change('a.b.c')])).toEqual(['CRD a.b.c: change, 0 custom resource(s)']);
  });

  it('the gate summary: counts and one short paragraph', () => {
    expect(summarizeCrdPreview(SAMPLE)).toEqual({
      changed: 3,
      created: 1,
      conflicts: 2,
      downgrades: ['httproutes.gateway.networking.k8s.io'],
      text:
        '5 CRD(s): 3 to change, 1 to create, 1 unchanged; 2 custom resource(s) of these kinds exist. ' +
        '2 with fields owned by someone-else, helm, taken over on apply: gateways.gateway.networking.k8s.io, httproutes.gateway.networking.k8s.io. ' +
        '1 downgrade(s), refused unless --force-crd-reapply: httproutes.gateway.networking.k8s.io (installed v1.3.0, chart v1.2.1).',
    });
    expect(summarizeCrdPreview(SAMPLE, { allowDowngrade: true }).text).toContain(
      '1 downgrade(s), going down (--force-crd-reapply): '
    );
    expect(summarizeCrdPreview([])).toEqual({
      changed: 0,
      created: 0,
      conflicts: 0,
      downgrades: [],
      text: '0 CRD(s): 0 to change, 0 to create, 0 unchanged; 0 custom resource(s) of these kinds exist.',
    });
  });

  it('a long list is cut to a few names', () => {
    const many = Array.from({ length: 8 }, (_, i) =>
      change(`c${i}.x.io`, { downgrade: { installed: 'v2.0.0', chart: 'v1.0.0' } })
    );
    expect(summarizeCrdPreview(many).text).toMatch(/c4\.x\.io \(installed v2\.0\.0, chart v1\.0\.0\) and 3 more\.$/);
  });
});

describe('reapplyCrds refuses a CRD downgrade unless forced', () => {
  const HR_NAME = 'httproutes.gateway.networking.k8s.io';
  // 0.19.2 installed everywhere, httproutes from a newer Gateway-API bundle.
  const cluster = (): Record<string, ClusterCrd> =>
    Object.fromEntries(
      [...fixtureCrds('0.19.2').keys()].map((n) => [
        n,
        {
          installed: installed(
            '0.19.2',
            n,
            n === HR_NAME ? { 'gateway.networking.k8s.io/bundle-version': 'v1.99.0' } : {}
          ),
        },
      ])
    );
  let logger: RecordingLogger;
  let env: MockActivityEnvironment;
  beforeEach(() => {
    logger = new RecordingLogger();
    env = new MockActivityEnvironment(undefined, { logger });
  });
  /** Runs an activity in the mock environment, keeping its result type. */
  const act = <A extends unknown[], R>(fn: (...args: A) => Promise<R>, ...args: NoInfer<A>): Promise<R> =>
    env.run<A, R, (...args: A) => Promise<R>>(fn, ...args);

  it('refused: non-retryable CrdDowngrade naming the CRD, both versions and the flag; nothing applied', async () => {
    const r = recordedCluster(cluster());
    const acts = crdActivities({ run: r.run, repos: chartRepoSession(r.run), workDir });
    const err = await act(acts.reapplyCrds, { upgradeId: 'u-1', cluster: w1, step: step() }).then(
      () => undefined,
      (e: unknown) => e
    );
    expect(err).toBeInstanceOf(ApplicationFailure);
    expect(err).toMatchObject({
      type: 'CrdDowngrade',
      nonRetryable: true,
      message:
        'w1: CRD httproutes.gateway.networking.k8s.io is installed at v1.99.0, newer than v1.19.2 in chart skoala-init 0.19.2: refusing to downgrade it; pass --force-crd-reapply to go down',
    });
    expect(r.calls.filter((c) => c.argv.includes('apply'))).toEqual([]);
    expect(r.calls.map((c) => [c.tool, ...(c.tool === 'helm' ? c.argv.slice(0, 2) : c.argv.slice(2, 5))])).toEqual([
      ['helm', 'repo', 'add'],
      ['helm', 'pull', 'skoala/skoala-init'],
      // One lookup for the CRDs of both files.
      ['kubectl', 'get', 'crd', 'contourconfigurations.projectcontour.io'],
    ]);
    expect(r.calls.at(-1)?.argv).toEqual(expect.arrayContaining(['gatewayclasses.gateway.networking.k8s.io']));
    expect(await readdir(workDir)).toEqual([]);
  });

  it("the chart's own bundle decides: a newer chart goes ahead unforced, one still older than installed does not", async () => {
    const plain = Object.fromEntries(
      [...fixtureCrds('0.19.2').keys()].map((n) => [n, { installed: installed('0.19.2', n) }])
    );
    const up = recordedCluster(plain, { chartVersion: '0.28.1' });
    const out = await act(crdActivities({ run: up.run, repos: chartRepoSession(up.run), workDir }).reapplyCrds, {
      upgradeId: 'u-1',
      cluster: w1,
      step: step(false, '0.28.1'),
    });
    expect(out.applied).toHaveLength(13);
    const r = recordedCluster(cluster(), { chartVersion: '0.28.1' });
    await expect(
      act(crdActivities({ run: r.run, repos: chartRepoSession(r.run), workDir }).reapplyCrds, {
        upgradeId: 'u-1',
        cluster: w1,
        step: step(false, '0.28.1'),
      })
    ).rejects.toMatchObject({ type: 'CrdDowngrade', message: expect.stringContaining('v1.99.0, newer than v1.28.1') });
  });

  it('forced (--force-crd-reapply): applied with --force-conflicts as always, and the downgrade is logged', async () => {
    const r = recordedCluster(cluster());
    const out = await act(crdActivities({ run: r.run, repos: chartRepoSession(r.run), workDir }).reapplyCrds, {
      upgradeId: 'u-1',
      cluster: w1,
      step: step(true),
    });
    expect(out.applied).toContain(HR_NAME);
    const applies = r.calls.filter((c) => c.argv.includes('apply'));
    expect(applies).toHaveLength(2); // both CRD files in one apply, then the record
    expect(applies[0]?.argv).toEqual([
      ...KC,
      'apply',
      '--server-side',
      '--force-conflicts',
      '--field-manager',
      'skoala-upgrade',
      '-f',
      expect.stringMatching(/contour\.yaml$/),
      '-f',
      expect.stringMatching(/gateway-api\.yaml$/),
      '-o',
      'json',
    ]);
    expect(logger.entries).toContainEqual({
      level: 'WARN',
      message: 'downgrading a CRD (--force-crd-reapply)',
      meta: expect.objectContaining({ cluster: 'w1', crd: HR_NAME, installed: 'v1.99.0', chart: 'v1.19.2' }),
    });
  });

  it('previewCrdChanges: the summary for the gate, read-only', async () => {
    const r = recordedCluster(cluster());
    const { summary } = await act(
      crdActivities({ run: r.run, repos: chartRepoSession(r.run), workDir }).previewCrdChanges,
      {
        cluster: w1,
        step: step(),
      }
    );
    expect(summary).toMatchObject({ changed: 1, created: 0, conflicts: 0, downgrades: [HR_NAME] });
    expect(summary.text).toContain('refused unless --force-crd-reapply: httproutes.gateway.networking.k8s.io');
    expect(r.calls.filter((c) => c.argv.includes('apply') && !c.argv.includes('--dry-run=server'))).toEqual([]);
  });
});
