/**
 * The per-cluster timeline: one row per cluster, one bar per step (scheduled to closed), CRD gate
 * waits hatched, retried steps outlined, failed ones red. Plain CSS boxes positioned in percent of
 * the upgrade's span: no script, no image. Every text is in a tooltip (title) or in the tables below.
 */
import { badge, duration, esc, span, time } from './format';
import type { ClusterRow, GateWait, ReportModel, StepBar } from './types';

const LANE_PX = 16;

interface Item {
  start: number;
  end?: number;
  html: (left: string, width: string, top: number) => string;
}

function stepTitle(s: StepBar, t0: number): string {
  const lines = [
    `${s.label} (${s.activity})`,
    `+${duration(s.start - t0)} to ${s.end !== undefined ? `+${duration(s.end - t0)} (${duration(s.end - s.start)})` : 'now'}`,
    `${s.status}${s.attempts > 1 ? `, attempt ${s.attempts}` : ''}`,
    ...(s.retryCause ? [`retried after: ${s.retryCause}`] : []),
    ...(s.failure ? [`failed: ${s.failure}`] : []),
  ];
  return lines.join('\n');
}

const stepItem = (s: StepBar, t0: number): Item => ({
  start: s.start,
  ...(s.end !== undefined ? { end: s.end } : {}),
  html: (left, width, top) => {
    const cls = ['bar', `s-${s.status}`, s.preflight ? 'pre' : '', s.attempts > 1 ? 'retried' : '']
      .filter(Boolean)
      .join(' ');
    const label = `${s.label}${s.attempts > 1 ? ` ×${s.attempts}` : ''}`;
    return `<div class="${cls}" style="left:${left}%;width:${width}%;top:${top}px" title="${esc(stepTitle(s, t0))}">${esc(label)}</div>`;
  },
});

const gateItem = (g: GateWait, t0: number): Item => ({
  start: g.start,
  ...(g.end !== undefined ? { end: g.end } : {}),
  html: (left, width, top) => {
    const title = [
      `CRD gate open from +${duration(g.start - t0)}${g.end !== undefined ? ` for ${duration(g.end - g.start)}` : ', still waiting'}`,
      ...(g.digest ? [`digest ${g.digest}`] : []),
      ...(g.closedAs ? [`then ${g.closedAs}`] : []),
    ].join('\n');
    return `<div class="bar gate${g.end === undefined ? ' open' : ''}" style="left:${left}%;width:${width}%;top:${top}px" title="${esc(title)}">gate</div>`;
  },
});

/** Items in lanes: each in the first lane free at its start, so overlapping steps stay readable. */
function track(items: Item[], t0: number, t1: number): string {
  const total = Math.max(t1 - t0, 1);
  const pct = (t: number) => Math.min(100, Math.max(0, ((t - t0) / total) * 100));
  const laneEnds: number[] = [];
  const bars = [...items]
    .sort((a, b) => a.start - b.start)
    .map((it) => {
      const end = it.end ?? t1;
      let lane = laneEnds.findIndex((e) => e <= it.start);
      if (lane < 0) lane = laneEnds.push(end) - 1;
      else laneEnds[lane] = end;
      const left = pct(it.start);
      const width = Math.max(pct(end) - left, 0.25);
      return it.html(left.toFixed(3), width.toFixed(3), lane * LANE_PX + 2);
    });
  const height = Math.max(laneEnds.length, 1) * LANE_PX + 4;
  return `<div class="track" style="height:${height}px">${bars.join('')}</div>`;
}

function rowLabel(c: ClusterRow): string {
  const retries = c.retries > 0 ? ` · ${c.retries} ${c.retries === 1 ? 'retry' : 'retries'}` : '';
  return `<div class="name"><b>${esc(c.cluster)}</b> ${badge(c.outcome)}<br><span class="muted">${esc(c.role)} · ${esc(span(c.start, c.end) || 'no end yet')}${esc(retries)}${c.source === 'parent-only' ? ' · parent view only' : ''}</span></div>`;
}

function axis(t0: number, t1: number): string {
  const ticks = [0, 0.25, 0.5, 0.75, 1].map(
    (f) =>
      `<span style="left:${(f * 100).toFixed(1)}%">${esc(f === 0 ? time(t0) : `+${duration((t1 - t0) * f)}`)}</span>`
  );
  return `<div class="row axis"><div class="name"></div><div class="ticks">${ticks.join('')}</div></div>`;
}

/** The timeline section. */
export function timelineHtml(m: ReportModel): string {
  const starts = [m.start, ...m.clusters.flatMap((c) => c.steps.map((s) => s.start))].filter(
    (t): t is number => t !== undefined
  );
  if (starts.length === 0) return '<p class="muted">nothing ran yet</p>';
  const t0 = starts.reduce((a, b) => Math.min(a, b)); // not Math.min(...): a large fleet has 100,000s of steps
  const t1 = Math.max(m.end ?? m.lastEventAt ?? t0, t0 + 1);
  const rows = [
    ...(m.fleetChecks.length > 0
      ? [
          `<div class="row"><div class="name"><b>fleet checks</b><br><span class="muted">chart and image checks at preflight</span></div>${track(
            m.fleetChecks.map((s) => stepItem(s, t0)),
            t0,
            t1
          )}</div>`,
        ]
      : []),
    ...m.clusters.map(
      (c) =>
        `<div class="row">${rowLabel(c)}${track([...c.steps.map((s) => stepItem(s, t0)), ...c.gates.map((g) => gateItem(g, t0))], t0, t1)}</div>`
    ),
  ];
  const legend = [
    '<span class="bar s-completed">step</span>',
    '<span class="bar s-completed pre">preflight</span>',
    '<span class="bar s-running">running</span>',
    '<span class="bar s-completed retried">retried ×n</span>',
    '<span class="bar s-failed">failed</span>',
    '<span class="bar gate">CRD gate wait</span>',
  ].join(' ');
  return `<div class="timeline">${axis(t0, t1)}\n${rows.join('\n')}</div><p class="legend">${legend} <span class="muted">Hover a bar for its times, attempts and failures.</span></p>`;
}

export const TIMELINE_CSS = `
.timeline{border:1px solid #ddd;border-radius:4px;padding:4px 8px}
.row{display:flex;align-items:flex-start;border-bottom:1px solid #f0f0f0;padding:3px 0}
.row .name{flex:0 0 230px;font-size:12px;padding-right:8px;overflow-wrap:anywhere}
.track,.ticks{position:relative;flex:1 1 auto;min-width:300px}
.ticks{height:16px;font-size:11px;color:#666}
.ticks span{position:absolute;white-space:nowrap;transform:translateX(-50%)}
.ticks span:first-child{transform:none}
.ticks span:last-child{transform:translateX(-100%)}
.bar{position:absolute;height:13px;font-size:10px;line-height:13px;overflow:hidden;white-space:nowrap;text-overflow:ellipsis;border-radius:2px;padding:0 2px;box-sizing:border-box;color:#123}
.legend .bar{position:static;display:inline-block;width:auto;padding:0 6px}
.s-completed{background:#8fd19e}
.s-running,.s-scheduled{background:#9ec5fe}
.s-failed,.s-timed-out{background:#f1aeb5;color:#58151c}
.s-cancelled{background:#dee2e6}
.pre{opacity:.55}
.retried{outline:2px solid #fd7e14;outline-offset:-2px}
.gate{background:repeating-linear-gradient(45deg,#ffe69c 0 5px,#fff3cd 5px 10px);color:#664d03}
.gate.open{border-right:3px solid #fd7e14}
`;
