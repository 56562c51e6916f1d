/**
 * Activity proxies with explicit timeouts and retry policies. Retries back off exponentially and
 * stop after a bounded number of attempts; failures the activities mark non-retryable stop at once.
 */
import { proxyActivities, type ActivityOptions } from '@temporalio/workflow';
import type { Activities } from '../activities';
import type { Tuning } from '../runbook/types';

export type { Activities };

export function activityOptions(tuning: Tuning | undefined) {
  const retry = {
    initialInterval: tuning?.retryInitialInterval ?? '5s',
    backoffCoefficient: 2,
    maximumInterval: '2 minutes',
    maximumAttempts: tuning?.retryMaximumAttempts ?? 6,
  };
  const quick: ActivityOptions = { startToCloseTimeout: '3 minutes', retry };
  // Long commands heartbeat: a dead worker is noticed in a minute, not at the end of the timeout.
  const helm: ActivityOptions = { startToCloseTimeout: '15 minutes', heartbeatTimeout: '1 minute', retry };
  const job: ActivityOptions = { startToCloseTimeout: '1 hour', heartbeatTimeout: '1 minute', retry };
  return { quick, helm, job };
}

export function proxies(tuning: Tuning | undefined) {
  const o = activityOptions(tuning);
  return {
    options: o,
    quick: proxyActivities<Activities>(o.quick),
    helm: proxyActivities<Activities>(o.helm),
    job: proxyActivities<Activities>(o.job),
  };
}

export type Proxies = ReturnType<typeof proxies>;
