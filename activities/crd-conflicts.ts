/**
 * Server-side-apply conflicts as the CRD preview reports them: read from kubectl's messages (the
 * API server's wording) and from managedFields before and after a forced dry run.
 */
import * as cmd from '../runbook/commands';

export interface CrdConflict {
  /** The other field manager, as the API server names it (`helm`, `kubectl-client-side-apply`, ...). */
  manager: string;
  /** Field paths in the API server's notation, e.g. `.spec.versions`, `.metadata.annotations.x`. */
  fields: string[];
}

export interface ManagedFieldsEntry {
  manager?: string;
  operation?: string;
  apiVersion?: string;
  subresource?: string;
  fieldsV1?: unknown;
}

export interface ParsedConflicts {
  /** The server's total. */
  count: number;
  conflicts: CrdConflict[];
}

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
 * it has one error to print):
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
export function parseConflicts(text: string): ParsedConflicts | undefined {
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

/** Every conflict listed, none cut (`…`) or masked (`***`) by the runner's stderr shortening. */
export const completeParse = (p: ParsedConflicts): boolean =>
  p.conflicts.reduce((n, c) => n + c.fields.length, 0) === p.count &&
  !p.conflicts.some((c) => c.fields.some((f) => f.includes('…') || f.includes('***')));

const HEAD = /^(?:error: )?Apply failed with \d+ conflicts?: /gm;

/**
 * The conflicts of each object that met some, in file order, from the whole stderr of one kubectl
 * apply of several objects. kubectl applies every object and prints the errors when done (after
 * the API server's warnings), `error: ` before a lone one, each without the object's name.
 * Undefined when a message is cut or anything but warnings and conflicts is there.
 */
export function conflictMessages(stderr: string): CrdConflict[][] | undefined {
  const starts = [...stderr.matchAll(HEAD)].map((m) => m.index);
  if (starts.length === 0) return undefined;
  const before = stderr.slice(0, starts[0]).split('\n');
  if (before.some((l) => l.trim() !== '' && !l.startsWith('Warning: '))) return undefined;
  const out: CrdConflict[][] = [];
  for (const [i, start] of starts.entries()) {
    const parsed = parseConflicts(stderr.slice(start, starts[i + 1]));
    if (!parsed || !completeParse(parsed)) return undefined;
    out.push(parsed.conflicts);
  }
  return out;
}

const pairs = (cs: CrdConflict[]): Set<string> => new Set(cs.flatMap((c) => c.fields.map((f) => `${c.manager}\0${f}`)));

/** The same manager-field pairs, whatever their order. */
export function sameConflicts(a: CrdConflict[], b: CrdConflict[]): boolean {
  const [x, y] = [pairs(a), pairs(b)];
  return x.size === y.size && [...x].every((p) => y.has(p));
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
 * message reached us cut (the runner keeps only its `error:` line, not the list below it) or named
 * no object (an apply of several).
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
