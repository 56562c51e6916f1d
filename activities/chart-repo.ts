/**
 * The chart source on this worker host: `helm repo add` (HTTP(S)) or `helm registry login` (OCI)
 * with the site's credentials, once per worker process, before the first command that needs it;
 * the plan's addChartRepo and updateChartRepo steps once per upgrade on each host, not per cluster.
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
import type { ChartRepo, SecretRef } from '../runbook/types';
import { chartCache, type ChartCache, type WantedChart } from './chart-cache';
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
  /**
   * `helm repo add` (or `helm registry login`) now, with credentials: the plan's addChartRepo step.
   * With `upgradeId`, once per upgrade in this process: every later cluster's step runs nothing.
   */
  add(repo: ChartRepo, opts?: RunOptions, upgradeId?: string): Promise<void>;
  /** `helm repo update NAME` (nothing for OCI): the plan's updateChartRepo step; with `upgradeId`, as `add`. */
  update(repo: ChartRepo, opts?: RunOptions, upgradeId?: string): Promise<void>;
  /** RunOptions naming the source, so its TLS and 401 failures say so. */
  runOptions(repo: ChartRepo, opts?: RunOptions): RunOptions;
  /** The chart archives this host keeps, when the session was made with a chart dir. */
  charts?: ChartCache;
}

/** What one repo slot was set up with, and which upgrades have added and updated it since. */
interface Slot {
  settings: string;
  done: Promise<void>;
  upgrades: Set<string>;
  updates: Map<string, Promise<void>>;
}

export function chartRepoSession(run: CommandRunner, env?: NodeJS.ProcessEnv): ChartRepoSession;
export function chartRepoSession(
  run: CommandRunner,
  env: NodeJS.ProcessEnv,
  chartDir: string
): ChartRepoSession & { charts: ChartCache };
export function chartRepoSession(
  run: CommandRunner,
  env: NodeJS.ProcessEnv = process.env,
  chartDir?: string
): ChartRepoSession {
  // helm keeps one entry per repo name (and one login per registry host): what was set up last
  // under that slot wins. So each slot remembers the exact settings it was set up with, and a
  // repo whose password, CA or URL differs is set up again.
  const ready = new Map<string, Slot>();
  const slotOf = (repo: ChartRepo) => (isOciRepo(repo) ? `oci ${repoHost(repo.url)}` : `repo ${repo.name}`);
  const runOptions = (repo: ChartRepo, opts: RunOptions = {}): RunOptions => ({
    ...opts,
    chartRepo: chartSource(repo),
  });
  /** The slot's entry when it holds exactly these settings. */
  const sameAs = (repo: ChartRepo): Slot | undefined => {
    const entry = ready.get(slotOf(repo));
    return entry?.settings === JSON.stringify(repo) ? entry : undefined;
  };

  async function setUp(repo: ChartRepo, opts: RunOptions): Promise<void> {
    const creds = hasCredentials(repo)
      ? {
          username: await readSecret(repo.username as SecretRef, 'chartRepo.username', env),
          password: await readSecret(repo.password as SecretRef, 'chartRepo.password', env),
        }
      : undefined;
    // The username is a secret's value too: a failure names its reference instead.
    const recordedAs =
      creds && repo.username ? { recordedAs: { [creds.username]: `<${describeSecret(repo.username)}>` } } : {};
    if (isOciRepo(repo)) {
      // Anonymous pulls need no login; TLS files go on each OCI command instead.
      if (creds)
        await run('helm', helmRegistryLogin(repo, creds.username), {
          ...runOptions(repo, opts),
          ...recordedAs,
          input: creds.password,
        });
    } else {
      await run('helm', helmRepoAdd(repo, creds?.username), {
        ...runOptions(repo, opts),
        ...recordedAs,
        ...(creds ? { input: creds.password } : {}),
      });
    }
  }

  /** Sets up `repo` in its slot; a failed setup is forgotten, so the next call (or retry) tries again. */
  function remember(repo: ChartRepo, opts: RunOptions, upgradeId?: string): Promise<void> {
    const slot = slotOf(repo);
    const before = sameAs(repo);
    const done = setUp(repo, opts);
    // Set up again with the same settings (`--force-update` fetches the index too): what the
    // upgrades did with this slot still holds.
    const entry: Slot = {
      settings: JSON.stringify(repo),
      done,
      upgrades: new Set([...(before?.upgrades ?? []), ...(upgradeId ? [upgradeId] : [])]),
      updates: new Map(before?.updates),
    };
    ready.set(slot, entry);
    done.catch(() => {
      if (ready.get(slot) === entry) ready.delete(slot);
    });
    return done;
  }

  function update(repo: ChartRepo, opts: RunOptions, upgradeId?: string): Promise<void> {
    const now = () => run('helm', helmRepoUpdate(repo), runOptions(repo, opts)).then(() => undefined);
    const entry = upgradeId ? sameAs(repo) : undefined;
    // Old histories name no upgrade; a slot set up with other settings (or not by this process) is not ours to skip.
    if (!upgradeId || !entry) return now();
    const pending = entry.updates.get(upgradeId);
    if (pending) return pending;
    const done = now();
    entry.updates.set(upgradeId, done);
    done.catch(() => {
      const current = ready.get(slotOf(repo));
      if (current?.updates.get(upgradeId) === done) current.updates.delete(upgradeId);
    });
    return done;
  }

  const session: ChartRepoSession = {
    async add(repo, opts = {}, upgradeId) {
      const entry = sameAs(repo);
      await (upgradeId && entry?.upgrades.has(upgradeId) ? entry.done : remember(repo, opts, upgradeId));
    },
    async update(repo, opts = {}, upgradeId) {
      if (!isOciRepo(repo)) await update(repo, opts, upgradeId);
    },
    runOptions,
    async ensure(repo, opts = {}) {
      // `helm repo add` fetches the index too: no update needed right after it.
      await (sameAs(repo)?.done ?? remember(repo, opts));
    },
  };
  if (chartDir) session.charts = chartCache(run, session, chartDir);
  return session;
}

/**
 * The chart unpacked into `dir` (as `dir/<chart>/`), the repository set up on this host first:
 * from the host's chart cache (pulled once, checked against `chartSha256` when the plan pinned it),
 * or, for a session without one, `helm pull --untar` straight into `dir`.
 */
export async function pullChart(
  run: CommandRunner,
  repos: ChartRepoSession,
  step: WantedChart,
  dir: string,
  opts: RunOptions = {}
): Promise<void> {
  if (repos.charts) return repos.charts.unpack(step, dir, opts);
  await repos.ensure(step.repo, opts);
  await run('helm', helmPullChart(step.repo, step.chart, step.version, dir), repos.runOptions(step.repo, opts));
}
