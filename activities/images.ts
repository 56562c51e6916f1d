/**
 * Preflight's image check: render each cluster's target chart with the values it will get, list
 * every image, and ask each image's registry whether it has it, before the DB Job or any upgrade.
 * One activity per worker host (task queue) covers all of that host's clusters; images shared by
 * clusters are asked for once.
 */
import { Context } from '@temporalio/activity';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import pLimit from 'p-limit';
import { helmTemplate, repoHost } from '../runbook/chart-repo';
import * as cmd from '../runbook/commands';
import { imagesInManifests, parseImageRef, type ImageCheckResult, type MissingImage } from '../runbook/images';
import type { ChartRepo, ClusterRef, ImageRegistry, Step } from '../runbook/types';
import { chartRepoSession, readSecret, type ChartRepoSession } from './chart-repo';
import type { CommandRunner } from './exec';
import { manifestExists, type RegistryAccess } from './registry-client';

export interface ImageCheckTarget {
  cluster: ClusterRef;
  kubeVersion: string;
  step: Step & { kind: 'upgradeRelease' };
}

export interface ImageCheckInput {
  targets: ImageCheckTarget[];
  chartRepo: ChartRepo;
  registries: ImageRegistry[];
}

/** Renders and checks at most this many at once: helm start-up dominates, two cores are shared. */
const AT_ONCE = 4;

export function imageActivities(deps: {
  run: CommandRunner;
  repos?: ChartRepoSession;
  workDir: string;
  env: NodeJS.ProcessEnv;
}) {
  const { run } = deps;
  const repos = deps.repos ?? chartRepoSession(run, deps.env);

  /** Credentials and TLS for a registry host: its own entry, else the chart repository's when on the same host. */
  async function accessFor(host: string, input: ImageCheckInput): Promise<RegistryAccess> {
    const own = input.registries.find((r) => r.host === host);
    const repo = repoHost(input.chartRepo.url) === host ? input.chartRepo : undefined;
    const src = own ?? repo;
    if (!src) return {};
    const field = own ? `registries[${host}]` : 'chartRepo';
    return {
      caFile: src.caFile,
      certFile: src.certFile,
      keyFile: src.keyFile,
      insecureSkipTlsVerify: src.insecureSkipTlsVerify,
      ...(src.username && src.password
        ? {
            username: await readSecret(src.username, `${field}.username`, deps.env),
            password: await readSecret(src.password, `${field}.password`, deps.env),
          }
        : {}),
    };
  }

  async function render(t: ImageCheckTarget, dir: string): Promise<string[]> {
    const { cluster, step } = t;
    const files: string[] = [];
    if (step.useBackup && step.fromRevision !== undefined) {
      // The values the upgrade starts from: read like the backup, kept owner-only, deleted after.
      const { stdout } = await run('helm', cmd.helmGetValues(cluster, step.release, step.fromRevision), {
        cluster: cluster.name,
      });
      const file = path.join(dir, `${cluster.name}-values.yaml`);
      await writeFile(file, stdout.trim() === 'null' ? '{}\n' : stdout, { mode: 0o600 });
      files.push(file);
    }
    files.push(...step.valuesFiles);
    // The host's cached archive when there is one: fetched once for all clusters, not once each.
    const chart = repos.charts ? (await repos.charts.get(step, { cluster: cluster.name })).file : undefined;
    if (!chart) await repos.ensure(step.repo, { cluster: cluster.name });
    const { stdout } = await run(
      'helm',
      helmTemplate(step, cluster.namespace, t.kubeVersion, files, chart),
      chart ? { cluster: cluster.name } : repos.runOptions(step.repo, { cluster: cluster.name })
    );
    return imagesInManifests(stdout);
  }

  return {
    async checkImages(input: ImageCheckInput): Promise<ImageCheckResult> {
      const dir = await mkdtemp(path.join(deps.workDir, 'images-'));
      const limit = pLimit(AT_ONCE);
      const beat = () => {
        try {
          Context.current().heartbeat({ checking: 'images' });
        } catch {
          // outside an activity (the plan command)
        }
      };
      try {
        const users = new Map<string, string[]>();
        await Promise.all(
          input.targets.map((t) =>
            limit(async () => {
              for (const image of await render(t, dir)) users.set(image, [...(users.get(image) ?? []), t.cluster.name]);
              beat();
            })
          )
        );
        const missing: MissingImage[] = [];
        const access = new Map<string, Promise<RegistryAccess>>();
        await Promise.all(
          [...users.entries()].map(([image, clusters]) =>
            limit(async () => {
              const ref = parseImageRef(image);
              const some = clusters.slice(0, 3);
              if (!ref) return void missing.push({ image, clusters: some, reason: 'not a valid image reference' });
              if (!access.has(ref.registry)) access.set(ref.registry, accessFor(ref.registry, input));
              const answer = await manifestExists(
                ref,
                await (access.get(ref.registry) as Promise<RegistryAccess>)
              ).catch((err: Error) => ({ error: err.message }));
              beat();
              if ('exists' in answer && answer.exists) return;
              const reason =
                'error' in answer
                  ? `cannot be checked: ${answer.error}`
                  : 'denied' in answer
                    ? `cannot be checked: registry ${answer.registry} refused access (${answer.status}); check its credentials in the fleet file`
                    : 'not found';
              missing.push({ image, clusters: some, reason });
            })
          )
        );
        missing.sort((a, b) => a.image.localeCompare(b.image));
        return { checked: users.size, missing };
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    },
  };
}
