/**
 * The fleet file: which clusters the engine runs on and how to reach them. Parsing and validation
 * are pure (text in, Fleet out); reading the file is the CLI's job.
 */
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { distinctApprovers } from './approval-policy';
import { parseDurationMs } from './duration';
import { isLabelKey, isLabelValue } from './selector';
import type { ChartRepo, Fleet, RegistryTls, SecretRef } from './types';
import { selectorSchema, windowSchema } from './windows';

export const DEFAULT_NAMESPACE = 'skoala-system';
/** Task queue of the workers, unless a cluster names its site's own. */
export const DEFAULT_TASK_QUEUE = 'skoala-upgrade';
export const DEFAULT_CHART_REPO = { name: 'skoala', url: 'https://release.daocloud.io/chartrepo/skoala' };

/** DNS-1123 label: cluster names end up in workflow IDs and backup paths. */
export const CLUSTER_NAME = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
const name = z.string().regex(CLUSTER_NAME, 'must be a DNS-1123 label (lowercase letters, digits, "-")');

/**
 * Refused before the file is read: parsing a multi-megabyte YAML file takes seconds. 4 MiB holds
 * thousands of clusters with long paths and comments.
 */
export const MAX_FLEET_FILE_BYTES = 4 * 1024 * 1024;
/**
 * Workers one upgrade takes. The product is designed and measured for up to 1,000 (see the bench
 * in the README); 5,000 leaves headroom without letting a generated file run for minutes.
 */
export const MAX_WORKER_CLUSTERS = 5000;

/** `helm repo add NAME`: a leading "-" would read as an option. */
const REPO_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;
/** Characters a shell, a log line or helm's own parsing could read as something else. */
const URL_UNSAFE = /[\s;'"`$\\\p{Cc}]/u;
const DNS_NAME = /^(?=.{1,253}$)[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?(\.[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)*$/i;
const IPV4 = /^((25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)$/;
const URL_ACCEPTED = 'must be an http://, https:// or oci:// URL with a host';

/** Why `raw` is not an acceptable chart repository URL, or undefined if it is. */
function chartRepoUrlProblem(raw: string): string | undefined {
  const got = (s: string) => `(got ${JSON.stringify(s.length > 100 ? `${s.slice(0, 100)}...` : s)})`;
  const unsafe = URL_UNSAFE.exec(raw);
  if (unsafe) return `must not contain ${JSON.stringify(unsafe[0])} ${got(raw)}`;
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return `${URL_ACCEPTED} ${got(raw)}`;
  }
  // URL also takes "http:host" and "http:/host"; helm and the reader expect scheme://host.
  const scheme = /^(https?|oci):\/\//i.exec(raw);
  if (!scheme || !['http:', 'https:', 'oci:'].includes(url.protocol)) return `${URL_ACCEPTED} ${got(raw)}`;
  // Checked as written, not as URL normalizes it (lowercase, punycode, "0x7f.1" -> "127.0.0.1"): helm gets the text.
  const authority = raw.slice(scheme[0].length).split(/[/?#]/)[0] ?? '';
  const at = authority.lastIndexOf('@');
  if (at >= 0 || url.username !== '' || url.password !== '') {
    // Echoed without the secret.
    const shown = `${scheme[0]}***@${authority.slice(at + 1)}${raw.slice(scheme[0].length + authority.length)}`;
    return `credentials do not belong in the URL: it is shown in plans, logs and workflow history ${got(shown)}`;
  }
  const host = authority.replace(/:\d*$/, '');
  const hostOk = host.startsWith('[')
    ? url.hostname.startsWith('[') // URL has checked the IPv6 address
    : host.toLowerCase() === url.hostname.toLowerCase() &&
      (/^[\d.]+$/.test(host) ? IPV4.test(host) : DNS_NAME.test(host));
  return hostOk ? undefined : `${URL_ACCEPTED} ${got(raw)}`;
}

const chartRepoUrl = z.string().superRefine((raw, ctx) => {
  const problem = chartRepoUrlProblem(raw);
  if (problem) ctx.addIssue({ code: z.ZodIssueCode.custom, message: problem });
});

/**
 * The count is checked before any cluster is: z.array(cluster).max() would still validate every
 * element of a 100,000-entry list. `fatal` keeps the fleet-level checks off the unchecked list.
 */
const workers = z
  .array(z.unknown())
  .min(1, 'needs at least one worker cluster')
  .superRefine((ws, ctx) => {
    if (ws.length > MAX_WORKER_CLUSTERS)
      ctx.addIssue({
        code: z.ZodIssueCode.custom,
        message: `${ws.length} clusters is more than the ${MAX_WORKER_CLUSTERS} one upgrade can take; split the fleet file`,
        fatal: true,
      });
  });

const cluster = z
  .object({
    name,
    kubeconfig: z.string().min(1).optional(),
    context: z.string().min(1).optional(),
    namespace: z.string().min(1).default(DEFAULT_NAMESPACE),
    taskQueue: z.string().min(1).optional(),
    labels: z
      .record(z.string(), z.string())
      .superRefine((labels, ctx) => {
        for (const [k, v] of Object.entries(labels)) {
          if (!isLabelKey(k)) ctx.addIssue({ code: z.ZodIssueCode.custom, message: `"${k}" is not a valid label key` });
          else if (!isLabelValue(v))
            ctx.addIssue({ code: z.ZodIssueCode.custom, message: `label ${k}: "${v}" is not a valid label value` });
        }
      })
      .optional(),
  })
  .strict()
  .refine((c) => c.kubeconfig !== undefined || c.context !== undefined, {
    message: 'needs a kubeconfig path and/or a context',
  });

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
const BY_REFERENCE = 'credentials are given by reference only: {env: VARIABLE} or {file: PATH} on the worker host';
/** A secret named, never given (see SecretRef): a plain string is refused without echoing it. */
const secretRef = z.unknown().superRefine((v, ctx) => {
  const ok =
    typeof v === 'object' &&
    v !== null &&
    Object.keys(v).length === 1 &&
    (('env' in v && typeof v.env === 'string' && ENV_NAME.test(v.env)) ||
      ('file' in v && typeof v.file === 'string' && v.file.length > 0));
  if (!ok) ctx.addIssue({ code: z.ZodIssueCode.custom, message: BY_REFERENCE });
}) as z.ZodType<SecretRef>;

/** TLS and credentials of a registry; both halves of a pair or neither. */
const registryAccess = {
  username: secretRef.optional(),
  password: secretRef.optional(),
  caFile: z.string().min(1).optional(),
  certFile: z.string().min(1).optional(),
  keyFile: z.string().min(1).optional(),
  insecureSkipTlsVerify: z.boolean().optional(),
};
function checkPairs(
  r: { username?: unknown; password?: unknown; certFile?: string; keyFile?: string },
  ctx: z.RefinementCtx
) {
  if ((r.username === undefined) !== (r.password === undefined))
    ctx.addIssue({ code: z.ZodIssueCode.custom, message: 'username and password go together: give both or neither' });
  if ((r.certFile === undefined) !== (r.keyFile === undefined))
    ctx.addIssue({ code: z.ZodIssueCode.custom, message: 'certFile and keyFile go together: give both or neither' });
}

const chartRepo = z
  .object({
    name: z
      .string()
      .regex(REPO_NAME, 'must be a simple repository name (letters, digits, "-", "_", "."), as in helm repo add NAME'),
    url: chartRepoUrl,
    ...registryAccess,
  })
  .strict()
  .superRefine((r, ctx) => {
    checkPairs(r, ctx);
    if (/^http:\/\//i.test(r.url) && (r.caFile || r.certFile || r.insecureSkipTlsVerify))
      ctx.addIssue({
        code: z.ZodIssueCode.custom,
        message: 'TLS settings (caFile, certFile, insecureSkipTlsVerify) need an https:// or oci:// URL',
      });
  });

const HOST_PORT = /^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?(:\d{1,5})?$/;
/** host[:port][/path], the path in image reference syntax (lowercase components joined by `.`, `_`, `-`). */
const IMAGE_REGISTRY = /^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?(:\d{1,5})?(\/[a-z0-9]+([._-][a-z0-9]+)*)*$/;
const imageRegistry = z
  .object({
    host: z.string().regex(HOST_PORT, 'must be host or host:port, as image references name it'),
    ...registryAccess,
  })
  .strict()
  .superRefine(checkPairs);

/** A duration such as `30m`, `4h`, `1h30m`, `2d` within [min, max]. */
const duration = (minMs: number, maxMs: number, range: string) =>
  z.string().transform((text, ctx) => {
    const ms = parseDurationMs(text);
    if (ms === undefined || ms < minMs || ms > maxMs) {
      ctx.addIssue({
        code: z.ZodIssueCode.custom,
        message: `"${text}" must be a duration ${range}, such as 30m, 4h or 1h30m`,
      });
      return z.NEVER;
    }
    return ms;
  });

/** Who may approve, how many, and what a gate does when nobody decides (runbook/approval-policy.ts). */
const approvals = z
  .object({
    approvers: z.array(z.string().trim().min(1)).min(1, 'lists nobody: leave it out to let anyone approve').optional(),
    notStarter: z.boolean().optional(),
    rules: z.array(z.object({ select: selectorSchema, distinct: z.number().int().min(1).max(10) }).strict()).optional(),
    deadline: duration(60_000, 30 * 86_400_000, 'from 1m to 30d').optional(),
    onDeadline: z.enum(['reject', 'fail']).optional(),
    remindEvery: duration(60_000, 7 * 86_400_000, 'from 1m to 7d').optional(),
  })
  .strict()
  .superRefine((a, ctx) => {
    if (a.onDeadline && a.deadline === undefined)
      ctx.addIssue({ code: z.ZodIssueCode.custom, message: 'onDeadline needs a deadline' });
    const need = Math.max(0, ...(a.rules ?? []).map((r) => r.distinct));
    // People, not entries: names are compared without case, as the gates count them.
    const people = a.approvers ? distinctApprovers(a.approvers).length : Infinity;
    if (need > people)
      ctx.addIssue({
        code: z.ZodIssueCode.custom,
        message: `a rule needs ${need} distinct approvers but only ${people} are allowed`,
      });
  })
  .transform((a) => ({
    ...(a.approvers ? { approvers: a.approvers } : {}),
    ...(a.notStarter ? { notStarter: true } : {}),
    ...(a.rules ? { rules: a.rules } : {}),
    ...(a.deadline !== undefined ? { deadlineMs: a.deadline, onDeadline: a.onDeadline ?? ('reject' as const) } : {}),
    ...(a.remindEvery !== undefined ? { remindEveryMs: a.remindEvery } : {}),
  }));

/** The webhook. A header's value is named by an environment variable, never written here. */
const notify = z
  .object({
    url: z.string().superRefine((raw, ctx) => {
      const problem = /^https?:\/\//i.test(raw) ? chartRepoUrlProblem(raw) : 'must be an http:// or https:// URL';
      if (problem)
        ctx.addIssue({
          code: z.ZodIssueCode.custom,
          message: problem.replace(/an http:\/\/, https:\/\/ or oci:\/\//, 'an http:// or https://'),
        });
    }),
    header: z
      .object({
        name: z.string().regex(/^[A-Za-z0-9-]+$/, 'must be an HTTP header name'),
        env: z.string().regex(ENV_NAME, 'must name an environment variable of the worker (the value is read there)'),
      })
      .strict()
      .optional(),
  })
  .strict();

const fleetSchema = z
  .object({
    name,
    chartRepo: chartRepo.default(DEFAULT_CHART_REPO),
    registries: z.array(imageRegistry).default([]),
    checkImages: z.boolean().default(true),
    backupStore: z.enum(['dir', 'cluster']).default('dir'),
    controlPlane: cluster,
    workers: workers.pipe(z.array(cluster)),
    valuesFiles: z
      .object({ skoala: z.array(z.string().min(1)).default([]), skoalaInit: z.array(z.string().min(1)).default([]) })
      .strict()
      .default({}),
    dbMigrationJob: z.string().min(1).optional(),
    extraCrds: z.array(z.string().min(1)).default([]),
    // It becomes `--set global.imageRegistry=VALUE`: a comma or `=` would add --set pairs of its own.
    imageRegistry: z
      .string()
      .regex(IMAGE_REGISTRY, 'must be a registry host[:port][/path], e.g. harbor.example.com:5000/skoala')
      .optional(),
    windows: z.array(windowSchema).optional(),
    approvals: approvals.optional(),
    notify: notify.optional(),
  })
  .strict()
  .superRefine((f, ctx) => {
    const seen = new Map<string, number>();
    [f.controlPlane, ...f.workers].forEach((c, i) => {
      if (seen.has(c.name)) {
        ctx.addIssue({
          code: z.ZodIssueCode.custom,
          path: i === 0 ? ['controlPlane', 'name'] : ['workers', i - 1, 'name'],
          message: `duplicate cluster name "${c.name}"`,
        });
      }
      seen.set(c.name, i);
    });
    (f.windows ?? []).forEach((w, i) =>
      (w.clusters ?? []).forEach((name, j) => {
        if (!f.workers.some((c) => c.name === name))
          ctx.addIssue({
            code: z.ZodIssueCode.custom,
            path: ['windows', i, 'clusters', j],
            message: `"${name}" is not a worker cluster of this fleet`,
          });
      })
    );
  });

/** One problem with a fleet file, worded for a single line of output. */
export class FleetError extends Error {
  constructor(
    readonly file: string,
    readonly fieldPath: string,
    readonly problem: string
  ) {
    super(`${file}: ${fieldPath ? `${fieldPath}: ` : ''}${problem}`);
    this.name = 'FleetError';
  }
}

/** Parses and validates a fleet file's text; relative paths are resolved by `resolvePath`. */
export function parseFleet(text: string, file: string, resolvePath: (p: string) => string = (p) => p): Fleet {
  let raw: unknown;
  try {
    raw = parseYaml(text);
  } catch (err) {
    throw new FleetError(file, '', `not valid YAML: ${(err as Error).message.split('\n')[0]}`);
  }
  const parsed = fleetSchema.safeParse(raw ?? {});
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const path = issue
      ? issue.path
          .map((p) => (typeof p === 'number' ? `[${p}]` : `.${p}`))
          .join('')
          .replace(/^\./, '')
      : '';
    throw new FleetError(file, path, issue?.message ?? 'invalid');
  }
  const f = parsed.data;
  const abs = (p: string | undefined): string | undefined => (p === undefined ? undefined : resolvePath(p));
  const ref = (c: typeof f.controlPlane) => ({ ...c, kubeconfig: abs(c.kubeconfig) });
  const secret = (r: SecretRef | undefined): SecretRef | undefined =>
    r === undefined ? undefined : 'file' in r ? { file: resolvePath(r.file) } : r;
  // Files are resolved like every other fleet path; absent keys stay absent (history stays small).
  const access = <T extends RegistryTls & { username?: SecretRef; password?: SecretRef }>(r: T): T => {
    const out: Record<string, unknown> = { ...(r as object) };
    for (const k of ['caFile', 'certFile', 'keyFile'] as const) if (r[k] !== undefined) out[k] = resolvePath(r[k]);
    for (const k of ['username', 'password'] as const) if (r[k] !== undefined) out[k] = secret(r[k]);
    return out as T;
  };
  return {
    name: f.name,
    chartRepo: access<ChartRepo>(f.chartRepo),
    registries: f.registries.map((r) => access(r)),
    checkImages: f.checkImages,
    backupStore: f.backupStore,
    controlPlane: ref(f.controlPlane),
    workers: f.workers.map(ref),
    valuesFiles: {
      skoala: f.valuesFiles.skoala.map(resolvePath),
      skoalaInit: f.valuesFiles.skoalaInit.map(resolvePath),
    },
    dbMigrationJob: abs(f.dbMigrationJob),
    extraCrds: f.extraCrds.map(resolvePath),
    imageRegistry: f.imageRegistry,
    ...(f.windows && f.windows.length > 0 ? { windows: f.windows } : {}),
    ...(f.approvals && Object.keys(f.approvals).length > 0 ? { approvals: f.approvals } : {}),
    ...(f.notify ? { notify: f.notify } : {}),
  };
}

/** Workflow ID: one upgrade per fleet at a time, whatever the version, so two versions never race on its clusters. */
export const upgradeWorkflowId = (fleetName: string): string => `skoala-upgrade-${fleetName}`;

/**
 * The upgrade ID: this fleet going to this version. It marks what the upgrade makes (helm revisions,
 * the DB-migration Job, backups), so a rerun of the same upgrade recognises its own work.
 */
export const upgradeIdFor = (fleetName: string, version: string): string =>
  `${upgradeWorkflowId(fleetName)}-${version}`;
