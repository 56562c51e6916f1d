/**
 * Every update the CLI sends goes through here: it never hangs. Each try has a deadline of its own
 * (a call stuck on a connection to a server that died is abandoned), a failed try is sent again
 * with the same update ID (the server answers a repeat with the first one's outcome, so nothing is
 * decided twice, and a restarted server is reached again), and past the overall deadline the
 * command says in one line what is known.
 */
import { WorkflowNotFoundError, WorkflowUpdateFailedError, type Client, type WorkflowHandle } from '@temporalio/client';
import type { UpdateDefinition } from '@temporalio/common';
import { randomUUID } from 'node:crypto';
import { EXIT, ExitError } from './errors';

/** Overall: longer than an approve-all's wait for its clusters' answers (1 minute, workflows/approvals.ts). */
export const UPDATE_DEADLINE_MS = 90_000;
/** One try: as long as the update itself may take, so a slow answer is not taken for a dead server. */
const TRY_MS = 75_000;

export interface SendUpdateOptions {
  deadlineMs?: number;
  tryMs?: number;
  /** Between two tries. */
  pauseMs?: number;
}

/**
 * The last try's failure in one line, with what the server said under the client's wrapper
 * ("Workflow Update failed: 14 UNAVAILABLE: ...", not just "Workflow Update failed").
 */
function reasonOf(err: unknown): string {
  const line = (e: unknown) => (e instanceof Error ? (e.message.split('\n')[0] ?? '') : String(e));
  const cause = err instanceof Error ? err.cause : undefined;
  return cause !== undefined && line(cause) !== line(err) ? `${line(err)}: ${line(cause)}` : line(err);
}

/** An update's own answer (accepted or refused by the workflow), or a workflow that does not exist: final. */
const isAnswer = (err: unknown) => err instanceof WorkflowUpdateFailedError || err instanceof WorkflowNotFoundError;

export async function sendUpdate<Ret, Args extends [unknown, ...unknown[]]>(
  client: Client,
  handle: WorkflowHandle,
  def: UpdateDefinition<Ret, Args>,
  args: Args,
  opts: SendUpdateOptions = {}
): Promise<Ret> {
  const deadlineMs = opts.deadlineMs ?? UPDATE_DEADLINE_MS;
  const giveUpAt = Date.now() + deadlineMs;
  const updateId = randomUUID();
  let last: unknown;
  while (Date.now() < giveUpAt) {
    const tryEnds = Math.min(giveUpAt, Date.now() + (opts.tryMs ?? TRY_MS));
    const abort = new AbortController();
    let timer: NodeJS.Timeout | undefined;
    // The abort ends the try's gRPC calls; the race ends the try even if one of them ignores it.
    const expired = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        abort.abort();
        reject(new Error('the server did not answer in time'));
      }, tryEnds - Date.now());
    });
    try {
      return await Promise.race([
        client.withAbortSignal(abort.signal, () =>
          client.withDeadline(tryEnds, () => handle.executeUpdate(def, { args, updateId }))
        ),
        expired,
      ]);
    } catch (err) {
      if (isAnswer(err)) throw err;
      last = err;
    } finally {
      clearTimeout(timer);
      expired.catch(() => undefined);
    }
    const pause = Math.min(opts.pauseMs ?? 1_000, giveUpAt - Date.now());
    if (pause > 0) await new Promise((r) => setTimeout(r, pause));
  }
  const why = reasonOf(last);
  throw new ExitError(
    `sent ${def.name} to ${handle.workflowId}; no answer within ${Math.round(deadlineMs / 1000)} s (${why}): check \`npm run status\``,
    EXIT.unreachable
  );
}
