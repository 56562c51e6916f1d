/**
 * Kubernetes label selectors (`site=east,tier!=prod`, `region in (eu,us)`, `canary`, `!legacy`),
 * parsed and matched as k8s.io/apimachinery's labels.Parse does for these operators: requirements
 * separated by commas, all of which must hold. Pure; written here because no maintained parser of
 * this syntax is published on npm (see the README).
 */

export type Requirement =
  { key: string; op: 'exists' | 'notExists' } | { key: string; op: 'in' | 'notIn'; values: string[] };

export interface Selector {
  text: string;
  requirements: Requirement[];
  matches(labels: Readonly<Record<string, string>>): boolean;
}

export class SelectorError extends Error {
  override name = 'SelectorError';
}

/** A label key: optional DNS prefix and "/", then a name of at most 63 characters. */
const KEY =
  /^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/;
/** A label value: empty, or at most 63 characters of this shape. */
const VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]{0,61})?[A-Za-z0-9])?$/;

export const isLabelKey = (k: string): boolean => KEY.test(k) && (k.split('/')[0]?.length ?? 0) <= 253;
export const isLabelValue = (v: string): boolean => VALUE.test(v);

/** Splits on commas that are not inside parentheses. */
function splitTop(text: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let cur = '';
  for (const ch of text) {
    if (ch === '(') depth++;
    if (ch === ')') depth--;
    if (depth < 0) throw new SelectorError(`unbalanced ")" in "${text}"`);
    if (ch === ',' && depth === 0) {
      parts.push(cur);
      cur = '';
    } else cur += ch;
  }
  if (depth !== 0) throw new SelectorError(`unbalanced "(" in "${text}"`);
  parts.push(cur);
  return parts.map((p) => p.trim());
}

function key(k: string, whole: string): string {
  if (!isLabelKey(k)) throw new SelectorError(`"${k}" is not a valid label key (in "${whole}")`);
  return k;
}

function values(list: string, whole: string): string[] {
  const vs = list.split(',').map((v) => v.trim());
  for (const v of vs)
    if (!isLabelValue(v)) throw new SelectorError(`"${v}" is not a valid label value (in "${whole}")`);
  return vs;
}

function requirement(part: string, whole: string): Requirement {
  if (!part) throw new SelectorError(`empty requirement in "${whole}"`);
  const set = /^(\S+)\s+(in|notin)\s*\((.*)\)$/.exec(part);
  if (set) {
    const vs = values(set[3] as string, whole);
    return { key: key(set[1] as string, whole), op: set[2] === 'in' ? 'in' : 'notIn', values: vs };
  }
  const eq = /^([^=!\s]+)\s*(==|=|!=)\s*(.*)$/.exec(part);
  if (eq) {
    const [v] = values(eq[3] as string, whole) as [string];
    return { key: key(eq[1] as string, whole), op: eq[2] === '!=' ? 'notIn' : 'in', values: [v] };
  }
  const not = /^!\s*(\S+)$/.exec(part);
  if (not) return { key: key(not[1] as string, whole), op: 'notExists' };
  if (/^\S+$/.test(part)) return { key: key(part, whole), op: 'exists' };
  throw new SelectorError(
    `cannot read "${part}" (in "${whole}"): use key=value, key!=value, key in (a,b), key notin (a,b), key or !key`
  );
}

function holds(r: Requirement, labels: Readonly<Record<string, string>>): boolean {
  const has = Object.prototype.hasOwnProperty.call(labels, r.key);
  switch (r.op) {
    case 'exists':
      return has;
    case 'notExists':
      return !has;
    case 'in':
      return has && r.values.includes(labels[r.key] as string);
    case 'notIn':
      // As in Kubernetes: a cluster without the label is selected by `key!=value` and `notin`.
      return !has || !r.values.includes(labels[r.key] as string);
  }
}

export function parseSelector(text: string): Selector {
  const whole = text.trim();
  if (!whole) throw new SelectorError('the selector is empty');
  const requirements = splitTop(whole).map((p) => requirement(p, whole));
  return { text: whole, requirements, matches: (labels) => requirements.every((r) => holds(r, labels)) };
}
