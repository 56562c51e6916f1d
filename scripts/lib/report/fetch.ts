/**
 * The histories a run report is built from: every run of the upgrade's continue-as-new chain and
 * the run of each child workflow those runs started. Read-only; histories past the namespace's
 * retention are simply missing (the report then shows what the parent saw).
 */
import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import pLimit from 'p-limit';
import { EXIT, ExitError } from '../errors';
import { childStarts } from './children';
import { eventsOf, startOf, type History } from './history';

export interface UpgradeHistories {
  /** The chain's runs, first to newest. */
  parentRuns: History[];
  /** By child workflow ID: the runs the parent started (one, unless a cluster was started again). */
  children: Map<string, History[]>;
}

/** A chain longer than this is cut at its newest runs (1,000 clusters take ~6). */
const MAX_RUNS = 500;
/** Child histories fetched at once. */
const PARALLEL = 8;

/** fetchHistory calls the service directly: a history that is not there is gRPC NOT_FOUND (5). */
const missing = (err: unknown): boolean =>
  err instanceof WorkflowNotFoundError ||
  (err as { code?: unknown } | null)?.code === 5 ||
  /NOT_FOUND/.test(err instanceof Error ? err.message : String(err));

export async function fetchHistories(client: Client, workflowId: string): Promise<UpgradeHistories> {
  let newest: History;
  try {
    newest = await client.workflow.getHandle(workflowId).fetchHistory();
  } catch (err) {
    if (missing(err)) throw new ExitError(`no upgrade with workflow ID ${workflowId}`, EXIT.badInput);
    throw err;
  }
  // Each run's start names the run it continues: walk back from the newest to the first.
  const parentRuns = [newest];
  for (let prev = startOf(newest)?.continuedExecutionRunId; prev && parentRuns.length < MAX_RUNS;) {
    const h = await client.workflow
      .getHandle(workflowId, prev)
      .fetchHistory()
      .catch((err: unknown) => {
        if (missing(err)) return undefined;
        throw err;
      });
    if (!h) break;
    parentRuns.unshift(h);
    prev = startOf(h)?.continuedExecutionRunId;
  }

  const started = parentRuns.flatMap((h) => childStarts(eventsOf(h))).filter((c) => c.runId);
  const limit = pLimit(PARALLEL);
  const fetched = await Promise.all(
    started.map((c) =>
      limit(async () => {
        const h = await client.workflow
          .getHandle(c.workflowId, c.runId)
          .fetchHistory()
          .catch((err: unknown) => {
            if (missing(err)) return undefined;
            throw err;
          });
        return { workflowId: c.workflowId, h };
      })
    )
  );
  const children = new Map<string, History[]>();
  for (const { workflowId: id, h } of fetched) if (h) children.set(id, [...(children.get(id) ?? []), h]);
  return { parentRuns, children };
}
