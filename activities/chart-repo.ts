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
  repoHost,
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
  const value = text.replace(/\r?\n$/, '');
  if (value === '')
    throw ApplicationFailure.nonRetryable(`${field}: ${ref.file} is empty on this worker host`, 'SecretNotFound');
  return value;
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
  // helm keeps one entry per repo name (and one login per registry host): what was set up last
  // under that slot wins. So each slot remembers the exact settings it was set up with, and a
  // repo whose password, CA or URL differs is set up again.
  const ready = new Map<string, { settings: string; done: Promise<void> }>();
  const slotOf = (repo: ChartRepo) => (isOciRepo(repo) ? `oci ${repoHost(repo.url)}` : `repo ${repo.name}`);
  const runOptions = (repo: ChartRepo, opts: RunOptions = {}): RunOptions => ({
    ...opts,
    chartRepo: chartSource(repo),
  });

  async function setUp(repo: ChartRepo, opts: RunOptions): Promise<void> {
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
  }

  /** Sets up `repo` in its slot; a failed setup is forgotten, so the next call (or retry) tries again. */
  function remember(repo: ChartRepo, opts: RunOptions): Promise<void> {
    const slot = slotOf(repo);
    const done = setUp(repo, opts);
    const entry = { settings: JSON.stringify(repo), done };
    ready.set(slot, entry);
    done.catch(() => {
      if (ready.get(slot) === entry) ready.delete(slot);
    });
    return done;
  }

  return {
    add: (repo, opts = {}) => remember(repo, opts),
    async update(repo, opts = {}) {
      if (!isOciRepo(repo)) await run('helm', helmRepoUpdate(repo), runOptions(repo, opts));
    },
    runOptions,
    async ensure(repo, opts = {}) {
      const entry = ready.get(slotOf(repo));
      // `helm repo add` fetches the index too: no update needed right after it.
      await (entry?.settings === JSON.stringify(repo) ? entry.done : remember(repo, opts));
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
