/**
 * The rollout flags (`--health-timeout`, `--on-failure`, `--canary`, `--max-failures`): the values
 * each accepts, and the one line each bad value gets (an ExitError: exit code 2, bad input).
 */
import { describe, expect, it } from 'vitest';
import { ExitError } from '../../scripts/lib/errors';
import {
  batchesOption,
  canaryOption,
  durationOption,
  maxFailuresOption,
  onFailureOption,
  rolloutOptions,
  selectWorkers,
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

  it.each(['stop', 'rollback', 'pause'] as const)('%s', (value) => {
    expect(onFailureOption(value)).toBe(value);
  });

  it.each(['Stop', 'ROLLBACK', 'abort', 'continue', ' stop', ''])('%j is refused', (value) => {
    expect(refusal(() => onFailureOption(value)).message).toBe(
      `--on-failure "${value}" must be rollback, stop or pause`
    );
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
    [{ onFailure: 'abort' }, '--on-failure "abort" must be rollback, stop or pause'],
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

describe('batchesOption (--batches): Ansible serial, percentages rounded up, the last size repeating', () => {
  it('no value: no waves', () => {
    expect(batchesOption(undefined, 20)).toBeUndefined();
  });

  it.each([
    ['1,5,25%,100%', 20, [1, 5, 5, 9]],
    ['2', 5, [2, 2, 1]],
    ['100%', 7, [7]],
    ['100%', 1, [1]],
    ['50%', 3, [2, 1]],
    ['1', 3, [1, 1, 1]],
    ['10', 3, [3]],
    ['1,100%', 4, [1, 3]],
    ['1,2,3', 10, [1, 2, 3, 3, 1]],
    ['1%', 20, [1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1]],
    ['25%', 10, [3, 3, 3, 1]],
    ['5,1', 3, [3]],
    [' 1 , 50% ', 4, [1, 2, 1]],
  ])('%s of %d workers: %j', (value, workers, waves) => {
    expect(batchesOption(value, workers)).toEqual(waves);
  });

  it('every worker is in exactly one wave, whatever the sizes', () => {
    for (const workers of [1, 2, 3, 7, 20, 99, 1000])
      for (const value of ['1', '3', '1,5,25%,100%', '33%', '1,10%', '99%', '7,2'])
        expect(
          (batchesOption(value, workers) as number[]).reduce((a, b) => a + b, 0),
          `${value} of ${workers}`
        ).toBe(workers);
  });

  // n% of w rounded up is ceil(n * w / 100). Computed as ceil((n / 100) * w) in floating point, 7% of
  // 100 is 7.000000000000001, rounded up to 8: a wave one cluster larger than asked.
  it('a percentage that is a whole number of clusters is exactly that number (no floating-point excess)', () => {
    const cases: [string, number, number][] = [
      ['7%', 100, 7],
      ['14%', 100, 14],
      ['28%', 25, 7],
      ['14%', 50, 7],
      ['56%', 50, 28],
      ['25%', 20, 5],
      ['10%', 30, 3],
    ];
    expect(cases.map(([value, workers]) => `${value} of ${workers}: ${batchesOption(value, workers)?.[0]}`)).toEqual(
      cases.map(([value, workers, first]) => `${value} of ${workers}: ${first}`)
    );
  });

  it('every percentage of 1 to 200 workers is ceil(n * workers / 100), computed in integers', () => {
    const wrong: string[] = [];
    for (let workers = 1; workers <= 200; workers++)
      for (let n = 1; n <= 100; n++) {
        const first = batchesOption(`${n}%`, workers)?.[0];
        if (first !== Math.ceil((n * workers) / 100) || first !== Math.floor((n * workers + 99) / 100))
          wrong.push(`${n}% of ${workers}: ${first}`);
      }
    expect(wrong).toEqual([]);
  });

  it.each(['0', '0%', '101%', '200%', 'abc', '1,,2', '', ',', '1,', '-1', '1.5', '2.5%', '10 %', '%', '1;2'])(
    '%j is refused with one line naming the value',
    (value) => {
      const message = refusal(() => batchesOption(value, 20)).message;
      expect(message.startsWith(`--batches "${value}": "`)).toBe(true);
      expect(message.endsWith('" must be a count (e.g. 5) or a percentage from 1% to 100% (e.g. 25%)')).toBe(true);
    }
  );

  it('the refusal names the bad entry among good ones', () => {
    expect(refusal(() => batchesOption('1,0,100%', 20)).message).toBe(
      '--batches "1,0,100%": "0" must be a count (e.g. 5) or a percentage from 1% to 100% (e.g. 25%)'
    );
    expect(refusal(() => batchesOption('1,,2', 20)).message).toBe(
      '--batches "1,,2": "" must be a count (e.g. 5) or a percentage from 1% to 100% (e.g. 25%)'
    );
    expect(refusal(() => batchesOption('abc', 20)).message).toBe(
      '--batches "abc": "abc" must be a count (e.g. 5) or a percentage from 1% to 100% (e.g. 25%)'
    );
    expect(refusal(() => batchesOption('1,5,101%', 20)).message).toBe(
      '--batches "1,5,101%": "101%" must be a count (e.g. 5) or a percentage from 1% to 100% (e.g. 25%)'
    );
  });
});

function labelledFleet(): Fleet {
  const fleet = fleetWith(4);
  const labels: Record<string, string>[] = [
    { site: 'east', tier: 'prod' },
    { site: 'east', tier: 'staging' },
    { site: 'west', tier: 'prod', canary: 'true' },
    {},
  ];
  return { ...fleet, workers: fleet.workers.map((w, i) => ({ ...w, labels: labels[i] as Record<string, string> })) };
}

describe('selectWorkers (--select)', () => {
  const fleet = labelledFleet();
  const names = (f: Fleet) => f.workers.map((w) => w.name);

  it('no selector: the fleet as it is', () => {
    expect(selectWorkers(fleet, undefined)).toBe(fleet);
  });

  it.each([
    ['site=east', ['worker-1', 'worker-2']],
    ['site=east,tier=prod', ['worker-1']],
    ['tier!=prod', ['worker-2', 'worker-4']],
    ['site in (east,west)', ['worker-1', 'worker-2', 'worker-3']],
    ['site notin (east)', ['worker-3', 'worker-4']],
    ['canary', ['worker-3']],
    ['!canary', ['worker-1', 'worker-2', 'worker-4']],
    ['!site', ['worker-4']],
  ])('%s keeps the matching workers, in fleet order: %j', (select, workers) => {
    expect(names(selectWorkers(fleet, select))).toEqual(workers);
  });

  it('keeps the control plane and every other fleet setting', () => {
    const selected = selectWorkers(fleet, 'site=west');
    expect(selected).toEqual({ ...fleet, workers: [fleet.workers[2]] });
    expect(selected.controlPlane).toEqual(fleet.controlPlane);
  });

  it('a worker without labels matches only selectors that hold for no labels', () => {
    const bare = fleetWith(2);
    expect(names(selectWorkers(bare, 'tier!=prod'))).toEqual(['worker-1', 'worker-2']);
    expect(names(selectWorkers(bare, '!tier'))).toEqual(['worker-1', 'worker-2']);
    expect(refusal(() => selectWorkers(bare, 'tier')).message).toBe(
      '--select "tier" matches none of the 2 worker clusters'
    );
  });

  it('does not change the fleet it is given', () => {
    const before = structuredClone(fleet);
    selectWorkers(fleet, 'site=east');
    expect(fleet).toEqual(before);
  });

  it.each([
    ['', '--select: the selector is empty'],
    ['site in (east', '--select: unbalanced "(" in "site in (east"'],
    ['-site=east', '--select: "-site" is not a valid label key (in "-site=east")'],
    ['site=east west', '--select: "east west" is not a valid label value (in "site=east west")'],
    ['site=east,', '--select: empty requirement in "site=east,"'],
  ])('a bad selector %j is refused with one line', (select, message) => {
    expect(refusal(() => selectWorkers(fleet, select)).message).toBe(message);
  });

  it('a selector matching no worker is refused, naming the count of workers', () => {
    expect(refusal(() => selectWorkers(fleet, 'site=north')).message).toBe(
      '--select "site=north" matches none of the 4 worker clusters'
    );
    expect(refusal(() => selectWorkers(fleet, '  tier=prod,site=nowhere ')).message).toBe(
      '--select "tier=prod,site=nowhere" matches none of the 4 worker clusters'
    );
  });
});

describe('rolloutOptions: --select, --batches, --soak', () => {
  it('--batches: the waves, of the workers of the fleet it is given', () => {
    expect(rolloutOptions({ batches: '1,5,25%,100%' }, fleetWith(20))).toEqual({
      batches: [1, 5, 5, 9],
      healthTimeoutMs: 600_000,
      onFailure: 'rollback',
      maxFailures: 0,
    });
  });

  it('--soak 30m with --batches: 1,800,000 ms between waves', () => {
    const options = rolloutOptions({ batches: '2', soak: '30m' }, fleetWith(5));
    expect(options.batches).toEqual([2, 2, 1]);
    expect(options.soakMs).toBe(1_800_000);
  });

  it('--select: the text is kept, trimmed', () => {
    expect(rolloutOptions({ select: ' site=east,tier!=prod ' }, fleetWith(3)).select).toBe('site=east,tier!=prod');
  });

  it('no --select, --batches nor --soak: none of them in the options', () => {
    const options = rolloutOptions({}, fleetWith(3));
    expect(options).not.toHaveProperty('select');
    expect(options).not.toHaveProperty('batches');
    expect(options).not.toHaveProperty('soakMs');
  });

  it('every flag together', () => {
    expect(
      rolloutOptions(
        {
          select: 'site=east',
          batches: '1,100%',
          soak: '10m',
          healthTimeout: '90s',
          onFailure: 'stop',
          maxFailures: '1',
        },
        fleetWith(4)
      )
    ).toEqual({
      select: 'site=east',
      batches: [1, 3],
      soakMs: 600_000,
      healthTimeoutMs: 90_000,
      onFailure: 'stop',
      maxFailures: 1,
    });
  });

  it.each([
    [
      { canary: '1', batches: '1,100%' },
      '--canary and --batches do not go together: the first wave of --batches is the canary (e.g. --batches 1,100%)',
    ],
    [
      { canary: 'worker-2', batches: '2' },
      '--canary and --batches do not go together: the first wave of --batches is the canary (e.g. --batches 1,100%)',
    ],
    [{ soak: '30m' }, '--soak waits between waves: it needs --batches'],
    [{ soak: '30m', canary: '1' }, '--soak waits between waves: it needs --batches'],
    [{ batches: '2', soak: '5s' }, '--soak "5s" must be a duration from 10s to 24h, such as 90s, 10m or 1h'],
    [{ batches: '2', soak: '30' }, '--soak "30" must be a duration from 10s to 24h, such as 90s, 10m or 1h'],
    [{ batches: '0' }, '--batches "0": "0" must be a count (e.g. 5) or a percentage from 1% to 100% (e.g. 25%)'],
  ])('%j is refused with one line', (flags, message) => {
    expect(refusal(() => rolloutOptions(flags, fleetWith(3))).message).toBe(message);
  });
});
