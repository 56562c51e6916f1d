/**
 * The target chart on this worker host: `helm pull` of the archive once per (repository URL,
 * chart, version), kept under the work dir by content (`<chart>-<version>-<sha256>.tgz`), then used
 * by every cluster's step from there: `helm upgrade` installs that file, the CRD step and its
 * preview unpack it. A step whose plan pins the archive's sha256 gets exactly that archive or a
 * refusal, never another one.
 */
import { ApplicationFailure } from '@temporalio/common';
import { execa } from 'execa';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, mkdtemp, readdir, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { cachedChartName, helmPullChartArchive, untarChart } from '../runbook/chart-repo';
import type { ChartRepo, ReleaseName, Version } from '../runbook/types';
import { heartbeatWhile, type CommandRunner, type RunOptions } from './exec';

/** A chart as a step names it; `chartSha256` when the plan pinned its archive. */
export interface WantedChart {
  repo: ChartRepo;
  chart: ReleaseName;
  version: Version;
  chartSha256?: string;
}

export interface CachedChart {
  /** The archive on this host: never rewritten with other content under this name. */
  file: string;
  sha256: string;
}

/** What the cache needs of the chart repository session: the repository set up before a pull. */
export interface ChartSource {
  ensure(repo: ChartRepo, opts?: RunOptions): Promise<void>;
  runOptions(repo: ChartRepo, opts?: RunOptions): RunOptions;
}

export interface ChartCache {
  /** The archive, pulled at most once by this process (again only when the copy is gone or not the pinned one). */
  get(want: WantedChart, opts?: RunOptions): Promise<CachedChart>;
  /** Pulls it now, whatever is cached: plan time records the digest of what the repository serves now. */
  pull(want: WantedChart, opts?: RunOptions): Promise<CachedChart>;
  /** `get`, then the chart unpacked into `dir` (as `dir/<chart>/`). */
  unpack(want: WantedChart, dir: string, opts?: RunOptions): Promise<void>;
}

export async function sha256Of(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

const digestOrNone = (file: string): Promise<string | undefined> => sha256Of(file).catch(() => undefined);

export function chartCache(run: CommandRunner, source: ChartSource, dir: string): ChartCache {
  // One promise per chart: concurrent activities of this process share one pull.
  const held = new Map<string, Promise<CachedChart>>();
  const keyOf = (w: WantedChart) => JSON.stringify([w.repo.url, w.chart, w.version]);

  /** Holds `work` for its chart; a failed one is forgotten, so the next caller (or retry) pulls again. */
  function hold(key: string, work: Promise<CachedChart>): Promise<CachedChart> {
    held.set(key, work);
    work.catch(() => {
      if (held.get(key) === work) held.delete(key);
    });
    return work;
  }

  /** Into a temp dir first, then renamed: no one ever sees a half-written archive under its name. */
  async function download(want: WantedChart, opts: RunOptions): Promise<CachedChart> {
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const tmp = await mkdtemp(path.join(dir, '.pull-'));
    try {
      await source.ensure(want.repo, opts);
      await run(
        'helm',
        helmPullChartArchive(want.repo, want.chart, want.version, tmp),
        source.runOptions(want.repo, opts)
      );
      const [name, ...more] = (await readdir(tmp)).filter((f) => f.endsWith('.tgz'));
      if (!name || more.length > 0)
        throw ApplicationFailure.retryable(
          `helm pull of chart ${want.chart} ${want.version} left ${more.length + (name ? 1 : 0)} archives, expected one`,
          'UnexpectedOutput'
        );
      const sha256 = await sha256Of(path.join(tmp, name));
      const file = path.join(dir, cachedChartName(want.chart, want.version, sha256));
      await rename(path.join(tmp, name), file);
      return { file, sha256 };
    } finally {
      await rm(tmp, { recursive: true, force: true });
    }
  }

  /** The pinned archive, when this host already holds it (from any process: names never change content). */
  async function pinnedCopy(want: WantedChart): Promise<CachedChart | undefined> {
    if (!want.chartSha256) return undefined;
    const file = path.join(dir, cachedChartName(want.chart, want.version, want.chartSha256));
    return (await digestOrNone(file)) === want.chartSha256 ? { file, sha256: want.chartSha256 } : undefined;
  }

  function pull(want: WantedChart, opts: RunOptions = {}): Promise<CachedChart> {
    return hold(keyOf(want), download(want, opts));
  }

  async function get(want: WantedChart, opts: RunOptions = {}): Promise<CachedChart> {
    const key = keyOf(want);
    const first =
      held.get(key) ??
      hold(
        key,
        pinnedCopy(want).then((kept) => kept ?? download(want, opts))
      );
    const chart = await heartbeatWhile(first, { pulling: want.chart });
    const expected = want.chartSha256 ?? chart.sha256;
    // Checked on every use: a copy deleted or damaged since, or not the pinned archive, is not used.
    if ((await digestOrNone(chart.file)) === expected) return chart;
    const kept = await pinnedCopy(want);
    if (kept) return kept;
    // Pulled once more (or the pull another caller started since is awaited), then final.
    const current = held.get(key);
    const again = await heartbeatWhile(current && current !== first ? current : pull(want, opts), {
      pulling: want.chart,
    });
    if (want.chartSha256 && again.sha256 !== want.chartSha256)
      throw ApplicationFailure.nonRetryable(
        `chart ${want.chart} ${want.version} from ${want.repo.url} is not the archive the plan pinned: expected sha256 ${want.chartSha256}, got ${again.sha256}; refusing to use it (re-run plan if the repository changed it)`,
        'ChartDigestMismatch'
      );
    return again;
  }

  return {
    get,
    pull,
    async unpack(want, into, opts = {}) {
      const { file } = await get(want, opts);
      const res = await execa('tar', untarChart(file, into), { reject: false, stdin: 'ignore' });
      if (res.failed)
        throw ApplicationFailure.retryable(
          `cannot unpack chart ${want.chart} ${want.version} (${path.basename(file)}): ${String(res.stderr).trim() || (res.originalMessage ?? `exit ${res.exitCode}`)}`,
          'ChartUnpackFailed'
        );
    },
  };
}
