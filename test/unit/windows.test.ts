/**
 * Maintenance windows: the fleet file's schema, which windows cover a cluster, and whether one is
 * open at a given instant. Every expected instant is written in UTC and worked out in the comments.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { MaintenanceWindow, Weekday } from '../../runbook/types';
import { describeWindow, windowSchema, windowState, windowsFor } from '../../runbook/windows';

const at = (iso: string): number => {
  const ms = Date.parse(iso);
  if (Number.isNaN(ms)) throw new Error(`bad instant in the test: ${iso}`);
  return ms;
};
const HOUR = 3_600_000;

function win(days: Weekday[], start: string, hours: number, timeZone: string): MaintenanceWindow {
  return { days, start, durationMs: hours * HOUR, timeZone };
}

/** windowState with the instants shown as ISO strings, so a failure reads as times. */
function state(windows: MaintenanceWindow[], now: string) {
  const s = windowState(windows, at(now));
  if (!s.open) return { open: false, opensAt: new Date(s.opensAt).toISOString() };
  return s.closesAt === undefined ? { open: true } : { open: true, closesAt: new Date(s.closesAt).toISOString() };
}

describe('windowState', () => {
  it('is open any time when no window covers the cluster', () => {
    expect(windowState([], at('2025-01-06T12:00:00Z'))).toEqual({ open: true });
  });

  describe('Europe/Berlin, Mon,Tue 22:00 for 4h (January: CET, UTC+1)', () => {
    // Mon 2025-01-06 22:00 CET = 21:00Z, ends Tue 02:00 CET = 01:00Z.
    const berlin = [win(['Mon', 'Tue'], '22:00', 4, 'Europe/Berlin')];

    it('is closed just before the start and names it', () => {
      expect(state(berlin, '2025-01-06T20:59:59.999Z')).toEqual({ open: false, opensAt: '2025-01-06T21:00:00.000Z' });
    });
    it('is open from the start, closing 4h later', () => {
      expect(state(berlin, '2025-01-06T21:00:00Z')).toEqual({ open: true, closesAt: '2025-01-07T01:00:00.000Z' });
      expect(state(berlin, '2025-01-07T00:59:59.999Z')).toEqual({ open: true, closesAt: '2025-01-07T01:00:00.000Z' });
    });
    it('is closed at the end; the next occurrence is Tuesday 22:00 CET', () => {
      expect(state(berlin, '2025-01-07T01:00:00Z')).toEqual({ open: false, opensAt: '2025-01-07T21:00:00.000Z' });
    });
    it("is open on Wednesday 01:30 local inside Tuesday's occurrence", () => {
      // Wed 01:30 CET = 00:30Z; Tue 22:00 CET occurrence ends Wed 02:00 CET = 01:00Z.
      expect(state(berlin, '2025-01-08T00:30:00Z')).toEqual({ open: true, closesAt: '2025-01-08T01:00:00.000Z' });
    });
    it('opens next on the following Monday across the week boundary', () => {
      // Wed 2025-01-08 noon: no more Mon/Tue this week; Mon 2025-01-13 22:00 CET = 21:00Z.
      expect(state(berlin, '2025-01-08T12:00:00Z')).toEqual({ open: false, opensAt: '2025-01-13T21:00:00.000Z' });
    });
  });

  describe('America/New_York, Fri 22:00 for 4h (January: EST, UTC-5)', () => {
    // Fri 2025-01-10 22:00 EST = Sat 03:00Z, ends Sat 02:00 EST = 07:00Z.
    const ny = [win(['Fri'], '22:00', 4, 'America/New_York')];

    it('runs past midnight: open on Saturday 01:00 local', () => {
      // Sat 01:00 EST = 06:00Z.
      expect(state(ny, '2025-01-11T06:00:00Z')).toEqual({ open: true, closesAt: '2025-01-11T07:00:00.000Z' });
    });
    it('is closed on Saturday 02:00 local until next Friday 22:00 EST', () => {
      // Fri 2025-01-17 22:00 EST = Sat 2025-01-18 03:00Z.
      expect(state(ny, '2025-01-11T07:00:00Z')).toEqual({ open: false, opensAt: '2025-01-18T03:00:00.000Z' });
    });
    it('uses the local day, not the UTC day', () => {
      // Fri 2025-01-10 21:00Z is Fri 16:00 EST: opens at 22:00 EST the same local day = Sat 03:00Z.
      expect(state(ny, '2025-01-10T21:00:00Z')).toEqual({ open: false, opensAt: '2025-01-11T03:00:00.000Z' });
    });
  });

  describe('Asia/Shanghai, Sat,Sun 02:00 for 90m (UTC+8, no DST)', () => {
    // Sat 2025-06-07 02:00 CST = Fri 2025-06-06 18:00Z (a Friday in UTC), ends 19:30Z.
    const shanghai: MaintenanceWindow[] = [
      { days: ['Sat', 'Sun'], start: '02:00', durationMs: 90 * 60_000, timeZone: 'Asia/Shanghai' },
    ];

    it('opens on the local Saturday while it is still Friday in UTC', () => {
      expect(state(shanghai, '2025-06-06T17:00:00Z')).toEqual({ open: false, opensAt: '2025-06-06T18:00:00.000Z' });
      expect(state(shanghai, '2025-06-06T19:00:00Z')).toEqual({ open: true, closesAt: '2025-06-06T19:30:00.000Z' });
    });
    it('after Saturday, opens on Sunday 02:00 CST = Sat 18:00Z', () => {
      expect(state(shanghai, '2025-06-06T19:30:00Z')).toEqual({ open: false, opensAt: '2025-06-07T18:00:00.000Z' });
    });
  });

  describe('UTC, Sun 23:00 for 2h', () => {
    const utc = [win(['Sun'], '23:00', 2, 'UTC')];

    it("is open on Monday 00:30 inside Sunday's occurrence", () => {
      expect(state(utc, '2025-01-06T00:30:00Z')).toEqual({ open: true, closesAt: '2025-01-06T01:00:00.000Z' });
    });
    it('opens next on the following Sunday', () => {
      expect(state(utc, '2025-01-06T01:00:00Z')).toEqual({ open: false, opensAt: '2025-01-12T23:00:00.000Z' });
    });
  });

  describe('several windows', () => {
    const berlin = win(['Mon'], '22:00', 4, 'Europe/Berlin'); // 21:00Z to 01:00Z
    const utc = win(['Mon'], '20:00', 3, 'UTC'); // 20:00Z to 23:00Z
    const ny = win(['Mon'], '09:00', 1, 'America/New_York'); // 09:00 EST = 14:00Z to 15:00Z

    it('opens at the earliest next start, whatever the order', () => {
      const expected = { open: false, opensAt: '2025-01-06T14:00:00.000Z' };
      expect(state([berlin, utc, ny], '2025-01-06T12:00:00Z')).toEqual(expected);
      expect(state([ny, utc, berlin], '2025-01-06T12:00:00Z')).toEqual(expected);
    });
    it('closes at the latest end of the occurrences that hold now', () => {
      expect(state([utc, berlin], '2025-01-06T21:30:00Z')).toEqual({
        open: true,
        closesAt: '2025-01-07T01:00:00.000Z',
      });
      expect(state([berlin, utc], '2025-01-06T21:30:00Z')).toEqual({
        open: true,
        closesAt: '2025-01-07T01:00:00.000Z',
      });
    });
    it('follows an occurrence that starts before the current one ends', () => {
      // utc holds 20:30Z alone; berlin starts at 21:00Z, before 23:00Z, and runs to 01:00Z.
      expect(state([utc, berlin], '2025-01-06T20:30:00Z')).toEqual({
        open: true,
        closesAt: '2025-01-07T01:00:00.000Z',
      });
    });
    it('follows an occurrence that starts exactly when the current one ends', () => {
      const next = win(['Mon'], '23:00', 1, 'UTC'); // 23:00Z to 00:00Z
      expect(state([utc, next], '2025-01-06T20:30:00Z')).toEqual({ open: true, closesAt: '2025-01-07T00:00:00.000Z' });
    });
    it('does not follow one that starts a minute after', () => {
      const later = { ...win(['Mon'], '23:01', 1, 'UTC') };
      expect(state([utc, later], '2025-01-06T20:30:00Z')).toEqual({ open: true, closesAt: '2025-01-06T23:00:00.000Z' });
    });
    it('has no closing time when the windows cover the whole week', () => {
      const week: Weekday[] = ['Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat', 'Sun'];
      expect(state([win(week, '00:00', 24, 'UTC')], '2025-01-08T12:00:00Z')).toEqual({ open: true });
      expect(state([win(['Mon'], '00:00', 168, 'Europe/Berlin')], '2025-01-08T12:00:00Z')).toEqual({ open: true });
    });
  });

  describe('DST in Europe/Berlin', () => {
    // Spring forward Sun 2025-03-30: 02:00 CET (UTC+1) jumps to 03:00 CEST (UTC+2) at 01:00Z.
    it('starts a skipped local time at the first valid instant after it', () => {
      // 02:30 does not exist that day; the first valid instant after it is 03:00 CEST = 01:00Z.
      const skipped = [win(['Sun'], '02:30', 1, 'Europe/Berlin')];
      expect(state(skipped, '2025-03-30T00:59:00Z')).toEqual({ open: false, opensAt: '2025-03-30T01:00:00.000Z' });
      expect(state(skipped, '2025-03-30T01:30:00Z')).toEqual({ open: true, closesAt: '2025-03-30T02:00:00.000Z' });
      // The week before it is 02:30 CET = 01:30Z; the week after, 02:30 CEST = 00:30Z.
      expect(state(skipped, '2025-03-23T00:00:00Z')).toEqual({ open: false, opensAt: '2025-03-23T01:30:00.000Z' });
      expect(state(skipped, '2025-03-30T02:00:00Z')).toEqual({ open: false, opensAt: '2025-04-06T00:30:00.000Z' });
    });
    it('counts the duration in elapsed hours across the change', () => {
      // Sat 2025-03-29 22:00 CET = 21:00Z; +8h = Sun 05:00Z = 07:00 CEST (not 06:00 local).
      const night = [win(['Sat'], '22:00', 8, 'Europe/Berlin')];
      expect(state(night, '2025-03-30T04:30:00Z')).toEqual({ open: true, closesAt: '2025-03-30T05:00:00.000Z' });
    });

    // Fall back Sun 2025-10-26: 03:00 CEST (UTC+2) goes back to 02:00 CET (UTC+1) at 01:00Z.
    it('uses the first of two instants of an ambiguous local time', () => {
      // 02:30 happens at 00:30Z (CEST) and again at 01:30Z (CET): the first counts, open to 01:30Z.
      const ambiguous = [win(['Sun'], '02:30', 1, 'Europe/Berlin')];
      expect(state(ambiguous, '2025-10-26T00:00:00Z')).toEqual({ open: false, opensAt: '2025-10-26T00:30:00.000Z' });
      expect(state(ambiguous, '2025-10-26T01:29:00Z')).toEqual({ open: true, closesAt: '2025-10-26T01:30:00.000Z' });
      // At the second 02:30 it is over; next Sunday 02:30 CET = 01:30Z.
      expect(state(ambiguous, '2025-10-26T01:30:00Z')).toEqual({ open: false, opensAt: '2025-11-02T01:30:00.000Z' });
    });
    it('counts the duration in elapsed hours across the fall-back', () => {
      // Sat 2025-10-25 22:00 CEST = 20:00Z; +8h = Sun 04:00Z = 05:00 CET (not 06:00 local).
      const night = [win(['Sat'], '22:00', 8, 'Europe/Berlin')];
      expect(state(night, '2025-10-26T03:59:00Z')).toEqual({ open: true, closesAt: '2025-10-26T04:00:00.000Z' });
      expect(state(night, '2025-10-26T04:00:00Z')).toEqual({ open: false, opensAt: '2025-11-01T21:00:00.000Z' });
    });
  });

  describe('DST in America/New_York', () => {
    // Spring forward Sun 2025-03-09: 02:00 EST (UTC-5) jumps to 03:00 EDT (UTC-4) at 07:00Z.
    it('starts a skipped local time at the change', () => {
      // 02:00 and 02:59 do not exist: both start at 03:00 EDT = 07:00Z; 01:59 EST = 06:59Z still does.
      for (const start of ['02:00', '02:59']) {
        const w = [win(['Sun'], start, 2, 'America/New_York')];
        expect(state(w, '2025-03-09T06:59:59.999Z')).toEqual({ open: false, opensAt: '2025-03-09T07:00:00.000Z' });
        expect(state(w, '2025-03-09T07:00:00Z')).toEqual({ open: true, closesAt: '2025-03-09T09:00:00.000Z' });
      }
      const before = [win(['Sun'], '01:59', 1, 'America/New_York')];
      expect(state(before, '2025-03-09T06:00:00Z')).toEqual({ open: false, opensAt: '2025-03-09T06:59:00.000Z' });
    });

    // Fall back Sun 2025-11-02: 02:00 EDT (UTC-4) goes back to 01:00 EST (UTC-5) at 06:00Z.
    it('uses the first of two instants of an ambiguous local time', () => {
      // 01:30 happens at 05:30Z (EDT) and 06:30Z (EST): the first counts, 30 minutes to 06:00Z.
      const ambiguous: MaintenanceWindow[] = [
        { days: ['Sun'], start: '01:30', durationMs: 30 * 60_000, timeZone: 'America/New_York' },
      ];
      expect(state(ambiguous, '2025-11-02T05:00:00Z')).toEqual({ open: false, opensAt: '2025-11-02T05:30:00.000Z' });
      expect(state(ambiguous, '2025-11-02T05:45:00Z')).toEqual({ open: true, closesAt: '2025-11-02T06:00:00.000Z' });
      // 06:40Z is 01:40 EST, the second pass: over; next Sunday 01:30 EST = 06:30Z.
      expect(state(ambiguous, '2025-11-02T06:40:00Z')).toEqual({ open: false, opensAt: '2025-11-09T06:30:00.000Z' });
    });
  });

  describe('determinism', () => {
    afterEach(() => {
      vi.useRealTimers();
    });

    it('gives the same answer whatever the system clock says', () => {
      // luxon's DateTime.fromObject resolves ambiguous times with the offset at Date.now(): not used here.
      const ambiguous = [win(['Sun'], '02:30', 1, 'Europe/Berlin')];
      const answers = ['2025-07-01T00:00:00Z', '2025-01-01T00:00:00Z'].map((clock) => {
        vi.useFakeTimers({ now: at(clock) });
        return state(ambiguous, '2025-10-26T00:00:00Z');
      });
      expect(answers).toEqual([
        { open: false, opensAt: '2025-10-26T00:30:00.000Z' },
        { open: false, opensAt: '2025-10-26T00:30:00.000Z' },
      ]);
    });

    it('refuses windows without days instead of waiting forever', () => {
      expect(() => windowState([win([], '22:00', 1, 'UTC')], at('2025-01-06T00:00:00Z'))).toThrow(
        'maintenance windows without days never open'
      );
    });
  });
});

describe('windowsFor', () => {
  const byName: MaintenanceWindow = { ...win(['Mon'], '22:00', 4, 'UTC'), clusters: ['east-1', 'east-2'] };
  const bySelector: MaintenanceWindow = { ...win(['Tue'], '22:00', 4, 'UTC'), select: 'site=west' };
  const notProd: MaintenanceWindow = { ...win(['Wed'], '22:00', 4, 'UTC'), select: 'tier!=prod' };
  const everyone = win(['Sun'], '03:00', 2, 'UTC');
  const windows = [byName, bySelector, notProd, everyone];

  it('picks windows by cluster name', () => {
    expect(windowsFor(windows, { name: 'east-1', labels: { site: 'east', tier: 'prod' } })).toEqual([byName, everyone]);
  });
  it('picks windows by label selector', () => {
    expect(windowsFor(windows, { name: 'west-1', labels: { site: 'west', tier: 'prod' } })).toEqual([
      bySelector,
      everyone,
    ]);
  });
  it('matches selectors against no labels as Kubernetes does', () => {
    // `site=west` needs the label; `tier!=prod` holds for a cluster without it.
    expect(windowsFor(windows, { name: 'lab' })).toEqual([notProd, everyone]);
  });
  it('gives every cluster the windows that name no clusters', () => {
    expect(windowsFor([everyone], { name: 'anything', labels: { tier: 'prod' } })).toEqual([everyone]);
    expect(windowsFor([byName], { name: 'west-1' })).toEqual([]);
  });
});

describe('describeWindow', () => {
  it('says days, start, duration and zone', () => {
    expect(describeWindow(win(['Mon', 'Tue'], '22:00', 4, 'Europe/Berlin'))).toBe(
      'Mon,Tue 22:00 for 4h (Europe/Berlin)'
    );
    expect(describeWindow(win(['Sat'], '01:00', 1.5, 'UTC'))).toBe('Sat 01:00 for 1h30m (UTC)');
    expect(describeWindow(win(['Sun'], '03:05', 0.5, 'Asia/Shanghai'))).toBe('Sun 03:05 for 30m (Asia/Shanghai)');
  });
});

describe('windowSchema', () => {
  const valid = { days: ['Mon'], start: '22:00', duration: '4h', timeZone: 'Europe/Berlin' };

  /** The messages (with their paths) the schema gives for this input; each is one line. */
  function refusals(input: unknown): string[] {
    const result = windowSchema.safeParse(input);
    if (result.success) throw new Error(`accepted: ${JSON.stringify(input)}`);
    const messages = result.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
    for (const m of messages) expect(m).not.toContain('\n');
    return messages;
  }

  it('reads lowercase days into week order and the duration into milliseconds', () => {
    expect(windowSchema.parse({ ...valid, days: ['fri', 'MON', 'Wed'], duration: '1h30m', clusters: ['a'] })).toEqual({
      clusters: ['a'],
      days: ['Mon', 'Wed', 'Fri'],
      start: '22:00',
      durationMs: 90 * 60_000,
      timeZone: 'Europe/Berlin',
    });
  });
  it('reads hours, minutes, and a selector', () => {
    expect(windowSchema.parse({ ...valid, duration: '90m', select: 'site in (east,west)' })).toEqual({
      select: 'site in (east,west)',
      days: ['Mon'],
      start: '22:00',
      durationMs: 90 * 60_000,
      timeZone: 'Europe/Berlin',
    });
    expect(windowSchema.parse({ ...valid, duration: '168h', start: '00:00', timeZone: 'UTC' }).durationMs).toBe(
      168 * HOUR
    );
    expect(windowSchema.parse({ ...valid, start: '23:59' }).start).toBe('23:59');
  });

  it('refuses a day that is not one', () => {
    expect(refusals({ ...valid, days: ['Mon', 'Funday'] })).toEqual([
      'days: "Funday" is not a day: use Mon, Tue, Wed, Thu, Fri, Sat or Sun',
    ]);
    expect(refusals({ ...valid, days: ['monday'] })).toEqual([
      'days: "monday" is not a day: use Mon, Tue, Wed, Thu, Fri, Sat or Sun',
    ]);
  });
  it('refuses no days and a day twice', () => {
    expect(refusals({ ...valid, days: [] })).toEqual(['days: needs at least one day']);
    expect(refusals({ ...valid, days: ['Mon', 'mon'] })).toEqual(['days: "mon" is listed twice']);
  });
  it('refuses start times that are not HH:MM within the day', () => {
    for (const start of ['24:00', '7:5', '07:60', '7:05'])
      expect(refusals({ ...valid, start })).toEqual([
        `start: "${start}" is not a time of day: use HH:MM, 00:00 to 23:59`,
      ]);
  });
  it('refuses zero, unknown units and more than 7 days', () => {
    expect(refusals({ ...valid, duration: '0m' })).toEqual(['duration: "0m" is not longer than zero']);
    expect(refusals({ ...valid, duration: '8d' })).toEqual([
      'duration: "8d" is not a duration: use hours and minutes, e.g. 4h, 90m or 1h30m',
    ]);
    expect(refusals({ ...valid, duration: '30s' })).toEqual([
      'duration: "30s" is not a duration: use hours and minutes, e.g. 4h, 90m or 1h30m',
    ]);
    expect(refusals({ ...valid, duration: '' })).toEqual([
      'duration: "" is not a duration: use hours and minutes, e.g. 4h, 90m or 1h30m',
    ]);
    expect(refusals({ ...valid, duration: '200h' })).toEqual([
      'duration: "200h" is longer than 7 days (168h): the window would never close',
    ]);
    expect(refusals({ ...valid, duration: '168h1m' })).toEqual([
      'duration: "168h1m" is longer than 7 days (168h): the window would never close',
    ]);
  });
  it('refuses an unknown time zone', () => {
    expect(refusals({ ...valid, timeZone: 'Mars/Base' })).toEqual([
      'timeZone: "Mars/Base" is not an IANA time zone (e.g. Europe/Berlin, America/New_York, UTC)',
    ]);
  });
  it('refuses clusters and select together', () => {
    expect(refusals({ ...valid, clusters: ['east-1'], select: 'site=east' })).toEqual([
      ': give clusters or select, not both',
    ]);
  });
  it('refuses an empty cluster list, an empty name and a bad selector', () => {
    expect(refusals({ ...valid, clusters: [] })).toEqual(['clusters: needs at least one cluster name']);
    expect(refusals({ ...valid, clusters: [''] })).toEqual(['clusters.0: a cluster name is empty']);
    expect(refusals({ ...valid, select: 'site in (east' })).toEqual(['select: unbalanced "(" in "site in (east"']);
  });
  it('refuses unknown keys and missing ones', () => {
    expect(refusals({ ...valid, durationMs: 1000 })).toEqual([": Unrecognized key(s) in object: 'durationMs'"]);
    expect(refusals({ days: ['Mon'], start: '22:00', timeZone: 'UTC' })).toEqual(['duration: Required']);
  });
});
