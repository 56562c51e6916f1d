/** Reading a Helm release's state from `helm list -a -o json`. */
import { ApplicationFailure } from '@temporalio/common';
import type { ReleaseFacts, ReleaseName } from '../runbook/types';

interface HelmListEntry {
  name: string;
  revision: string;
  status: string;
  chart: string;
}

export function parseHelmList(stdout: string, release: ReleaseName): ReleaseFacts {
  let entries: HelmListEntry[];
  try {
    entries = JSON.parse(stdout || '[]') as HelmListEntry[];
  } catch {
    throw ApplicationFailure.nonRetryable(
      `helm list printed something that is not JSON: ${stdout.slice(0, 200)}`,
      'UnexpectedOutput'
    );
  }
  const entry = entries.find((e) => e.name === release);
  if (!entry) return { installed: false };
  const prefix = `${release}-`;
  return {
    installed: true,
    chartVersion: entry.chart.startsWith(prefix) ? entry.chart.slice(prefix.length) : entry.chart,
    revision: Number(entry.revision),
    status: entry.status,
  };
}

/** Was this release upgraded to `version` after `fromRevision` (i.e. by us), and is it healthy? */
export function alreadyUpgraded(facts: ReleaseFacts, version: string, fromRevision: number | undefined): boolean {
  if (!facts.installed || facts.status !== 'deployed' || facts.chartVersion !== version) return false;
  return fromRevision === undefined || (facts.revision ?? 0) > fromRevision;
}
