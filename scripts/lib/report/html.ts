/**
 * The run report as one self-contained HTML page, a pure function of the report model: inline CSS,
 * no script, no external asset (a Content-Security-Policy says so to the browser too), and every
 * text escaped. It shows only the model's fields, which hold no payload as such.
 */
import { badge, digest, duration, esc, isoTime, span, table, time } from './format';
import { TIMELINE_CSS, timelineHtml } from './timeline';
import type { ClusterRow, ReportModel, StepBar } from './types';

export interface RenderOptions {
  /** When the report was written (shown in the footer); the histories say nothing of it. */
  generatedAt?: Date;
}

const gateTotal = (c: ClusterRow, until: number | undefined): number | undefined => {
  if (c.gates.length === 0) return undefined;
  return c.gates.reduce((n, g) => n + ((g.end ?? until ?? g.start) - g.start), 0);
};

function header(m: ReportModel): string {
  const until = m.end ?? m.lastEventAt;
  const rows: [string, string][] = [
    ['Workflow ID', esc(m.workflowId)],
    ['Target version', esc(m.targetVersion ?? 'unknown')],
    ['Status', badge(m.status)],
    ['Outcome', esc(m.outcome)],
    ...(m.startedBy ? ([['Started by', esc(m.startedBy)]] as [string, string][]) : []),
    ['Start', esc(time(m.start))],
    ['End', esc(m.end !== undefined ? time(m.end) : `not ended (last event ${time(m.lastEventAt)})`)],
    ['Duration', esc(`${span(m.start, until)}${m.end === undefined ? ' so far' : ''}`)],
    ['Runs', esc(`${m.runs} (continue-as-new chain)`)],
    ...(m.failure ? ([['Cause', `<span class="err">${esc(m.failure)}</span>`]] as [string, string][]) : []),
  ];
  return `<h1>Upgrade ${esc(m.upgradeId || m.workflowId)} to ${esc(m.targetVersion ?? '?')}</h1>
<table class="kv">${rows.map(([k, v]) => `<tr><th>${esc(k)}</th><td>${v}</td></tr>`).join('')}</table>`;
}

function plan(m: ReportModel): string {
  const notes = m.plan.notes.length ? `<ul>${m.plan.notes.map((n) => `<li>${esc(n)}</li>`).join('')}</ul>` : '';
  const rows = m.plan.clusters.map((p) => [
    esc(p.cluster),
    esc(p.role),
    esc(`${p.from ?? 'none'} → ${p.to ?? '?'}`),
    esc(p.steps.join(' → ')),
    esc(p.skipped ?? ''),
  ]);
  return `<h2>Plan</h2>${notes}${table(['Cluster', 'Role', 'From → to', 'Steps', 'Skipped'], rows)}`;
}

function clusters(m: ReportModel): string {
  const until = m.end ?? m.lastEventAt;
  const source = { parent: 'parent', child: 'child history', 'parent-only': "parent's view (no child history)" };
  const rows = m.clusters.map((c) => [
    esc(c.cluster),
    esc(c.role),
    esc(`${c.from ?? 'none'} → ${c.to ?? '?'}`),
    badge(c.outcome),
    esc(time(c.start)),
    esc(time(c.end)),
    esc(span(c.start, c.end)),
    esc(c.retries),
    esc(duration(gateTotal(c, until))),
    c.error ? `<span class="err">${esc(c.error)}</span>` : '',
    esc(source[c.source]),
  ]);
  const head = ['Cluster', 'Role', 'From → to', 'Outcome', 'Start', 'End', 'Duration', 'Retries', 'Gate wait'];
  return `<h2>Clusters</h2>${table([...head, 'Cause', 'Steps from'], rows)}`;
}

function approvals(m: ReportModel): string {
  const gateOf = new Map(m.clusters.map((c) => [c.cluster, gateTotal(c, m.end ?? m.lastEventAt)]));
  const decisions = m.decisions.map((d) => [
    esc(d.cluster),
    badge(d.approved ? 'approved' : 'rejected'),
    esc(d.approvers?.join(', ') ?? d.by),
    esc(d.reason ?? ''),
    digest(d.digest),
    esc(isoTime(d.at)),
    esc(duration(gateOf.get(d.cluster))),
  ]);
  const log = m.log.map((l) => [
    esc(time(l.at)),
    esc(l.via),
    esc(l.action),
    esc(l.scope ?? ''),
    esc(l.by ?? ''),
    esc(l.reason ?? ''),
    `<span class="mono">${esc(l.digest ?? '')}</span>`,
    l.refused ? `<span class="err">refused: ${esc(l.result)}</span>` : esc(l.result ?? ''),
  ]);
  return `<h2>Approvals</h2>
<h3>CRD decisions (as each cluster recorded them)</h3>
${table(['Cluster', 'Decision', 'By', 'Reason', 'Digest', 'At (UTC)', 'Gate wait'], decisions)}
<h3>Approval requests and rollout commands</h3>
${table(['Time (UTC)', 'Via', 'Action', 'Cluster / selector', 'By', 'Reason', 'Digest', 'Result'], log)}`;
}

function failures(m: ReportModel): string {
  const items: string[] = [];
  if (m.failure) items.push(`<li><b>upgrade</b> ${badge(m.status)}: <span class="err">${esc(m.failure)}</span></li>`);
  for (const c of m.clusters) {
    if (c.error)
      items.push(`<li><b>${esc(c.cluster)}</b> ${badge(c.outcome)}: <span class="err">${esc(c.error)}</span></li>`);
    for (const s of [...c.steps, ...(c.role === 'control-plane' ? m.fleetChecks : [])]) {
      if (s.failure)
        items.push(
          `<li><b>${esc(c.cluster)}</b> step ${esc(s.label)} failed after ${esc(s.attempts)} attempt(s): <span class="err">${esc(s.failure)}</span></li>`
        );
      else if (s.retryCause)
        items.push(
          `<li><b>${esc(c.cluster)}</b> step ${esc(s.label)} ${esc(s.status)} at attempt ${esc(s.attempts)}; the attempt before failed: ${esc(s.retryCause)}</li>`
        );
    }
  }
  return `<h2>Failures and retries</h2>${items.length ? `<ul>${items.join('\n')}</ul>` : '<p class="muted">none</p>'}`;
}

function stepRows(steps: StepBar[], t0: number): string[][] {
  return steps.map((s) => [
    esc(s.label),
    `<span class="mono">${esc(s.activity)}</span>`,
    esc(`+${duration(s.start - t0)}`),
    esc(s.end !== undefined ? duration(s.end - s.start) : 'not closed'),
    esc(s.attempts),
    badge(s.status),
    esc([s.retryCause ? `retried after: ${s.retryCause}` : '', s.failure ?? ''].filter(Boolean).join('; ')),
  ]);
}

function details(m: ReportModel): string {
  const t0 = m.start ?? 0;
  const head = ['Step', 'Activity', 'Scheduled', 'Took', 'Attempts', 'Status', 'Failure'];
  const groups = [
    ...(m.fleetChecks.length ? [{ name: 'fleet checks', steps: m.fleetChecks }] : []),
    ...m.clusters.map((c) => ({ name: c.cluster, steps: c.steps })),
  ];
  const blocks = groups.map(
    (g) =>
      `<details><summary>${esc(g.name)}: ${esc(g.steps.length)} step(s)</summary>${table(head, stepRows(g.steps, t0))}</details>`
  );
  return `<h2>Steps</h2><p class="muted">Times from the upgrade's start (${esc(time(m.start))} UTC).</p>${blocks.join('\n')}`;
}

const CSS = `
body{font:14px/1.4 system-ui,-apple-system,"Segoe UI",sans-serif;margin:24px;color:#212529}
h1{font-size:22px}h2{font-size:18px;margin-top:28px;border-bottom:1px solid #ddd}h3{font-size:15px}
table{border-collapse:collapse;margin:6px 0;font-size:13px}
th,td{border:1px solid #ddd;padding:3px 6px;text-align:left;vertical-align:top}
th{background:#f6f6f6}
table.kv th{width:140px}
.muted{color:#6c757d}.err{color:#b02a37}.mono{font-family:ui-monospace,monospace}
.badge{display:inline-block;padding:0 6px;border-radius:8px;font-size:12px;background:#cfe2ff}
.badge.ok{background:#d1e7dd}.badge.bad{background:#f8d7da}.badge.warn{background:#fff3cd}
details{margin:4px 0}summary{cursor:pointer}
`;

/** The report page. */
export function renderReportHtml(m: ReportModel, opts: RenderOptions = {}): string {
  const footer = [
    `${m.runs} parent run(s) and ${m.childHistories} child history(ies) read`,
    m.missingChildren.length
      ? `no history of ${m.missingChildren.join(', ')}: their rows show what the parent saw`
      : '',
    opts.generatedAt ? `written ${time(opts.generatedAt.getTime())} UTC` : '',
  ].filter(Boolean);
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>skoala upgrade ${esc(m.upgradeId || m.workflowId)}: ${esc(m.status)}</title>
<style>${CSS}${TIMELINE_CSS}</style>
</head>
<body>
${header(m)}
${plan(m)}
<h2>Timeline</h2>
${timelineHtml(m)}
${clusters(m)}
${approvals(m)}
${failures(m)}
${details(m)}
<p class="muted">${esc(footer.join('; '))}.</p>
</body>
</html>
`;
}
