/**
 * Activity proxies with explicit timeouts and retry policies. Retries back off exponentially and
 * stop after a bounded number of attempts; failures the activities mark non-retryable stop at once.
 *
 * Timeouts nest: every process an activity runs is stopped before the attempt's start-to-close
 * timeout (activities/exec.ts), and helm gets its own `--timeout` below that. Every activity runs
 * processes and heartbeats every 2 s, so a dead worker is noticed after the 10 s heartbeat
 * timeout and the retry starts on another worker; a cancelled activity kills its process and the
 * workflow waits for that (WAIT_CANCELLATION_COMPLETED), so an attempt never overlaps its retry.
 */
import {
  ActivityCancellationType,
  proxyActivities,
  proxyLocalActivities,
  type ActivityOptions,
} from '@temporalio/workflow';
import type { Activities } from '../activities';
import type { Tuning } from '../runbook/types';

export type { Activities };

export const HEARTBEAT_TIMEOUT = '10 seconds';

export function activityOptions(tuning: Tuning | undefined) {
  const retry = {
    initialInterval: tuning?.retryInitialInterval ?? '5s',
    backoffCoefficient: 2,
    maximumInterval: '2 minutes',
    maximumAttempts: tuning?.retryMaximumAttempts ?? 6,
  };
  const common = {
    heartbeatTimeout: HEARTBEAT_TIMEOUT,
    cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
    retry,
  };
  const quick: ActivityOptions = { ...common, startToCloseTimeout: '3 minutes' };
  // helm's own --timeout is 10 minutes (activities/index.ts); the attempt outlives it.
  const helm: ActivityOptions = { ...common, startToCloseTimeout: '15 minutes' };
  const job: ActivityOptions = { ...common, startToCloseTimeout: '1 hour' };
  return { quick, helm, job };
}

export function proxies(tuning: Tuning | undefined) {
  const o = activityOptions(tuning);
  return {
    options: o,
    quick: proxyActivities<Activities>(o.quick),
    helm: proxyActivities<Activities>(o.helm),
    job: proxyActivities<Activities>(o.job),
    /** Pure decisions recorded in history (a marker), no I/O. */
    local: proxyLocalActivities<Activities>({ startToCloseTimeout: '10 seconds' }),
  };
}

export type Proxies = ReturnType<typeof proxies>;
