/** Digests that bind an approval to the CRD change it names, and the durations of the fleet file. */
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  canonicalJson,
  crdStepOf,
  digestMatches,
  digestOf,
  fleetCrdChange,
  fleetCrdDigest,
  shortDigest,
} from '../../runbook/digest';
import { formatDuration, parseDurationMs } from '../../runbook/duration';
import type { ClusterPlan, Step } from '../../runbook/types';

const sha256Hex = (text: string) => createHash('sha256').update(text, 'utf8').digest('hex');

describe('canonicalJson', () => {
  it('sorts object keys', () => {
    expect(canonicalJson({ b: 1, a: 2, c: 3 })).toBe('{"a":2,"b":1,"c":3}');
  });

  it('gives the same text whatever the key order, nested objects included', () => {
    const one = { z: { y: 1, x: [{ b: 2, a: 1 }] }, a: 'x' };
    const two = { a: 'x', z: { x: [{ a: 1, b: 2 }], y: 1 } };
    expect(canonicalJson(one)).toBe(canonicalJson(two));
    expect(canonicalJson(one)).toBe('{"a":"x","z":{"x":[{"a":1,"b":2}],"y":1}}');
  });

  it('keeps the order of arrays', () => {
    expect(canonicalJson([3, 1, 2])).toBe('[3,1,2]');
    expect(canonicalJson({ l: ['b', 'a'] })).not.toBe(canonicalJson({ l: ['a', 'b'] }));
  });

  it('leaves scalars as JSON writes them', () => {
    expect(canonicalJson('abc')).toBe('"abc"');
    expect(canonicalJson(12)).toBe('12');
    expect(canonicalJson(null)).toBe('null');
    expect(canonicalJson(true)).toBe('true');
  });
});

describe('digestOf', () => {
  it('is sha256: and 64 lowercase hex digits', () => {
    expect(digestOf({ a: 1 })).toMatch(/^sha256:[0-9a-f]{64}$/);
  });

  it('hashes the canonical JSON text: "abc" is the SHA-256 of the five characters "abc" with quotes', () => {
    expect(digestOf('abc')).toBe(`sha256:${sha256Hex('"abc"')}`);
    // Not the hash of abc without quotes.
    expect(digestOf('abc')).not.toBe(`sha256:${sha256Hex('abc')}`);
  });

  it('hashes objects in canonical form', () => {
    expect(digestOf({ b: [1, 2], a: 'é' })).toBe(`sha256:${sha256Hex('{"a":"é","b":[1,2]}')}`);
  });

  it('the same value in another key order has the same digest; another value does not', () => {
    expect(digestOf({ a: 1, b: { c: 2, d: 3 } })).toBe(digestOf({ b: { d: 3, c: 2 }, a: 1 }));
    expect(digestOf({ a: 1, b: { c: 2, d: 3 } })).not.toBe(digestOf({ a: 1, b: { c: 2, d: 4 } }));
  });
});

describe('shortDigest', () => {
  const full = `sha256:${'0123456789ab'}${'c'.repeat(52)}`;

  it('the first 12 hex digits, without the prefix', () => {
    expect(shortDigest(full)).toBe('0123456789ab');
  });

  it('a digest without the prefix gives the same', () => {
    expect(shortDigest(full.slice('sha256:'.length))).toBe('0123456789ab');
  });
});

describe('digestMatches', () => {
  const actual = digestOf({ crds: ['a.yaml'] });
  const hex = actual.slice('sha256:'.length);

  it('the full digest', () => {
    expect(digestMatches(actual, actual)).toBe(true);
  });

  it('the full hex without sha256:', () => {
    expect(digestMatches(hex, actual)).toBe(true);
  });

  it('the 12-digit prefix, with or without sha256:', () => {
    expect(digestMatches(hex.slice(0, 12), actual)).toBe(true);
    expect(digestMatches(`sha256:${hex.slice(0, 12)}`, actual)).toBe(true);
    expect(digestMatches(shortDigest(actual), actual)).toBe(true);
  });

  it('uppercase, and surrounding blanks', () => {
    expect(digestMatches(hex.slice(0, 12).toUpperCase(), actual)).toBe(true);
    expect(digestMatches(`SHA256:${hex.toUpperCase()}`, actual)).toBe(true);
    expect(digestMatches(`  ${hex.slice(0, 16)}\n`, actual)).toBe(true);
  });

  it('refuses 11 digits, even when they are a prefix', () => {
    expect(digestMatches(hex.slice(0, 11), actual)).toBe(false);
    expect(digestMatches(`sha256:${hex.slice(0, 11)}`, actual)).toBe(false);
  });

  it('refuses nothing at all', () => {
    expect(digestMatches('', actual)).toBe(false);
    expect(digestMatches('sha256:', actual)).toBe(false);
  });

  it('refuses non-hex text', () => {
    expect(digestMatches(`${hex.slice(0, 11)}g`, actual)).toBe(false);
    expect(digestMatches(`${hex.slice(0, 6)}-${hex.slice(6, 12)}`, actual)).toBe(false);
  });

  it('refuses another algorithm prefix', () => {
    expect(digestMatches(`md5:${hex.slice(0, 12)}`, actual)).toBe(false);
    expect(digestMatches(`sha512:${hex.slice(0, 12)}`, actual)).toBe(false);
  });

  it('refuses a prefix of another digest', () => {
    const other = digestOf({ crds: ['b.yaml'] }).slice('sha256:'.length);
    expect(other.slice(0, 12)).not.toBe(hex.slice(0, 12));
    expect(digestMatches(other.slice(0, 12), actual)).toBe(false);
    expect(digestMatches(other, actual)).toBe(false);
  });

  it('refuses hex digits that are in the digest but not at its start', () => {
    expect(digestMatches(hex.slice(1, 13), actual)).toBe(false);
  });

  it('refuses a digest longer than the actual one', () => {
    expect(digestMatches(`${hex}0`, actual)).toBe(false);
  });
});

const repo = { name: 'skoala', url: 'https://release.daocloud.io/chartrepo/skoala' };

const crdStep = (over: Partial<Extract<Step, { kind: 'reapplyCrds' }>> = {}): Step => ({
  kind: 'reapplyCrds',
  chart: 'skoala-init',
  repo,
  version: '0.50.0',
  chartFiles: ['crds/a.yaml', 'crds/b.yaml'],
  extraFiles: [],
  allowDowngrade: false,
  ...over,
});

const worker = (name: string, steps: Step[]): ClusterPlan => ({
  cluster: { name, context: name, namespace: 'skoala-system' },
  role: 'worker',
  release: 'skoala-init',
  from: '0.49.0',
  to: '0.50.0',
  steps,
});

const verify: Step = { kind: 'verifyRelease', release: 'skoala-init', version: '0.50.0' };

describe('crdStepOf', () => {
  it('what the CRD step applies: chart, version, repository URL, files, downgrade flag', () => {
    const step = crdStep({ extraFiles: ['/ops/extra.yaml'], allowDowngrade: true });
    expect(crdStepOf(worker('w1', [verify, step]))).toEqual({
      chart: 'skoala-init',
      version: '0.50.0',
      repo: 'https://release.daocloud.io/chartrepo/skoala',
      chartFiles: ['crds/a.yaml', 'crds/b.yaml'],
      extraFiles: ['/ops/extra.yaml'],
      allowDowngrade: true,
    });
  });

  it('undefined for a plan without a CRD step', () => {
    expect(crdStepOf(worker('w1', [verify]))).toBeUndefined();
    expect(crdStepOf(worker('w1', []))).toBeUndefined();
  });

  it('does not depend on the cluster: two workers with the same step give the same value', () => {
    expect(crdStepOf(worker('w1', [crdStep()]))).toEqual(crdStepOf(worker('w2', [verify, crdStep()])));
  });
});

describe('fleetCrdDigest', () => {
  it('two workers with the same CRD step have the digest of one', () => {
    const one = fleetCrdDigest({ workers: [worker('w1', [crdStep()])] });
    expect(one).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(fleetCrdDigest({ workers: [worker('w1', [crdStep()]), worker('w2', [crdStep()])] })).toBe(one);
  });

  it('is the digest of the sorted list of the distinct steps in canonical JSON', () => {
    const step = crdStepOf(worker('w1', [crdStep()]));
    expect(fleetCrdDigest({ workers: [worker('w1', [crdStep()])] })).toBe(digestOf([canonicalJson(step)]));
  });

  it('workers without a CRD step do not change it', () => {
    const one = fleetCrdDigest({ workers: [worker('w1', [crdStep()])] });
    expect(fleetCrdDigest({ workers: [worker('w0', [verify]), worker('w1', [crdStep()])] })).toBe(one);
  });

  it('another version changes it', () => {
    const one = fleetCrdDigest({ workers: [worker('w1', [crdStep()])] });
    const other = fleetCrdDigest({ workers: [worker('w1', [crdStep({ version: '0.51.0' })])] });
    expect(other).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(other).not.toBe(one);
  });

  it('another file list or the downgrade flag changes it', () => {
    const one = fleetCrdDigest({ workers: [worker('w1', [crdStep()])] });
    expect(fleetCrdDigest({ workers: [worker('w1', [crdStep({ extraFiles: ['/x.yaml'] })])] })).not.toBe(one);
    expect(fleetCrdDigest({ workers: [worker('w1', [crdStep({ allowDowngrade: true })])] })).not.toBe(one);
  });

  it('a worker with another step adds to it; the order of the workers does not matter', () => {
    const a = worker('w1', [crdStep()]);
    const b = worker('w2', [crdStep({ version: '0.51.0' })]);
    const both = fleetCrdDigest({ workers: [a, b] });
    expect(both).not.toBe(fleetCrdDigest({ workers: [a] }));
    expect(both).not.toBe(fleetCrdDigest({ workers: [b] }));
    expect(fleetCrdDigest({ workers: [b, a] })).toBe(both);
  });

  it('undefined when no worker has a CRD step', () => {
    expect(fleetCrdDigest({ workers: [worker('w1', [verify]), worker('w2', [])] })).toBeUndefined();
    expect(fleetCrdDigest({ workers: [] })).toBeUndefined();
  });
});

describe('fleetCrdChange', () => {
  it('one step on one worker', () => {
    expect(fleetCrdChange({ workers: [worker('w1', [crdStep()])] })).toBe(
      're-apply CRDs of skoala-init 0.50.0 (2 chart file(s)) on 1 worker cluster(s)'
    );
  });

  it('the same step on two workers is named once and counts both workers', () => {
    expect(fleetCrdChange({ workers: [worker('w1', [crdStep()]), worker('w2', [crdStep()])] })).toBe(
      're-apply CRDs of skoala-init 0.50.0 (2 chart file(s)) on 2 worker cluster(s)'
    );
  });

  it('extra files are counted; workers without the step are not', () => {
    const step = crdStep({ chartFiles: ['crds/a.yaml'], extraFiles: ['/x.yaml', '/y.yaml', '/z.yaml'] });
    expect(fleetCrdChange({ workers: [worker('w0', [verify]), worker('w1', [step])] })).toBe(
      're-apply CRDs of skoala-init 0.50.0 (1 chart file(s) + 3 extra) on 1 worker cluster(s)'
    );
  });

  it('distinct steps are listed in worker order, separated by "; "', () => {
    const plan = {
      workers: [
        worker('w1', [crdStep({ version: '0.51.0' })]),
        worker('w2', [crdStep()]),
        worker('w3', [crdStep({ version: '0.51.0' })]),
      ],
    };
    expect(fleetCrdChange(plan)).toBe(
      're-apply CRDs of skoala-init 0.51.0 (2 chart file(s)); CRDs of skoala-init 0.50.0 (2 chart file(s)) on 3 worker cluster(s)'
    );
  });

  it('undefined when no worker has a CRD step', () => {
    expect(fleetCrdChange({ workers: [worker('w1', [verify])] })).toBeUndefined();
    expect(fleetCrdChange({ workers: [] })).toBeUndefined();
  });
});

describe('parseDurationMs', () => {
  it.each([
    ['30s', 30_000],
    ['90m', 5_400_000],
    ['1h30m', 5_400_000],
    ['4h', 14_400_000],
    ['2d', 172_800_000],
    ['1d2h3m4s', 93_784_000],
    ['0m', 0],
    [' 1h ', 3_600_000],
  ])('%j is %d ms', (text, ms) => {
    expect(parseDurationMs(text)).toBe(ms);
  });

  it.each(['', ' ', '1x', '1m1h', '1s1m', 'h', '1', '1.5h', '-1h', '1h 30m', '1H', 'm30'])('refuses %j', (text) => {
    expect(parseDurationMs(text)).toBeUndefined();
  });
});

describe('formatDuration', () => {
  it.each([
    [0, '0s'],
    [1_000, '1s'],
    [5_400_000, '1h30m'],
    [86_400_000, '1d'],
    [93_784_000, '1d2h3m4s'],
    [90_061_000, '1d1h1m1s'],
    [7_200_000, '2h'],
  ])('%d ms is %j', (ms, text) => {
    expect(formatDuration(ms)).toBe(text);
  });

  it('rounds to whole seconds', () => {
    expect(formatDuration(400)).toBe('0s');
    expect(formatDuration(61_499)).toBe('1m1s');
  });

  it.each(['30s', '90m', '1h30m', '2d', '1d2h3m4s', '4h'])('round trip through %j', (text) => {
    const ms = parseDurationMs(text);
    expect(ms).toBeDefined();
    expect(parseDurationMs(formatDuration(ms as number))).toBe(ms);
  });

  it('writes 90m back as 1h30m', () => {
    expect(formatDuration(parseDurationMs('90m') as number)).toBe('1h30m');
  });
});
