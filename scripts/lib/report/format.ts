/** Text for the HTML report: escaping (every text goes through `esc`), times and durations. */

const ENTITIES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

/** Text or attribute value, escaped: the report holds no markup it did not write itself. */
export const esc = (v: unknown): string => String(v ?? '').replace(/[&<>"']/g, (c) => ENTITIES[c] ?? c);

/** `2026-11-30 03:53:48.497` (UTC). */
export function time(ms: number | undefined): string {
  if (ms === undefined || !Number.isFinite(ms)) return '';
  return new Date(ms).toISOString().replace('T', ' ').replace('Z', '');
}

/** An ISO time as the workflow recorded it, shown like `time`; kept as given when it is not a time. */
export function isoTime(iso: string): string {
  const ms = Date.parse(iso);
  return Number.isFinite(ms) ? time(ms) : iso;
}

/** `430 ms`, `4.4 s`, `12 min 3 s`, `2 h 5 min`, `1 d 3 h`. */
export function duration(ms: number | undefined): string {
  if (ms === undefined || !Number.isFinite(ms)) return '';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(ms < 10_000 ? 2 : 1)} s`;
  const s = Math.round(ms / 1000);
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  if (s < 86_400) return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
  return `${Math.floor(s / 86_400)} d ${Math.floor((s % 86_400) / 3600)} h`;
}

export const span = (start: number | undefined, end: number | undefined): string =>
  start !== undefined && end !== undefined ? duration(end - start) : '';

/** sha256:abc... as its first 12 hex digits, the whole digest in a tooltip. */
export const digest = (d: string | undefined): string =>
  d ? `<span class="mono" title="${esc(d)}">${esc(d.replace(/^sha256:/, '').slice(0, 12))}</span>` : '';

/** A table: header cells and rows of already-escaped cells. */
export function table(head: string[], rows: string[][], cls = ''): string {
  if (rows.length === 0) return '<p class="muted">none</p>';
  const th = head.map((h) => `<th>${esc(h)}</th>`).join('');
  const body = rows.map((r) => `<tr>${r.map((c) => `<td>${c}</td>`).join('')}</tr>`).join('\n');
  return `<table${cls ? ` class="${esc(cls)}"` : ''}><thead><tr>${th}</tr></thead><tbody>\n${body}\n</tbody></table>`;
}

/** An outcome or status as a coloured label. */
export function badge(outcome: string): string {
  const tone = ['upgraded', 'completed', 'already-at-target', 'approved'].includes(outcome)
    ? 'ok'
    : ['failed', 'rolled-back', 'terminated', 'timed-out'].includes(outcome)
      ? 'bad'
      : ['rejected', 'cancelled', 'not-started', 'skipped'].includes(outcome)
        ? 'warn'
        : 'info';
  return `<span class="badge ${tone}">${esc(outcome)}</span>`;
}
