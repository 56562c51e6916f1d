import { MockActivityEnvironment } from '@temporalio/testing';

/**
 * An activity environment for real helm and kubectl: its attempt has a real start-to-close
 * timeout. The mock's default (1 s, scheduled at time 1) caps every process at 1 s
 * (`processTimeout`), which a loaded 2-core machine exceeds: helm was killed mid-upgrade
 * ("UPGRADE FAILED: context canceled") in a CI run.
 */
export const realActivityEnv = (): MockActivityEnvironment =>
  new MockActivityEnvironment({ startToCloseTimeoutMs: 15 * 60_000, currentAttemptScheduledTimestampMs: Date.now() });
