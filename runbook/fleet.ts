/**
 * The fleet file: which clusters the engine runs on and how to reach them. Parsing and validation
 * are pure (text in, Fleet out); reading the file is the CLI's job.
 */
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import type { Fleet } from './types';

export const DEFAULT_NAMESPACE = 'skoala-system';
/** Task queue of the workers, unless a cluster names its site's own. */
export const DEFAULT_TASK_QUEUE = 'skoala-upgrade';
export const DEFAULT_CHART_REPO = { name: 'skoala', url: 'https://release.daocloud.io/chartrepo/skoala' };

/** DNS-1123 label: cluster names end up in workflow IDs and backup paths. */
export const CLUSTER_NAME = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
const name = z.string().regex(CLUSTER_NAME, 'must be a DNS-1123 label (lowercase letters, digits, "-")');

const cluster = z
  .object({
    name,
    kubeconfig: z.string().min(1).optional(),
    context: z.string().min(1).optional(),
    namespace: z.string().min(1).default(DEFAULT_NAMESPACE),
    taskQueue: z.string().min(1).optional(),
  })
  .strict()
  .refine((c) => c.kubeconfig !== undefined || c.context !== undefined, {
    message: 'needs a kubeconfig path and/or a context',
  });

const fleetSchema = z
  .object({
    name,
    chartRepo: z
      .object({ name: z.string().min(1), url: z.string().url() })
      .strict()
      .default(DEFAULT_CHART_REPO),
    controlPlane: cluster,
    workers: z.array(cluster).min(1, 'needs at least one worker cluster'),
    valuesFiles: z
      .object({ skoala: z.array(z.string().min(1)).default([]), skoalaInit: z.array(z.string().min(1)).default([]) })
      .strict()
      .default({}),
    dbMigrationJob: z.string().min(1).optional(),
    extraCrds: z.array(z.string().min(1)).default([]),
    imageRegistry: z.string().min(1).optional(),
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
  return {
    name: f.name,
    chartRepo: f.chartRepo,
    controlPlane: ref(f.controlPlane),
    workers: f.workers.map(ref),
    valuesFiles: {
      skoala: f.valuesFiles.skoala.map(resolvePath),
      skoalaInit: f.valuesFiles.skoalaInit.map(resolvePath),
    },
    dbMigrationJob: abs(f.dbMigrationJob),
    extraCrds: f.extraCrds.map(resolvePath),
    imageRegistry: f.imageRegistry,
  };
}

/** Workflow ID: one upgrade per fleet and target version, so a second start attaches. */
export const upgradeWorkflowId = (fleetName: string, version: string): string =>
  `skoala-upgrade-${fleetName}-${version}`;
