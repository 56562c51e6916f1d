/**
 * `npm run report [-- --workflow-id ID] [--out FILE]`: a self-contained HTML report of one upgrade
 * run, finished or running, built from its workflow histories (every run of the parent's chain and
 * each worker cluster's child): the plan, a per-cluster timeline with gate waits and retries, who
 * approved what and when, and the failures with their causes.
 */
import type { Client } from '@temporalio/client';
import { existsSync, statSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { EXIT, ExitError } from '../lib/errors';
import { fetchHistories } from '../lib/report/fetch';
import { renderReportHtml } from '../lib/report/html';
import { reportModel } from '../lib/report/model';
import type { RunStatus } from '../lib/report/types';
import { resolveUpgradeId } from '../lib/temporal';

export interface ReportOptions {
  /** The upgrade (default: the one running). */
  workflowId?: string;
  /** Where to write the report (default: `skoala-report-<workflow id>.html` in the current directory). */
  out?: string;
}

export interface ReportResult {
  workflowId: string;
  /** The report's absolute path. */
  file: string;
  /** Rows of the timeline: the control plane and every worker cluster. */
  clusters: number;
  status: RunStatus;
}

/** The default file name: the workflow ID with anything but letters, digits, `.`, `_` and `-` replaced. */
export const defaultReportFile = (workflowId: string): string =>
  `skoala-report-${workflowId.replace(/[^A-Za-z0-9._-]+/g, '-').slice(0, 120)}.html`;

/** Bad --out is refused before Temporal is contacted. */
export function validateReport(opts: ReportOptions): void {
  if (opts.out === undefined) return;
  if (opts.out.trim() === '') throw new ExitError('--out needs a file name', EXIT.badInput);
  const dir = path.dirname(path.resolve(opts.out));
  if (!existsSync(dir) || !statSync(dir).isDirectory())
    throw new ExitError(`--out ${opts.out}: directory ${dir} does not exist`, EXIT.badInput);
  if (existsSync(opts.out) && statSync(opts.out).isDirectory())
    throw new ExitError(`--out ${opts.out} is a directory: name a file`, EXIT.badInput);
}

/** Reads the upgrade's histories, writes the report to `file`; also what the demo calls. */
export async function writeReport(
  client: Client,
  workflowId: string,
  file: string
): Promise<{ file: string; clusters: number; status: RunStatus }> {
  const { parentRuns, children } = await fetchHistories(client, workflowId);
  const model = reportModel(parentRuns, children);
  const target = path.resolve(file);
  try {
    await writeFile(target, renderReportHtml(model, { generatedAt: new Date() }), 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
    throw new ExitError(`cannot write the report to ${target} (${code})`, EXIT.badInput);
  }
  return { file: target, clusters: model.clusters.length, status: model.status };
}

export async function report(opts: ReportOptions, client: Client): Promise<ReportResult> {
  const workflowId = await resolveUpgradeId(client, opts.workflowId);
  const written = await writeReport(client, workflowId, opts.out ?? defaultReportFile(workflowId));
  return { workflowId, ...written };
}
