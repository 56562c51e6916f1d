/**
 * Keeping credentials out of what the plan prints: Secret data, values under credential-looking
 * keys, and every copy of such a value elsewhere (a password templated into a ConfigMap or an env
 * var). Pure: the manifest diff (runbook/manifest-diff.ts) redacts with it before anything is diffed.
 */

/** What a credential becomes in printed output. */
export const REDACTED = '<redacted>';
/** A credential whose value differs from the installed one: that it changes is worth seeing, not what to. */
export const REDACTED_CHANGED = '<redacted, changed>';

/** Keys whose values are treated as credentials, at any depth of the values. */
export const CREDENTIAL_KEY = /pass(word)?|secret|token|credential|private.?key|api.?key/i;

/**
 * Copies shorter than this are replaced only where they are a whole value, not inside longer
 * strings: a 3-letter password would otherwise blank out every word that contains it.
 */
export const MIN_EMBEDDED_LENGTH = 6;

type Json = unknown;

const isMap = (v: Json): v is Record<string, Json> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Every string (and number) under a node: the values a redaction of that node must also catch elsewhere. */
function leaves(v: Json, out: Set<string>): void {
  if (typeof v === 'string' || typeof v === 'number') {
    const s = String(v);
    if (s !== '' && s !== REDACTED && s !== REDACTED_CHANGED) out.add(s);
  } else if (Array.isArray(v)) v.forEach((x) => leaves(x, out));
  else if (isMap(v)) Object.values(v).forEach((x) => leaves(x, out));
}

/** A Secret's data value, base64-decoded when it is base64 (the decoded form is what a copy would hold). */
function decoded(v: Json): string | undefined {
  if (typeof v !== 'string' || !/^[A-Za-z0-9+/]*={0,2}$/.test(v)) return undefined;
  const text = Buffer.from(v, 'base64').toString('utf8');
  return text.includes('\uFFFD') ? undefined : text;
}

const isSecret = (o: Json): o is { kind: 'Secret'; data?: Json; stringData?: Json } => isMap(o) && o.kind === 'Secret';

/** `env: [{name: DB_PASSWORD, value: ...}]`: a credential by its variable's name. */
const isCredentialEnv = (o: Json): o is { name: string; value: Json } =>
  isMap(o) && typeof o.name === 'string' && 'value' in o && CREDENTIAL_KEY.test(o.name);

/**
 * The credential values found in manifests' objects and in values: Secret data and stringData
 * (and their decoded form), every leaf under a credential-looking key of the values, and the value
 * of an env var with a credential-looking name.
 */
export function collectCredentials(input: { objects: Json[]; values: Json[] }): Set<string> {
  const out = new Set<string>();
  const walkValues = (v: Json): void => {
    if (Array.isArray(v)) v.forEach(walkValues);
    else if (isMap(v))
      for (const [k, x] of Object.entries(v)) {
        if (CREDENTIAL_KEY.test(k)) leaves(x, out);
        else walkValues(x);
      }
  };
  const walkObject = (v: Json): void => {
    if (isCredentialEnv(v)) leaves(v.value, out);
    if (Array.isArray(v)) v.forEach(walkObject);
    else if (isMap(v)) Object.values(v).forEach(walkObject);
  };
  for (const o of input.objects) {
    if (isSecret(o)) {
      for (const field of ['data', 'stringData'] as const) {
        const m = o[field];
        if (!isMap(m)) continue;
        for (const x of Object.values(m)) {
          leaves(x, out);
          const d = field === 'data' ? decoded(x) : undefined;
          if (d) out.add(d);
        }
      }
    }
    walkObject(o);
  }
  input.values.forEach(walkValues);
  return out;
}

/** Redacts one side of a diff; `other` is the same thing on the other side, to tell a changed credential. */
export class Redactor {
  private readonly embedded: string[];

  constructor(private readonly credentials: Set<string>) {
    // Longest first: a credential that contains another is replaced whole.
    this.embedded = [...credentials].filter((c) => c.length >= MIN_EMBEDDED_LENGTH).sort((a, b) => b.length - a.length);
  }

  /** Every copy of a credential inside a text (a patch, a message), whatever else redaction missed. */
  scrub(text: string): string {
    let out = text;
    for (const c of this.embedded) out = out.split(c).join(REDACTED);
    return out;
  }

  /** How many distinct credential values there are to redact. */
  get found(): number {
    return this.credentials.size;
  }

  private marker(v: Json, other: Json, compare: boolean): string {
    return compare && JSON.stringify(v) !== JSON.stringify(other) ? REDACTED_CHANGED : REDACTED;
  }

  /** Copies of credentials anywhere in an object: a whole string that is one, or one inside a longer string. */
  private copies(v: Json): Json {
    if (typeof v === 'string') {
      return this.credentials.has(v) ? REDACTED : this.scrub(v);
    }
    if (Array.isArray(v)) return v.map((x) => this.copies(x));
    if (isMap(v)) return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, this.copies(x)]));
    return v; // numbers and booleans stay: a port equal to a numeric password is no copy of it
  }

  /**
   * A manifest object: a Secret's data and stringData values become markers (keys kept), an env
   * var with a credential-looking name loses its value, then copies go. `other`: the same
   * resource on the other side, if it exists there.
   */
  object(o: Json, other?: Json): Json {
    const env = (v: Json, w: Json): Json => {
      if (Array.isArray(v))
        return v.map((x, i) => {
          if (!isCredentialEnv(x)) return env(x, Array.isArray(w) ? w[i] : undefined);
          // Env vars are matched by name: an added or reordered variable is no change of this one's value.
          const theirs = Array.isArray(w) ? w.find((y) => isCredentialEnv(y) && y.name === x.name) : undefined;
          return { ...x, value: this.marker(x.value, isCredentialEnv(theirs) ? theirs.value : undefined, !!theirs) };
        });
      if (isMap(v))
        return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, env(x, isMap(w) ? w[k] : undefined)]));
      return v;
    };
    let out = env(o, other);
    if (isSecret(out)) {
      const secret: Record<string, Json> = { ...out };
      for (const field of ['data', 'stringData'] as const) {
        const m = secret[field];
        if (!isMap(m)) continue;
        const theirs = isMap(other) && isMap(other[field]) ? other[field] : undefined;
        secret[field] = Object.fromEntries(
          Object.entries(m).map(([k, x]) => [k, this.marker(x, theirs?.[k], theirs !== undefined && k in theirs)])
        );
      }
      out = secret;
    }
    return this.copies(out);
  }

  /** Values: everything under a credential-looking key becomes a marker, then copies go. */
  values(v: Json, other?: Json): Json {
    const walk = (x: Json, w: Json, present: boolean): Json => {
      if (Array.isArray(x)) return x.map((y, i) => walk(y, Array.isArray(w) ? w[i] : undefined, present));
      if (!isMap(x)) return x;
      return Object.fromEntries(
        Object.entries(x).map(([k, y]) => {
          const theirs = isMap(w) && k in w;
          if (CREDENTIAL_KEY.test(k) && y !== null && y !== '')
            return [k, this.marker(y, isMap(w) ? w[k] : undefined, present && theirs)];
          return [k, walk(y, isMap(w) ? w[k] : undefined, present && theirs)];
        })
      );
    };
    return this.copies(walk(v, other, other !== undefined));
  }
}
