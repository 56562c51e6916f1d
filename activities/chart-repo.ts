/**
 * The chart source on this worker host: `helm repo add` (HTTP(S)) or `helm registry login` (OCI)
 * with the site's credentials, once per worker process, before the first command that needs it.
 * Secrets are read here, on the host that uses them, from the environment variable or file the
 * fleet names, and reach helm on stdin only. They are never returned, logged or put in a failure.
 */
import { ApplicationFailure } from '@temporalio/common';
import { readFile } from 'node:fs/promises';
import {
  describeSecret,
  hasCredentials,
  helmPullChart,
  helmRegistryLogin,
  helmRepoAdd,
  helmRepoUpdate,
  isOciRepo,
} from '../runbook/chart-repo';
import type { ChartRepo, ReleaseName, SecretRef, Version } from '../runbook/types';
import type { ChartSource } from './errors';
import type { CommandRunner, RunOptions } from './exec';

/** Reads a secret on this host. Missing: one non-retryable line naming the field and the reference. */
export async function readSecret(ref: SecretRef, field: string, env: NodeJS.ProcessEnv): Promise<string> {
  if ('env' in ref) {
    const value = env[ref.env];
    if (value === undefined || value === '')
      throw ApplicationFailure.nonRetryable(
        `${field}: environment variable ${ref.env} is not set for the worker on this host`,
        'SecretNotFound'
      );
    return value;
  }
  let text: string;
  try {
    text = await readFile(ref.file, 'utf8');
  } catch (err) {
    throw ApplicationFailure.nonRetryable(
      `${field}: ${ref.file} cannot be read on this worker host (${(err as NodeJS.ErrnoException).code ?? 'error'})`,
      'SecretNotFound'
    );
  }
  // Files written by `echo` end in a newline that is not part of the secret.
  return text.replace(/\r?\n$/, '');
}

/** How failures name the source: URL and where the password comes from, never the password. */
export const chartSource = (repo: ChartRepo): ChartSource => ({
  name: repo.name,
  url: repo.url,
  ...(repo.password ? { passwordFrom: describeSecret(repo.password) } : {}),
});

export interface ChartRepoSession {
  /** Adds the repo (or logs into the registry) if this process has not yet; then `fn` may use its charts. */
  ensure(repo: ChartRepo, opts?: RunOptions): Promise<void>;
  /** `helm repo add` (or `helm registry login`) now, with credentials: the plan's addChartRepo step. */
  add(repo: ChartRepo, opts?: RunOptions): Promise<void>;
  /** `helm repo update NAME` (nothing for OCI): the plan's updateChartRepo step. */
  update(repo: ChartRepo, opts?: RunOptions): Promise<void>;
  /** RunOptions naming the source, so its TLS and 401 failures say so. */
  runOptions(repo: ChartRepo, opts?: RunOptions): RunOptions;
}

export function chartRepoSession(run: CommandRunner, env: NodeJS.ProcessEnv = process.env): ChartRepoSession {
  // Keyed by everything that shapes the setup, so a changed password or CA in the fleet re-adds.
  const ready = new Map<string, Promise<void>>();
  const keyOf = (repo: ChartRepo) => JSON.stringify(repo);
  const runOptions = (repo: ChartRepo, opts: RunOptions = {}): RunOptions => ({
    ...opts,
    chartRepo: chartSource(repo),
  });

  async function add(repo: ChartRepo, opts: RunOptions = {}): Promise<void> {
    const creds = hasCredentials(repo)
      ? {
          username: await readSecret(repo.username as SecretRef, 'chartRepo.username', env),
          password: await readSecret(repo.password as SecretRef, 'chartRepo.password', env),
        }
      : undefined;
    if (isOciRepo(repo)) {
      // Anonymous pulls need no login; TLS files go on each OCI command instead.
      if (creds)
        await run('helm', helmRegistryLogin(repo, creds.username), {
          ...runOptions(repo, opts),
          input: creds.password,
        });
    } else {
      await run('helm', helmRepoAdd(repo, creds?.username), {
        ...runOptions(repo, opts),
        ...(creds ? { input: creds.password } : {}),
      });
    }
    ready.set(keyOf(repo), Promise.resolve());
  }

  async function update(repo: ChartRepo, opts: RunOptions = {}): Promise<void> {
    if (!isOciRepo(repo)) await run('helm', helmRepoUpdate(repo), runOptions(repo, opts));
  }

  return {
    add,
    update,
    runOptions,
    async ensure(repo, opts) {
      const key = keyOf(repo);
      let p = ready.get(key);
      if (!p) {
        // `helm repo add` fetches the index too: no update needed right after it.
        p = add(repo, opts);
        ready.set(key, p);
        // A failed setup is tried again by the next activity (or its retry), not remembered.
        p.catch(() => ready.delete(key));
      }
      await p;
    },
  };
}

/** `helm pull --untar` of one chart into `dir`, the repository set up on this host first. */
export async function pullChart(
  run: CommandRunner,
  repos: ChartRepoSession,
  step: { repo: ChartRepo; chart: ReleaseName; version: Version },
  dir: string,
  opts: RunOptions = {}
): Promise<void> {
  await repos.ensure(step.repo, opts);
  await run('helm', helmPullChart(step.repo, step.chart, step.version, dir), repos.runOptions(step.repo, opts));
}
