/**
 * Read-only look at what the CRD step would do on a cluster: for each CRD in the manifests,
 * whether a server-side dry-run apply creates it, changes it or leaves it as is, how many custom
 * resources of that kind exist (what a CRD delete would have destroyed), which fields other field
 * managers own that the step would take over, and whether it would take the CRD to an older bundle.
 */
import { pullChart, type ChartRepoSession } from './chart-repo';
import { ApplicationFailure } from '@temporalio/common';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import semver from 'semver';
import { parseAllDocuments } from 'yaml';
import * as cmd from '../runbook/commands';
import { digestOf } from '../runbook/digest';
import type { ClusterRef, Step } from '../runbook/types';
import type { CommandRunner } from './exec';

export interface CrdConflict {
  /** The other field manager, as the API server names it (`helm`, `kubectl-client-side-apply`, ...). */
  manager: string;
  /** Field paths in the API server's notation, e.g. `.spec.versions`, `.metadata.annotations.x`. */
  fields: string[];
}

export interface CrdDowngrade {
  installed: string;
  chart: string;
}

export interface CrdChange {
  cluster: string;
  crd: string;
  action: 'create' | 'change' | 'unchanged';
  customResources: number;
  /** Fields another manager owns with another value: the real apply (forced, after approval) takes them over. */
  conflicts: CrdConflict[];
  /** The installed CRD's bundle version is newer than the manifest's. */
  downgrade?: CrdDowngrade;
}

interface ManagedFieldsEntry {
  manager?: string;
  operation?: string;
  apiVersion?: string;
  subresource?: string;
  fieldsV1?: unknown;
}

export interface Crd {
  kind?: string;
  metadata: {
    name: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
    managedFields?: ManagedFieldsEntry[];
  };
  spec: { group: string; names: { plural: string; kind: string } };
}

/**
 * Annotations that carry the version of the CRD bundle, most specific first: the real Gateway-API
 * CRDs carry the first, the sandbox's fixture charts the second.
 */
export const BUNDLE_VERSION_ANNOTATIONS = [
  'gateway.networking.k8s.io/bundle-version',
  'fixtures.skoala-upgrade/chart-version',
] as const;

/**
 * The one comparison the preview and the CRD step share. Only a known annotation present on both
 * sides counts (the first such one decides); a version semver cannot read (a `v` prefix is fine)
 * decides nothing: no guess refuses an upgrade.
 */
export function crdDowngrade(
  installed: Pick<Crd, 'metadata'> | undefined,
  manifest: Pick<Crd, 'metadata'>
): CrdDowngrade | undefined {
  for (const key of BUNDLE_VERSION_ANNOTATIONS) {
    const x = installed?.metadata.annotations?.[key];
    const y = manifest.metadata.annotations?.[key];
    if (x === undefined || y === undefined) continue;
    const [a, b] = [semver.valid(x), semver.valid(y)];
    return a && b && semver.gt(a, b) ? { installed: x, chart: y } : undefined;
  }
  return undefined;
}

/** One document of a manifest file: its text (to apply on its own) and its object. */
export interface ManifestDoc {
  text: string;
  object: Crd;
}

/** The documents of a manifest file, empty ones left out; a YAML error names the file. */
export function manifestDocs(text: string, file: string): ManifestDoc[] {
  const out: ManifestDoc[] = [];
  for (const doc of parseAllDocuments(text)) {
    if (doc.errors.length > 0) {
      throw ApplicationFailure.nonRetryable(
        `CRD manifest ${path.basename(file)} is not valid YAML: ${doc.errors[0]?.message ?? 'parse error'}`,
        'InvalidManifest'
      );
    }
    const object: unknown = doc.toJS();
    if (object && typeof object === 'object') out.push({ text: doc.toString(), object: object as Crd });
  }
  return out;
}

/** The CRD's name when the document is a CRD that names itself (kubectl refuses the rest anyway). */
export const crdName = (d: ManifestDoc): string | undefined =>
  d.object.kind === 'CustomResourceDefinition' && typeof d.object.metadata?.name === 'string'
    ? d.object.metadata.name
    : undefined;

/** Key-order-independent JSON of what an apply can change: labels, annotations, spec. */
function content(crd: Crd): string {
  const sorted = (v: unknown): unknown =>
    Array.isArray(v)
      ? v.map(sorted)
      : v && typeof v === 'object'
        ? Object.fromEntries(
            Object.entries(v)
              .sort(([a], [b]) => a.localeCompare(b))
              .map(([k, x]) => [k, sorted(x)])
          )
        : v;
  return JSON.stringify(
    sorted({ labels: crd.metadata.labels ?? {}, annotations: crd.metadata.annotations ?? {}, spec: crd.spec })
  );
}

const items = (stdout: string): Crd[] => {
  const doc = JSON.parse(stdout) as Crd & { items?: Crd[] };
  return doc.kind === 'List' ? (doc.items ?? []) : [doc];
};

const unquote = (q: string): string => {
  try {
    return JSON.parse(q) as string; // Go's %q: JSON reads it for any name a person would choose
  } catch {
    return q.slice(1, -1);
  }
};

const QUOTED = String.raw`"(?:[^"\\]|\\.)*"`;
// The API server's printManager: `"helm" using apiextensions.k8s.io/v1` for an update, `"x"` for an apply.
const MANAGER = String.raw`(${QUOTED})(?: with subresource ${QUOTED})?(?: using \S+?(?: at \S+)?)?`;

/**
 * The conflicts in kubectl's message, as the API server words them (kubectl prefixes `error: ` when
 * the file holds one object):
 *
 *   Apply failed with 1 conflict: conflict with "helm" using apiextensions.k8s.io/v1: .spec.versions
 *
 *   Apply failed with 3 conflicts: conflicts with "helm" using apiextensions.k8s.io/v1:
 *   - .metadata.annotations.gateway.networking.k8s.io/bundle-version
 *   conflicts with "someone-else":
 *   - .metadata.annotations.fixtures.skoala-upgrade/chart-version
 *
 * `count` is the server's total; the field lists can be shorter when the text was cut.
 */
export function parseConflicts(text: string): { count: number; conflicts: CrdConflict[] } | undefined {
  const head = /Apply failed with (\d+) conflicts?: /.exec(text);
  if (!head) return undefined;
  const count = Number(head[1]);
  const rest = text.slice(head.index + head[0].length);
  const single = new RegExp(String.raw`^conflict with ${MANAGER}: (.+)$`, 'm').exec(rest);
  if (single && single.index === 0) {
    return { count, conflicts: [{ manager: unquote(single[1] as string), fields: [(single[2] as string).trim()] }] };
  }
  const managerLine = new RegExp(String.raw`^conflicts with ${MANAGER}:$`);
  const byManager = new Map<string, string[]>();
  let fields: string[] | undefined;
  for (const line of rest.split('\n').map((l) => l.trim())) {
    const m = managerLine.exec(line);
    if (m) {
      const manager = unquote(m[1] as string);
      fields = byManager.get(manager) ?? [];
      byManager.set(manager, fields);
    } else if (line.startsWith('- ') && fields) fields.push(line.slice(2));
    else break; // kubectl's advice follows the list
  }
  return { count, conflicts: [...byManager].map(([manager, f]) => ({ manager, fields: f })) };
}

/** `f:spec` -> `.spec`, `k:{"name":"v1"}` -> `[name="v1"]`, as the API server prints field paths. */
function pathElement(key: string): string {
  const [kind, raw] = [key.slice(0, 2), key.slice(2)];
  switch (kind) {
    case 'f:':
      return `.${raw}`;
    case 'i:':
      return `[${raw}]`;
    case 'v:':
      return `[=${raw}]`;
    case 'k:': {
      const keys = JSON.parse(raw) as Record<string, unknown>;
      return `[${Object.entries(keys)
        .map(([k, v]) => `${k}=${JSON.stringify(v)}`)
        .join(',')}]`;
    }
    default:
      return `.${key}`;
  }
}

/** The paths a managedFields entry owns: a leaf `{}` or a node holding `.` is owned itself. */
function ownedPaths(node: unknown, prefix = '', out = new Set<string>()): Set<string> {
  if (!node || typeof node !== 'object') return out;
  const entries = Object.entries(node as Record<string, unknown>);
  if (prefix && (entries.length === 0 || entries.some(([k]) => k === '.'))) out.add(prefix);
  for (const [k, child] of entries) if (k !== '.') ownedPaths(child, prefix + pathElement(k), out);
  return out;
}

const entryKey = (e: ManagedFieldsEntry): string =>
  // An update manager is one per API version; an applier is one whatever the version (as the API server keys them).
  [e.manager, e.operation, e.subresource ?? '', e.operation === 'Apply' ? '' : e.apiVersion].join('\0');

/**
 * The fields other managers lose between the stored object and a forced apply's result: exactly
 * the conflicts the API server forced (it removes them from their owners). Used when kubectl's
 * message reached us cut: the runner keeps only its `error:` line, not the list below it.
 */
export function fieldsTakenOver(before: ManagedFieldsEntry[], after: ManagedFieldsEntry[]): CrdConflict[] {
  const afterByKey = new Map(after.map((e) => [entryKey(e), ownedPaths(e.fieldsV1)]));
  const byManager = new Map<string, string[]>();
  for (const e of before) {
    if (!e.manager || e.manager === cmd.FIELD_MANAGER) continue;
    const kept = afterByKey.get(entryKey(e)) ?? new Set<string>();
    const lost = [...ownedPaths(e.fieldsV1)].filter((p) => !kept.has(p));
    if (lost.length === 0) continue;
    const fields = byManager.get(e.manager) ?? [];
    byManager.set(e.manager, [...fields, ...lost.filter((p) => !fields.includes(p))]);
  }
  return [...byManager].map(([manager, fields]) => ({ manager, fields }));
}

/** The whole text of a failed command as the runner reports it (its failure keeps the telling stderr lines). */
function failureText(err: unknown): string {
  if (err instanceof ApplicationFailure) {
    const details = err.details?.[0] as { stderr?: unknown } | undefined;
    const lines = Array.isArray(details?.stderr) ? details.stderr.map(String) : [];
    return [...lines, err.message].join('\n');
  }
  return err instanceof Error ? err.message : String(err);
}

/** Every conflict listed, none cut (`…`) or masked (`***`) by the runner's stderr shortening. */
const completeParse = (p: { count: number; conflicts: CrdConflict[] }): boolean =>
  p.conflicts.reduce((n, c) => n + c.fields.length, 0) === p.count &&
  !p.conflicts.some((c) => c.fields.some((f) => f.includes('…') || f.includes('***')));

/** The installed CRDs of these names, by name, in one kubectl call (absent ones are left out). */
export async function installedCrds(
  run: CommandRunner,
  cluster: ClusterRef,
  names: string[],
  opts: { showManagedFields?: boolean } = {}
): Promise<Map<string, Crd>> {
  if (names.length === 0) return new Map();
  const out = (await run('kubectl', cmd.kubectlGetCrd(cluster, names, opts))).stdout.trim();
  return new Map((out ? items(out) : []).map((c) => [c.metadata.name, c]));
}

export async function previewCrds(
  run: CommandRunner,
  repos: ChartRepoSession,
  workDir: string,
  cluster: ClusterRef,
  step: Step & { kind: 'reapplyCrds' }
): Promise<CrdChange[]> {
  const tmp = await mkdtemp(path.join(workDir, 'preview-'));
  try {
    await pullChart(run, repos, step, tmp, { cluster: cluster.name });
    const files = [...step.chartFiles.map((f) => path.join(tmp, step.chart, f)), ...step.extraFiles];
    const out: CrdChange[] = [];
    let n = 0;
    for (const file of files) {
      const docs = manifestDocs(await readFile(file, 'utf8'), file);
      const names = docs.map(crdName).filter((x): x is string => x !== undefined);
      const installed = await installedCrds(run, cluster, names, { showManagedFields: true });
      const results: { stored: Crd; conflicts: CrdConflict[]; manifest: Crd }[] = [];
      // One CRD per dry run: a conflict fails kubectl's whole file, which would hide the other CRDs.
      for (const doc of docs) {
        const one = path.join(tmp, `crd-${++n}.yaml`);
        await writeFile(one, doc.text);
        const name = crdName(doc);
        const { stored, conflicts } = await dryRunOne(run, cluster, one, name ? installed.get(name) : undefined);
        results.push(...stored.map((c) => ({ stored: c, conflicts, manifest: doc.object })));
      }
      const counts = await customResourceCounts(
        run,
        cluster,
        results.filter((r) => installed.has(r.stored.metadata.name)).map((r) => r.stored)
      );
      for (const { stored, conflicts, manifest } of results) {
        const existing = installed.get(stored.metadata.name);
        const downgrade = crdDowngrade(existing, manifest);
        out.push({
          cluster: cluster.name,
          crd: stored.metadata.name,
          // The dry run returns the object as it would be stored: compare it with what is stored now.
          action: !existing ? 'create' : content(existing) === content(stored) ? 'unchanged' : 'change',
          customResources: existing ? (counts.get(stored.metadata.name) ?? 0) : 0,
          conflicts,
          ...(downgrade ? { downgrade } : {}),
        });
      }
    }
    return out;
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}

/** The dry run of one CRD as we would apply it; on a conflict, who owns what the forced apply takes over. */
async function dryRunOne(
  run: CommandRunner,
  cluster: ClusterRef,
  file: string,
  existing: Crd | undefined
): Promise<{ stored: Crd[]; conflicts: CrdConflict[] }> {
  try {
    const res = await run('kubectl', cmd.kubectlApplyCrd(cluster, file, { dryRun: true, forceConflicts: false }));
    return { stored: items(res.stdout), conflicts: [] };
  } catch (err) {
    const parsed = parseConflicts(failureText(err));
    if (!parsed) throw err;
    // Still a dry run: what the approved, forced apply would store, and whom it would take fields from.
    const forced = await run(
      'kubectl',
      cmd.kubectlApplyCrd(cluster, file, { dryRun: true, forceConflicts: true, showManagedFields: true })
    );
    const stored = items(forced.stdout);
    if (completeParse(parsed)) return { stored, conflicts: parsed.conflicts };
    const taken = fieldsTakenOver(existing?.metadata.managedFields ?? [], stored[0]?.metadata.managedFields ?? []);
    return { stored, conflicts: taken.length > 0 ? taken : parsed.conflicts };
  }
}

/**
 * How many custom resources of each installed CRD exist (what a CRD delete would have destroyed),
 * in one kubectl call: `-o name` prints `<kind>.<group>/<name>`, kind in lower case.
 */
async function customResourceCounts(
  run: CommandRunner,
  cluster: ClusterRef,
  crds: Crd[]
): Promise<Map<string, number>> {
  const counts = new Map<string, number>();
  if (crds.length === 0) return counts;
  const { stdout } = await run('kubectl', [
    ...cmd.kubectlTarget(cluster),
    'get',
    crds.map((c) => `${c.spec.names.plural}.${c.spec.group}`).join(','),
    '-A',
    '-o',
    'name',
  ]);
  const lines = stdout.split('\n').filter(Boolean);
  for (const c of crds) {
    const prefix = `${c.spec.names.kind.toLowerCase()}.${c.spec.group}/`;
    counts.set(c.metadata.name, lines.filter((l) => l.startsWith(prefix)).length);
  }
  return counts;
}

const FORCE_FLAG = '--force-crd-reapply';

/** The preview of one cluster's CRDs as plan lines: each CRD, then its conflicts and downgrade under it. */
export function crdPreviewLines(changes: CrdChange[], opts: { allowDowngrade?: boolean } = {}): string[] {
  const lines: string[] = [];
  for (const c of changes) {
    lines.push(`CRD ${c.crd}: ${c.action}, ${c.customResources} custom resource(s)`);
    for (const x of c.conflicts) {
      lines.push(`  CONFLICT with ${x.manager}: ${x.fields.join(', ') || '(fields not reported)'}`);
    }
    if (c.downgrade) {
      lines.push(
        `  DOWNGRADE: installed ${c.downgrade.installed} is newer than the chart's ${c.downgrade.chart}; ` +
          (opts.allowDowngrade ? `going down anyway (${FORCE_FLAG})` : `refused unless ${FORCE_FLAG}`)
      );
    }
  }
  if (changes.some((c) => c.conflicts.length > 0)) {
    lines.push('(the CRD step, once approved, takes conflicting fields over: it applies with --force-conflicts)');
  }
  return lines;
}

/**
 * What an approval of this CRD step names: the step (chart, version, files) and what the dry run
 * says each CRD would get. Custom resource counts are left out: they move on a live cluster
 * without changing what the step does.
 */
export function crdPreviewDigest(step: Step & { kind: 'reapplyCrds' }, changes: CrdChange[]): string {
  const { repo, ...what } = step;
  return digestOf({
    step: { ...what, repo: repo.url },
    changes: changes.map(({ customResources: _counted, ...c }) => c),
  });
}

export interface CrdPreviewSummary {
  changed: number;
  created: number;
  /** CRDs with at least one field another manager owns. */
  conflicts: number;
  /** Names of the CRDs whose installed bundle is newer than the chart's. */
  downgrades: string[];
  text: string;
}

const listed = (xs: string[], max = 5): string =>
  xs.length <= max ? xs.join(', ') : `${xs.slice(0, max).join(', ')} and ${xs.length - max} more`;

/** One short paragraph for the approval gate's details: the counts, the other managers, the downgrades. */
export function summarizeCrdPreview(changes: CrdChange[], opts: { allowDowngrade?: boolean } = {}): CrdPreviewSummary {
  const count = (a: CrdChange['action']) => changes.filter((c) => c.action === a).length;
  const changed = count('change');
  const created = count('create');
  const withConflicts = changes.filter((c) => c.conflicts.length > 0);
  const down = changes.filter((c) => c.downgrade);
  const resources = changes.reduce((n, c) => n + c.customResources, 0);
  const parts = [
    `${changes.length} CRD(s): ${changed} to change, ${created} to create, ${count('unchanged')} unchanged; ${resources} custom resource(s) of these kinds exist.`,
  ];
  if (withConflicts.length > 0) {
    const managers = [...new Set(withConflicts.flatMap((c) => c.conflicts.map((x) => x.manager)))];
    parts.push(
      `${withConflicts.length} with fields owned by ${listed(managers)}, taken over on apply: ${listed(withConflicts.map((c) => c.crd))}.`
    );
  }
  if (down.length > 0) {
    parts.push(
      `${down.length} downgrade(s), ${opts.allowDowngrade ? `going down (${FORCE_FLAG})` : `refused unless ${FORCE_FLAG}`}: ` +
        `${listed(down.map((c) => `${c.crd} (installed ${c.downgrade?.installed}, chart ${c.downgrade?.chart})`))}.`
    );
  }
  return {
    changed,
    created,
    conflicts: withConflicts.length,
    downgrades: down.map((c) => c.crd),
    text: parts.join(' '),
  };
}
