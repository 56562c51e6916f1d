/**
 * What an upgrade changes in a cluster, for the plan: the release's installed manifest against the
 * server-side dry run of the upgrade, resource by resource, and its effective values key by key.
 * Credentials are redacted (runbook/redact.ts) before anything is compared, so neither the summary
 * nor the full diff can print one. Pure: activities/manifest-diff.ts runs helm and calls this.
 */
import { createTwoFilesPatch, diffLines, FILE_HEADERS_ONLY } from 'diff';
import { parseAllDocuments, stringify } from 'yaml';
import { collectCredentials, Redactor } from './redact';
import type { ReleaseName, Version } from './types';

/** One document of a rendered manifest. */
export interface ManifestResource {
  /** `Kind/namespace/name`: what the two sides are matched by. */
  key: string;
  /** `deployment/hive`; `service/other/api` when the namespace is not the release's (given). */
  label: string;
  object: unknown;
}

export type Change = 'added' | 'removed' | 'changed';

export interface ResourceChange {
  resource: string;
  change: Change;
  /** One line: `~ deployment/hive: image: ...:v0.18.0 -> ...:v0.19.2`, or `~ deployment/hive: +3 -1 lines`. */
  summary: string;
  /** The unified diff of the resource (redacted); left out of `plan --json` without `--diff`. */
  patch?: string;
}

export interface ValueChange {
  /** `hive.image.tag`, `list[0].name`. */
  path: string;
  change: Change;
  from?: string;
  to?: string;
}

/** What the upgrade of one release changes, redacted. */
export interface ManifestDiff {
  cluster: string;
  release: ReleaseName;
  from?: Version;
  to: Version;
  resources: ResourceChange[];
  /** Resources the upgrade leaves as they are. */
  unchanged: number;
  values: ValueChange[];
  /** How many distinct credential values were found: each shows as `<redacted>` wherever it appears. */
  redacted: number;
  /** The dry run (or a read) failed: nothing else is known. The real upgrade may fail the same way. */
  error?: string;
}

/** One side: a manifest as helm prints it, and the effective values (chart defaults merged with the user's). */
export interface ReleaseSide {
  manifest: string;
  values: unknown;
}

const isMap = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** The documents of `helm get manifest` (`---` and `# Source:` separated), empty ones left out. */
export function splitManifest(text: string, namespace?: string): ManifestResource[] {
  const out: ManifestResource[] = [];
  const seen = new Map<string, number>();
  for (const doc of parseAllDocuments(text)) {
    if (doc.errors.length > 0) throw new Error(`rendered manifest is not valid YAML: ${doc.errors[0]?.message}`);
    const object: unknown = doc.toJS();
    if (!isMap(object)) continue;
    const meta = isMap(object.metadata) ? object.metadata : {};
    const kind = String(object.kind ?? 'Unknown');
    const name = String(meta.name ?? '?');
    const ns = typeof meta.namespace === 'string' ? meta.namespace : undefined;
    let key = `${kind}/${ns ?? ''}/${name}`;
    const n = (seen.get(key) ?? 0) + 1;
    seen.set(key, n);
    if (n > 1) key += `#${n}`; // helm refuses duplicates; a diff need not
    const where = ns && namespace !== undefined && ns !== namespace ? `${ns}/` : '';
    out.push({ key, label: `${kind.toLowerCase()}/${where}${name}${n > 1 ? `#${n}` : ''}`, object });
  }
  return out;
}

/** Chart defaults with the user's values over them, as helm coalesces them: maps merge, `null` deletes. */
export function effectiveValues(defaults: unknown, user: unknown): unknown {
  if (!isMap(user)) return user === undefined ? defaults : user;
  const out: Record<string, unknown> = isMap(defaults) ? { ...defaults } : {};
  for (const [k, v] of Object.entries(user)) {
    if (v === null) delete out[k];
    else out[k] = isMap(v) && isMap(out[k]) ? effectiveValues(out[k], v) : v;
  }
  return out;
}

const scalar = (v: unknown): string => {
  if (typeof v === 'string') return v === '' || /^\s|\s$|\n/.test(v) ? JSON.stringify(v) : v;
  if (isMap(v) || Array.isArray(v)) return JSON.stringify(v); // only empty ones reach here
  return String(v);
};

/** Values as `a.b.c` -> printed leaf; empty maps and lists are leaves. */
export function flattenValues(v: unknown, prefix = '', out = new Map<string, string>()): Map<string, string> {
  const child = (k: string) =>
    /^[\w-]+$/.test(k) ? (prefix ? `${prefix}.${k}` : k) : `${prefix}[${JSON.stringify(k)}]`;
  if (isMap(v) && Object.keys(v).length > 0) for (const [k, x] of Object.entries(v)) flattenValues(x, child(k), out);
  else if (Array.isArray(v) && v.length > 0) v.forEach((x, i) => flattenValues(x, `${prefix}[${i}]`, out));
  else if (prefix) out.set(prefix, scalar(v));
  return out;
}

/** Longest part of a value printed in a summary line. */
const MAX_VALUE = 120;
const cut = (s: string): string => (s.length > MAX_VALUE ? `${s.slice(0, MAX_VALUE - 1)}…` : s);

/**
 * The new value with what it shares with the old one left out, from a separator on:
 * `release.daocloud.io/skoala/hive:v0.18.0` -> `...:v0.19.2`. Short common parts are kept.
 */
function shortened(before: string, after: string): string {
  let n = 0;
  while (n < before.length && n < after.length && before[n] === after[n]) n++;
  const cutAt = Math.max(...[':', '/', '@', '='].map((sep) => before.lastIndexOf(sep, n - 1)));
  return cutAt >= 16 ? `...${after.slice(cutAt)}` : after;
}

/** `image: a -> ...:b` for a one-line change of one key; the two lines otherwise. */
function oneLine(before: string, after: string): string {
  const field = /^\s*(?:- )?([^:]+): (.*)$/;
  const [a, b] = [field.exec(before), field.exec(after)];
  if (a && b && a[1] === b[1]) return `${a[1]}: ${cut(a[2] ?? '')} -> ${cut(shortened(a[2] ?? '', b[2] ?? ''))}`;
  return `${cut(before.trim())} -> ${cut(after.trim())}`;
}

function changeSummary(label: string, before: string, after: string): string {
  const parts = diffLines(before, after);
  const lines = (added: boolean) =>
    parts.filter((p) => (added ? p.added : p.removed)).flatMap((p) => p.value.split('\n').filter((l) => l !== ''));
  const [plus, minus] = [lines(true), lines(false)];
  if (plus.length === 1 && minus.length === 1) return `~ ${label}: ${oneLine(minus[0] ?? '', plus[0] ?? '')}`;
  return `~ ${label}: +${plus.length} -${minus.length} lines`;
}

const yamlOf = (o: unknown): string => stringify(o, { lineWidth: 0 });

/**
 * The redacted diff of one release: the credentials of both sides are collected first, so a
 * password is redacted wherever either side has it, including copies in other objects.
 */
export function diffRelease(
  current: ReleaseSide,
  target: ReleaseSide,
  opts: { namespace?: string; fromHeader?: string; toHeader?: string } = {}
): Pick<ManifestDiff, 'resources' | 'unchanged' | 'values' | 'redacted'> {
  const [before, after] = [
    splitManifest(current.manifest, opts.namespace),
    splitManifest(target.manifest, opts.namespace),
  ];
  const redactor = new Redactor(
    collectCredentials({
      objects: [...before, ...after].map((r) => r.object),
      values: [current.values, target.values],
    })
  );
  const old = new Map(before.map((r) => [r.key, r]));
  const next = new Map(after.map((r) => [r.key, r]));
  const text = (r: ManifestResource | undefined, other: ManifestResource | undefined): string =>
    r ? yamlOf(redactor.object(r.object, other?.object)) : '';
  const resources: ResourceChange[] = [];
  let unchanged = 0;
  for (const key of [...new Set([...old.keys(), ...next.keys()])].sort()) {
    const [a, b] = [old.get(key), next.get(key)];
    const label = (a ?? b)?.label ?? key;
    // Only the target side says `<redacted, changed>`: the installed side is what it changes from.
    const [x, y] = [text(a, undefined), text(b, a)];
    if (x === y) {
      unchanged++;
      continue;
    }
    const change: Change = !a ? 'added' : !b ? 'removed' : 'changed';
    const patch = createTwoFilesPatch(`a/${label}`, `b/${label}`, x, y, opts.fromHeader, opts.toHeader, {
      context: 3,
      headerOptions: FILE_HEADERS_ONLY,
    });
    const count = (s: string) => s.split('\n').filter((l) => l !== '').length;
    const summary =
      change === 'added'
        ? `+ ${label} (${count(y)} lines)`
        : change === 'removed'
          ? `- ${label} (${count(x)} lines)`
          : changeSummary(label, x, y);
    resources.push({ resource: label, change, summary: redactor.scrub(summary), patch: redactor.scrub(patch) });
  }
  const [va, vb] = [
    flattenValues(redactor.values(current.values)),
    flattenValues(redactor.values(target.values, current.values)),
  ];
  const values: ValueChange[] = [];
  for (const path of [...new Set([...va.keys(), ...vb.keys()])].sort()) {
    const [from, to] = [va.get(path), vb.get(path)];
    if (from === to) continue;
    const scrubbed = {
      from: from === undefined ? from : redactor.scrub(from),
      to: to === undefined ? to : redactor.scrub(to),
    };
    values.push({
      path: redactor.scrub(path),
      change: from === undefined ? 'added' : to === undefined ? 'removed' : 'changed',
      ...(scrubbed.from === undefined ? {} : { from: scrubbed.from }),
      ...(scrubbed.to === undefined ? {} : { to: scrubbed.to }),
    });
  }
  return { resources, unchanged, values, redacted: redactor.found };
}

const valueLine = (v: ValueChange): string =>
  v.change === 'added'
    ? `+ ${v.path}: ${cut(v.to ?? '')}`
    : v.change === 'removed'
      ? `- ${v.path}: ${cut(v.from ?? '')}`
      : `~ ${v.path}: ${cut(v.from ?? '')} -> ${cut(v.to ?? '')}`;

/** Lines of a summary shown before `... and N more`. */
export const COMPACT_LINES = 20;

/** The diff as plan lines: a compact summary (capped), or with `full` every resource's unified diff and every value. */
export function manifestDiffLines(d: ManifestDiff, opts: { full?: boolean; source?: string } = {}): string[] {
  const what = `${d.release} ${d.from ?? '(not installed)'} -> ${d.to}`;
  if (d.error) return [`manifest diff (${what}) FAILED, the upgrade may fail the same way: ${d.error}`];
  const count = (c: Change) => d.resources.filter((r) => r.change === c).length;
  const lines = [
    `manifest diff (${what}, ${opts.source ?? 'server-side dry run'}): ${count('changed')} changed, ${count('added')} added, ${count('removed')} removed, ${d.unchanged} unchanged`,
  ];
  const capped = (xs: string[]) =>
    opts.full || xs.length <= COMPACT_LINES
      ? xs
      : [...xs.slice(0, COMPACT_LINES), `  ... and ${xs.length - COMPACT_LINES} more (plan --diff shows all)`];
  if (opts.full) for (const r of d.resources) lines.push(...(r.patch ?? r.summary).split('\n').filter((l) => l !== ''));
  else lines.push(...capped(d.resources.map((r) => `  ${r.summary}`)));
  lines.push(`values: ${d.values.length === 0 ? 'unchanged' : `${d.values.length} changed`}`);
  lines.push(...capped(d.values.map((v) => `  ${valueLine(v)}`)));
  if (d.redacted > 0) lines.push(`(${d.redacted} credential value(s) found: shown as <redacted> wherever they appear)`);
  return lines;
}
