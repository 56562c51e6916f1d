/**
 * Maintenance windows: when a worker cluster may start. Pure and deterministic (workflow code
 * imports it): the current time is always a parameter, never read from a clock.
 *
 * Time zones come from luxon's IANAZone (Intl underneath, which the workflow sandbox has). Local
 * times are turned into instants here rather than with DateTime.fromObject: luxon resolves an
 * ambiguous time with the offset in effect at Settings.now(), so its answer would depend on the
 * clock, and it moves a skipped time forward by the gap (02:30 -> 03:30) instead of to the first
 * valid instant (03:00).
 */
import { IANAZone } from 'luxon';
import { z } from 'zod';
import { parseSelector, SelectorError } from './selector';
import type { MaintenanceWindow, Weekday } from './types';

const WEEK: readonly Weekday[] = ['Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat', 'Sun'];
const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;
/** A longer window would overlap its own next occurrence and never close. */
const MAX_DURATION_MS = 7 * DAY;
/** Days searched for the next opening: every non-empty `days` list has an occurrence within 7. */
const LOOKAHEAD_DAYS = 8;

const TIME_OF_DAY = /^([01]\d|2[0-3]):([0-5]\d)$/;
const DURATION = /^(?:(\d+)h)?(?:(\d+)m)?$/;

const custom = (ctx: z.RefinementCtx, message: string) => ctx.addIssue({ code: z.ZodIssueCode.custom, message });

const days = z
  .array(z.string())
  .min(1, 'needs at least one day')
  .transform((texts, ctx) => {
    const seen = new Set<Weekday>();
    for (const text of texts) {
      const d = WEEK.find((w) => w.toLowerCase() === text.toLowerCase());
      if (!d) custom(ctx, `"${text}" is not a day: use Mon, Tue, Wed, Thu, Fri, Sat or Sun`);
      else if (seen.has(d)) custom(ctx, `"${text}" is listed twice`);
      else seen.add(d);
    }
    // Week order, so that describeWindow reads the same however the file lists them.
    return WEEK.filter((d) => seen.has(d));
  });

const start = z.string().refine(
  (s) => TIME_OF_DAY.test(s),
  (s) => ({
    message: `"${s}" is not a time of day: use HH:MM, 00:00 to 23:59`,
  })
);

const duration = z.string().transform((text, ctx) => {
  const m = DURATION.exec(text);
  if (!m || (m[1] === undefined && m[2] === undefined)) {
    custom(ctx, `"${text}" is not a duration: use hours and minutes, e.g. 4h, 90m or 1h30m`);
    return z.NEVER;
  }
  const ms = Number(m[1] ?? 0) * HOUR + Number(m[2] ?? 0) * MINUTE;
  if (ms <= 0) custom(ctx, `"${text}" is not longer than zero`);
  else if (ms > MAX_DURATION_MS) custom(ctx, `"${text}" is longer than 7 days (168h): the window would never close`);
  return ms;
});

const timeZone = z.string().refine(
  (tz) => IANAZone.isValidZone(tz),
  (tz) => ({
    message: `"${tz}" is not an IANA time zone (e.g. Europe/Berlin, America/New_York, UTC)`,
  })
);

/** A Kubernetes label selector, refused with the parser's own message. */
export const selectorSchema = z.string().superRefine((text, ctx) => {
  if (text.trim() === '') return; // '' selects every cluster
  try {
    parseSelector(text);
  } catch (err) {
    if (!(err instanceof SelectorError)) throw err;
    custom(ctx, err.message);
  }
});

/** One window as the fleet file writes it (`duration: 4h`), read into a MaintenanceWindow. */
export const windowSchema = z
  .object({
    clusters: z
      .array(z.string().min(1, 'a cluster name is empty'))
      .min(1, 'needs at least one cluster name')
      .optional(),
    select: selectorSchema.optional(),
    days,
    start,
    duration,
    timeZone,
  })
  .strict()
  .superRefine((w, ctx) => {
    if (w.clusters && w.select !== undefined) custom(ctx, 'give clusters or select, not both');
  })
  .transform((w): MaintenanceWindow => ({
    ...(w.clusters ? { clusters: w.clusters } : {}),
    ...(w.select !== undefined ? { select: w.select } : {}),
    days: w.days,
    start: w.start,
    durationMs: w.duration,
    timeZone: w.timeZone,
  }));

/** The windows that cover this cluster: by name, by selector, or (neither given) every cluster. */
export function windowsFor(
  windows: MaintenanceWindow[],
  cluster: { name: string; labels?: Record<string, string> }
): MaintenanceWindow[] {
  return windows.filter((w) => {
    if (w.clusters) return w.clusters.includes(cluster.name);
    if (w.select?.trim()) return parseSelector(w.select).matches(cluster.labels ?? {});
    return true;
  });
}

export type WindowState = { open: true; closesAt?: number } | { open: false; opensAt: number };

/**
 * The instant at which a wall-clock time happens in `zone`; `wall` is that time read as if it were
 * UTC. An ambiguous time (fall-back) is its first occurrence; a skipped time (spring-forward) is the
 * first valid instant after it, the transition itself.
 */
function instantOf(wall: number, zone: IANAZone): number {
  // The offsets either side of any transition near this time.
  const before = zone.offset(wall - DAY);
  const after = zone.offset(wall + DAY);
  const valid = [before, after].map((o) => wall - o * MINUTE).filter((t) => wall - t === zone.offset(t) * MINUTE);
  if (valid.length > 0) return Math.min(...valid);
  // Skipped: the offset changes from `before` to `after` somewhere between lo and hi; find where.
  let lo = wall - after * MINUTE;
  let hi = wall - before * MINUTE;
  while (hi - lo > 1) {
    const mid = lo + Math.floor((hi - lo) / 2);
    if (zone.offset(mid) === before) lo = mid;
    else hi = mid;
  }
  return hi;
}

interface Occurrence {
  start: number;
  end: number;
}

/** Occurrences of `w` that start on local days from `fromDay` to `toDay` around `now`. */
function occurrences(w: MaintenanceWindow, now: number, fromDay: number, toDay: number): Occurrence[] {
  const zone = IANAZone.create(w.timeZone);
  if (!zone.isValid) throw new Error(`maintenance window: "${w.timeZone}" is not an IANA time zone`);
  const [hh = 0, mm = 0] = w.start.split(':').map(Number);
  const today = Math.floor((now + zone.offset(now) * MINUTE) / DAY) * DAY; // local midnight, read as UTC
  const found: Occurrence[] = [];
  for (let k = fromDay; k <= toDay; k++) {
    const date = today + k * DAY;
    const weekday = WEEK[(new Date(date).getUTCDay() + 6) % 7] as Weekday;
    if (!w.days.includes(weekday)) continue;
    // Elapsed time: a 4h window lasts 4 real hours even when a DST change falls inside it.
    const begins = instantOf(date + hh * HOUR + mm * MINUTE, zone);
    found.push({ start: begins, end: begins + w.durationMs });
  }
  return found;
}

/**
 * Whether `now` (epoch ms) is inside one of these windows (those covering one cluster). No windows:
 * open any time. `closesAt` is when the cluster stops being inside any window, following occurrences
 * that overlap or touch; it is absent when that is more than 8 days ahead (windows that chain round
 * the week). Closed: `opensAt` is the earliest next start.
 */
export function windowState(windows: MaintenanceWindow[], now: number): WindowState {
  if (windows.length === 0) return { open: true };
  // Durations reach 7 days (plus an hour of DST), so an occurrence from 8 local days ago may still be open.
  const all = windows.flatMap((w) => occurrences(w, now, -8, LOOKAHEAD_DAYS));
  const containing = all.filter((o) => o.start <= now && now < o.end);
  if (containing.length > 0) {
    let closesAt = Math.max(...containing.map((o) => o.end));
    for (;;) {
      const later = all.filter((o) => o.start <= closesAt && o.end > closesAt);
      if (later.length === 0) break;
      closesAt = Math.max(...later.map((o) => o.end));
    }
    // Beyond the search, later occurrences may chain on: the end is not known.
    return closesAt > now + LOOKAHEAD_DAYS * DAY ? { open: true } : { open: true, closesAt };
  }
  const starts = all.map((o) => o.start).filter((s) => s > now);
  if (starts.length === 0) throw new Error('maintenance windows without days never open');
  return { open: false, opensAt: Math.min(...starts) };
}

function formatDuration(ms: number): string {
  const minutes = Math.round(ms / MINUTE);
  const h = Math.floor(minutes / 60);
  const m = minutes % 60;
  return `${h > 0 ? `${h}h` : ''}${m > 0 || h === 0 ? `${m}m` : ''}`;
}

/** For status messages: `Mon,Tue 22:00 for 4h (Europe/Berlin)`. */
export function describeWindow(w: MaintenanceWindow): string {
  return `${w.days.join(',')} ${w.start} for ${formatDuration(w.durationMs)} (${w.timeZone})`;
}
