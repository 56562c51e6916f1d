/**
 * Reading a Helm release's state from `helm history -o json` and the labels of its release Secrets,
 * and recognising the revisions this product made.
 */
import { ApplicationFailure } from '@temporalio/common';
import { createHash } from 'node:crypto';
import type { ReleaseFacts, ReleaseName } from '../runbook/types';

export interface HistoryEntry {
  revision: number;
  updated: string;
  status: string;
  chart: string;
  description: string;
}

/** The label helm stores on the release Secret of every revision we create (helm `--labels`). */
export const OWNER_LABEL = 'skoala-upgrade.io/revision';

/**
 * The owner label's value for revision `revision` of this upgrade. helm copies a release's labels to
 * later revisions, so the value names the revision too: a copied label never matches another revision.
 */
export const ownerLabelValue = (upgradeId: string, revision: number): string =>
  `${createHash('sha256').update(upgradeId).digest('hex').slice(0, 20)}.r${revision}`;

/** helm's description of a rollback revision: `Rollback to N` (pending, then deployed). */
const ROLLBACK_TO = /^Rollback to (\d+)$/;
/** helm's description of a rollback that failed (helm 3.18 `pkg/action/rollback.go`). */
const ROLLBACK_FAILED = /^Rollback ".+" failed: /;

/**
 * The revisions this upgrade made, by one rule for every kind of revision we create:
 * - an upgrade revision carries our owner label for its own number (helm `--labels`);
 * - a rollback revision (`Rollback to N`, pending, deployed or failed) carries the labels of the
 *   revision it goes back to, so it is recognised by where it sits instead: it is ours when the
 *   revision before it is ours and it goes back to a base of ours, the newest deployed or
 *   superseded revision before one of our upgrade revisions (a failed rollback names no number:
 *   its chart must be a base's). A rollback to anywhere else is someone else's decision.
 */
export function ownRevisions(
  history: HistoryEntry[],
  labels: Map<number, Record<string, string>>,
  upgradeId: string
): Set<number> {
  const ours = new Set<number>();
  const labelled = (e: HistoryEntry) =>
    labels.get(e.revision)?.[OWNER_LABEL] === ownerLabelValue(upgradeId, e.revision);
  // Each upgrade revision of ours has its base: what helm had deployed before it. A rerun of the
  // same upgrade (--retry-failed after a rollback) plans from the rollback, so the bases add up.
  const bases: HistoryEntry[] = [];
  for (const e of history) {
    if (labelled(e)) {
      ours.add(e.revision);
      const base = [...history]
        .reverse()
        .find((b) => b.revision < e.revision && (b.status === 'deployed' || b.status === 'superseded'));
      if (base) bases.push(base);
    } else if (ours.has(e.revision - 1) && bases.length > 0) {
      const to = ROLLBACK_TO.exec(e.description)?.[1];
      const backToBase =
        to !== undefined
          ? bases.some((b) => Number(to) === b.revision)
          : ROLLBACK_FAILED.test(e.description) && bases.some((b) => e.chart === b.chart);
      if (backToBase) ours.add(e.revision);
    }
  }
  return ours;
}

export function parseHistory(stdout: string): HistoryEntry[] {
  try {
    const entries = JSON.parse(stdout || '[]') as HistoryEntry[];
    return [...entries].sort((a, b) => a.revision - b.revision);
  } catch {
    throw ApplicationFailure.nonRetryable(
      `helm history printed something that is not JSON: ${stdout.slice(0, 200)}`,
      'UnexpectedOutput'
    );
  }
}

/** Parses the `{.metadata.labels}` lines that kubectl prints for the release Secrets: revision -> labels. */
export function parseSecretLabels(stdout: string): Map<number, Record<string, string>> {
  const out = new Map<number, Record<string, string>>();
  for (const line of stdout.split('\n')) {
    if (!line.trim()) continue;
    const labels = JSON.parse(line) as Record<string, string>;
    if (labels.version) out.set(Number(labels.version), labels);
  }
  return out;
}

const versionOf = (release: ReleaseName, chart: string): string =>
  chart.startsWith(`${release}-`) ? chart.slice(release.length + 1) : chart;

/** `revision 2 (pending-upgrade, skoala-init-0.19.2, 2026-11-29T22:07:16Z): Preparing upgrade` */
export const historyLine = (e: HistoryEntry): string =>
  `revision ${e.revision} (${e.status}, ${e.chart}, ${e.updated}): ${e.description}`;

/** The facts an upgrade plans from: the newest revision, and the last one that was deployed. */
export function releaseFacts(
  release: ReleaseName,
  history: HistoryEntry[],
  isOurs: (e: HistoryEntry) => boolean
): ReleaseFacts {
  const current = history.at(-1);
  if (!current) return { installed: false };
  const deployed = [...history].reverse().find((e) => e.status === 'deployed' || e.status === 'superseded');
  return {
    installed: true,
    chartVersion: versionOf(release, current.chart),
    revision: current.revision,
    status: current.status,
    description: current.description,
    historyLine: historyLine(current),
    ours: isOurs(current),
    updated: current.updated,
    ...(deployed
      ? { lastDeployed: { revision: deployed.revision, chartVersion: versionOf(release, deployed.chart) } }
      : {}),
  };
}

/** Was this release upgraded to `version` after `fromRevision` (i.e. by us), and is it healthy? */
export function alreadyUpgraded(facts: ReleaseFacts, version: string, fromRevision: number | undefined): boolean {
  if (!facts.installed || facts.status !== 'deployed' || facts.chartVersion !== version) return false;
  return fromRevision === undefined || (facts.revision ?? 0) > fromRevision;
}
