/**
 * The rollout flags (`--health-timeout`, `--on-failure`, `--canary`, `--max-failures`): the values
 * each accepts, and the one line each bad value gets (an ExitError: exit code 2, bad input).
 */
import { describe, expect, it } from 'vitest';
import { ExitError } from '../../scripts/lib/errors';
import {
  canaryOption,
  durationOption,
  maxFailuresOption,
  onFailureOption,
  rolloutOptions,
} from '../../scripts/lib/rollout-options';
import type { Fleet } from '../../runbook/types';

function fleetWith(workers: number): Fleet {
  return {
    name: 'prod',
    chartRepo: { name: 'skoala', url: 'https://release.daocloud.io/chartrepo/skoala' },
    controlPlane: { name: 'global', kubeconfig: '/kc/global', namespace: 'skoala-system' },
    workers: Array.from({ length: workers }, (_, i) => ({
      name: `worker-${i + 1}`,
      kubeconfig: `/kc/worker-${i + 1}`,
      namespace: 'skoala-system',
    })),
    valuesFiles: { skoala: [], skoalaInit: [] },
    extraCrds: [],
  };
}

/** The ExitError `fn` throws: bad input (exit 2), one line. */
function refusal(fn: () => unknown): ExitError {
  try {
    fn();
  } catch (err) {
    if (!(err instanceof ExitError)) throw err;
    expect(err.exitCode).toBe(2);
    expect(err.message).not.toContain('\n');
    return err;
  }
  throw new Error('the value was accepted');
}

describe('durationOption (--health-timeout)', () => {
  it('no value: the fallback', () => {
    expect(durationOption('--health-timeout', undefined, 600_000)).toBe(600_000);
  });

  it.each([
    ['10s', 10_000],
    ['90s', 90_000],
    ['10m', 600_000],
    ['1h', 3_600_000],
    ['24h', 86_400_000],
    ['1440m', 86_400_000],
    ['86400s', 86_400_000],
  ])('%s is %d ms', (value, ms) => {
    expect(durationOption('--health-timeout', value, 600_000)).toBe(ms);
  });

  it.each(['9s', '0s', '25h', '1441m', '86401s', '90', '1.5h', '10 m', '-10s', '10S', '1d', 'ten minutes', ''])(
    '%j is refused, naming the flag and the value',
    (value) => {
      expect(refusal(() => durationOption('--health-timeout', value, 600_000)).message).toBe(
        `--health-timeout "${value}" must be a duration from 10s to 24h, such as 90s, 10m or 1h`
      );
    }
  );

  it('the message names the flag it is given', () => {
    expect(refusal(() => durationOption('--other-timeout', '5s', 1)).message).toBe(
      '--other-timeout "5s" must be a duration from 10s to 24h, such as 90s, 10m or 1h'
    );
  });
});

describe('onFailureOption (--on-failure)', () => {
  it('rollback by default', () => {
    expect(onFailureOption(undefined)).toBe('rollback');
  });

  it.each(['stop', 'rollback'] as const)('%s', (value) => {
    expect(onFailureOption(value)).toBe(value);
  });

  it.each(['Stop', 'ROLLBACK', 'abort', 'continue', ' stop', ''])('%j is refused', (value) => {
    expect(refusal(() => onFailureOption(value)).message).toBe(`--on-failure "${value}" must be stop or rollback`);
  });
});

describe('canaryOption (--canary)', () => {
  const fleet = fleetWith(3);

  it('no value: no canaries', () => {
    expect(canaryOption(undefined, fleet)).toBeUndefined();
  });

  it('a count picks the first workers of the fleet file, in its order', () => {
    expect(canaryOption('2', fleet)).toEqual(['worker-1', 'worker-2']);
    expect(canaryOption('1', fleet)).toEqual(['worker-1']);
    expect(canaryOption('3', fleet)).toEqual(['worker-1', 'worker-2', 'worker-3']);
  });

  it.each(['0', '4', '100'])('a count of %s is refused: from 1 to the number of workers', (value) => {
    expect(refusal(() => canaryOption(value, fleet)).message).toBe(
      `--canary ${value} must be from 1 to the 3 worker clusters of the fleet`
    );
  });

  it('names: workers of the fleet, in the given order, trimmed, each once', () => {
    expect(canaryOption('worker-3,worker-1', fleet)).toEqual(['worker-3', 'worker-1']);
    expect(canaryOption(' worker-2 , worker-1 ', fleet)).toEqual(['worker-2', 'worker-1']);
    expect(canaryOption('worker-2,worker-2', fleet)).toEqual(['worker-2']);
  });

  it.each([
    ['worker-9', 'worker-9'],
    ['worker-1,nope', 'nope'],
    ['global', 'global'],
    ['Worker-1', 'Worker-1'],
    ['worker-1,,worker-2', ''],
    ['', ''],
  ])('%j is refused: %j is not a worker of the fleet, and the message lists them', (value, unknown) => {
    expect(refusal(() => canaryOption(value, fleet)).message).toBe(
      `--canary: "${unknown}" is not a worker cluster of the fleet (it has: worker-1, worker-2, worker-3)`
    );
  });

  it('a large fleet: the message lists ten workers, then "..."', () => {
    expect(refusal(() => canaryOption('nope', fleetWith(12))).message).toBe(
      '--canary: "nope" is not a worker cluster of the fleet (it has: worker-1, worker-2, worker-3, worker-4, worker-5, worker-6, worker-7, worker-8, worker-9, worker-10, ...)'
    );
    expect(refusal(() => canaryOption('nope', fleetWith(10))).message).toMatch(/worker-10\)$/);
  });
});

describe('maxFailuresOption (--max-failures)', () => {
  it('0 by default: the first failed worker stops new ones', () => {
    expect(maxFailuresOption(undefined, 25)).toBe(0);
  });

  it.each([
    ['0', 25, 0],
    ['2', 25, 2],
    ['30', 25, 30],
    ['10%', 25, 2],
    ['0%', 25, 0],
    ['100%', 25, 25],
    ['50%', 3, 1],
    ['10%', 9, 0],
  ])('%s of %d workers is %d', (value, workers, max) => {
    expect(maxFailuresOption(value, workers)).toBe(max);
  });

  it.each(['101%', '-1', '1.5', '2.5%', 'two', '10 %', '%', ' 2', ''])('%j is refused', (value) => {
    expect(refusal(() => maxFailuresOption(value, 25)).message).toBe(
      `--max-failures "${value}" must be a whole number (e.g. 2) or a percentage up to 100% (e.g. 10%)`
    );
  });
});

describe('rolloutOptions', () => {
  it('no flags: 10 minutes, rollback, no failure tolerated, no canaries', () => {
    const options = rolloutOptions({}, fleetWith(3));
    expect(options).toEqual({ healthTimeoutMs: 600_000, onFailure: 'rollback', maxFailures: 0 });
    expect(options).not.toHaveProperty('canaries');
  });

  it('every flag', () => {
    expect(
      rolloutOptions({ healthTimeout: '90s', onFailure: 'stop', canary: '2', maxFailures: '10%' }, fleetWith(25))
    ).toEqual({
      healthTimeoutMs: 90_000,
      onFailure: 'stop',
      maxFailures: 2,
      canaries: ['worker-1', 'worker-2'],
    });
  });

  it.each([
    [{ healthTimeout: '5s' }, '--health-timeout "5s" must be a duration from 10s to 24h, such as 90s, 10m or 1h'],
    [{ onFailure: 'abort' }, '--on-failure "abort" must be stop or rollback'],
    [{ canary: '9' }, '--canary 9 must be from 1 to the 3 worker clusters of the fleet'],
    [
      { canary: 'global' },
      '--canary: "global" is not a worker cluster of the fleet (it has: worker-1, worker-2, worker-3)',
    ],
    [
      { maxFailures: '200%' },
      '--max-failures "200%" must be a whole number (e.g. 2) or a percentage up to 100% (e.g. 10%)',
    ],
  ])('a bad flag is refused with its own line: %j', (flags, message) => {
    expect(refusal(() => rolloutOptions(flags, fleetWith(3))).message).toBe(message);
  });
});
