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
import {
  completeParse,
  conflictMessages,
  fieldsTakenOver,
  parseConflicts,
  sameConflicts,
  type CrdConflict,
  type ManagedFieldsEntry,
} from './crd-conflicts';
import type { CommandRunner } from './exec';

export type { CrdConflict } from './crd-conflicts';

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

/** The whole text of a failed command as the runner reports it (its failure keeps the telling stderr lines). */
function failureText(err: unknown): string {
  if (err instanceof ApplicationFailure) {
    const details = err.details?.[0] as { stderr?: unknown } | undefined;
    const lines = Array.isArray(details?.stderr) ? details.stderr.map(String) : [];
    return [...lines, err.message].join('\n');
  }
  return err instanceof Error ? err.message : String(err);
}

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
    const { docs, unread } = await splitManifests(files, tmp);
    const names = [...new Set(docs.map(crdName).filter((x): x is string => x !== undefined))];
    const installed = await installedCrds(run, cluster, names, { showManagedFields: true });
    const results =
      (await dryRunAll(run, cluster, docs, installed)) ?? (await dryRunEach(run, cluster, docs, installed));
    const counts = await customResourceCounts(
      run,
      cluster,
      results.filter((r) => installed.has(r.stored.metadata.name)).map((r) => r.stored)
    );
    // Files were previewed one by one before: one that cannot be read fails after those before it.
    if (unread !== undefined) throw unread;
    return results.map(({ stored, conflicts, manifest }): CrdChange => {
      const existing = installed.get(stored.metadata.name);
      const downgrade = crdDowngrade(existing, manifest);
      return {
        cluster: cluster.name,
        crd: stored.metadata.name,
        // The dry run returns the object as it would be stored: compare it with what is stored now.
        action: !existing ? 'create' : content(existing) === content(stored) ? 'unchanged' : 'change',
        customResources: existing ? (counts.get(stored.metadata.name) ?? 0) : 0,
        conflicts,
        ...(downgrade ? { downgrade } : {}),
      };
    });
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}

/** A manifest document in a file of its own (`file`): kubectl reads each exactly as applied alone. */
interface PreviewDoc extends ManifestDoc {
  file: string;
}

/** Each document of the files in a file of its own, in order, up to the first file that cannot be read. */
async function splitManifests(files: string[], dir: string): Promise<{ docs: PreviewDoc[]; unread?: unknown }> {
  const docs: PreviewDoc[] = [];
  for (const file of files) {
    let found: ManifestDoc[];
    try {
      found = manifestDocs(await readFile(file, 'utf8'), file);
    } catch (err) {
      return { docs, unread: err };
    }
    for (const doc of found) {
      const one = path.join(dir, `crd-${docs.length + 1}.yaml`);
      await writeFile(one, doc.text);
      docs.push({ ...doc, file: one });
    }
  }
  return { docs };
}

/** What the dry run says of one object: as it would be stored, and whose fields it would take. */
interface DryRun {
  stored: Crd;
  conflicts: CrdConflict[];
  manifest: Crd;
}

/** The objects kubectl printed, if they are the named documents' own, in order. */
function inOrder(stdout: string, names: (string | undefined)[]): Crd[] | undefined {
  const out = stdout.trim() ? items(stdout) : [];
  return out.length === names.length && out.every((c, i) => c.metadata?.name === names[i]) ? out : undefined;
}

/**
 * Every document in one kubectl run per mode, with exactly the answer dryRunEach gives; undefined
 * when that is not certain (then dryRunEach runs, and fails as it always did). kubectl applies each
 * object on its own and goes on after a conflict, but then prints no object and its messages name
 * none: they are matched, in order, to the objects the forced run takes fields from.
 */
async function dryRunAll(
  run: CommandRunner,
  cluster: ClusterRef,
  docs: PreviewDoc[],
  installed: Map<string, Crd>
): Promise<DryRun[] | undefined> {
  if (docs.length === 0) return [];
  const names = docs.map(crdName);
  if (names.includes(undefined) || new Set(names).size < names.length) return undefined;
  const files = docs.map((d) => d.file);
  const apply = (forceConflicts: boolean) =>
    run(
      'kubectl',
      cmd.kubectlApplyCrd(cluster, files, { dryRun: true, forceConflicts, showManagedFields: forceConflicts }),
      { allowFailure: true }
    );
  const plain = await apply(false);
  const answer = (stored: Crd[] | undefined, conflicts: (i: number) => CrdConflict[]) =>
    stored?.map((c, i) => ({ stored: c, conflicts: conflicts(i), manifest: (docs[i] as PreviewDoc).object }));
  if (!plain.exitCode) return answer(inOrder(plain.stdout, names), () => []);
  const messages = conflictMessages(plain.stderr);
  if (!messages) return undefined;
  const forced = await apply(true);
  const stored = forced.exitCode ? undefined : inOrder(forced.stdout, names);
  if (!stored) return undefined;
  const taken = stored.map((c) =>
    fieldsTakenOver(installed.get(c.metadata.name)?.metadata.managedFields ?? [], c.metadata.managedFields ?? [])
  );
  // What the forced run took must be what the API server named: then it is what dryRunOne reports.
  const met = taken.filter((t) => t.length > 0);
  if (met.length !== messages.length || met.some((t, i) => !sameConflicts(t, messages[i] ?? []))) return undefined;
  return answer(stored, (i) => taken[i] ?? []);
}

/** One dry run per document (two on a conflict): each failure is that document's own, read as it always was. */
async function dryRunEach(
  run: CommandRunner,
  cluster: ClusterRef,
  docs: PreviewDoc[],
  installed: Map<string, Crd>
): Promise<DryRun[]> {
  const out: DryRun[] = [];
  for (const doc of docs) {
    const name = crdName(doc);
    const { stored, conflicts } = await dryRunOne(run, cluster, doc.file, name ? installed.get(name) : undefined);
    out.push(...stored.map((c) => ({ stored: c, conflicts, manifest: doc.object })));
  }
  return out;
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
  const resources = [...new Set(crds.map((c) => `${c.spec.names.plural}.${c.spec.group}`))];
  const { stdout } = await run('kubectl', cmd.kubectlListCustomResources(cluster, resources));
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
