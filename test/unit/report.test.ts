/**
 * The run report, built from recorded histories (test/histories): the model (rows, gates, retries,
 * approvals, failures) and the HTML (escaped, self-contained, no payload dumped). Also the command:
 * the chain and the children fetched through a client, and a bad --out refused before any connection.
 */
import type { Client } from '@temporalio/client';
import { defaultPayloadConverter } from '@temporalio/common';
import { historyFromJSON, type History, type Payload } from '@temporalio/common/lib/proto-utils';
import { execa } from 'execa';
import { mkdtemp, readFile } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { defaultReportFile, writeReport } from '../../scripts/commands/report';
import { renderReportHtml } from '../../scripts/lib/report/html';
import { reportModel } from '../../scripts/lib/report/model';
import type { ReportModel } from '../../scripts/lib/report/types';
import { decodedHistoryText } from '../helpers/history-text';

const load = (file: string): History =>
  historyFromJSON(JSON.parse(readFileSync(new URL(`../histories/${file}`, import.meta.url), 'utf8')));

/** The v7 continue-as-new chain (3 runs) and its three children, runs given out of order. */
const chain = () => ({
  runs: ['final-run3', 'continued-run1', 'continued-run2'].map((r) => load(`upgrade-engine-${r}-v7.json`)),
  children: new Map([
    ['recorded/worker-1', [load('worker-cluster-approved-v7.json')]],
    ['recorded/worker-2', [load('worker-cluster-rejected-v7.json')]],
    ['recorded/worker-3', [load('worker-cluster-rolled-back-at-site-v7.json')]],
  ]),
});

/** The gates parent (approvals, a refused digest, hold/release): only worker-1's child history recorded. */
const gates = () => ({
  parent: load('upgrade-engine-gates-v7.json'),
  child: load('worker-cluster-two-approvers-v7.json'),
});

const row = (m: ReportModel, cluster: string) => {
  const r = m.clusters.find((c) => c.cluster === cluster);
  if (!r) throw new Error(`no row for ${cluster}`);
  return r;
};

/** Markup that would load something from elsewhere or run code: none may be in the report. */
const activeMarkup = (html: string): string[] =>
  html.match(/<script|<link|<img|<iframe|<object|<embed|<[a-z][^>]*\s(?:src|href|action)\s*=|url\(|@import/gi) ?? [];

type Payloads = { payloads?: Payload[] | null } | null | undefined;

/** Changes the first payload of `p` in place, the way a workflow would have written it. */
function editArg(p: Payloads, change: (value: Record<string, unknown>) => void): void {
  const payload = p?.payloads?.[0];
  if (!p?.payloads || !payload) throw new Error('no payload to edit');
  const value = defaultPayloadConverter.fromPayload(payload) as Record<string, unknown>;
  change(value);
  p.payloads[0] = defaultPayloadConverter.toPayload(value);
}

describe('report model and HTML from recorded histories', () => {
  it('a continue-as-new chain: every cluster has a row, the plan, decisions, a retry and a rollback with its cause', () => {
    const { runs, children } = chain();
    const m = reportModel(runs, children);
    expect(m).toMatchObject({ workflowId: 'recorded', targetVersion: '0.19.2', status: 'completed', runs: 3 });
    expect(m.outcome).toBe('2 upgraded, 1 rejected, 1 rolled-back');
    expect(m.clusters.map((c) => [c.cluster, c.outcome, c.source])).toEqual([
      ['control-plane', 'upgraded', 'parent'],
      ['worker-1', 'upgraded', 'child'],
      ['worker-2', 'rejected', 'child'],
      ['worker-3', 'rolled-back', 'child'],
    ]);
    expect(m.plan.clusters.find((p) => p.role === 'control-plane')?.steps).toContain('runDbMigrationJob');
    expect(m.plan.clusters.find((p) => p.cluster === 'worker-3')).toMatchObject({ from: '0.18.0', to: '0.19.2' });
    expect(row(m, 'worker-3').error).toBe(
      'injected nonRetryable failure in verifyWorkloads on worker-3; rolled back to revision 1'
    );
    // A rejected cluster's cause cell names the rejection, not nothing.
    expect(row(m, 'worker-2').error).toBe('rejected by bob: recorded reject');
    expect(row(m, 'worker-3').retries).toBe(1);
    expect(row(m, 'worker-3').steps.find((s) => s.activity === 'upgradeRelease')).toMatchObject({
      attempts: 2,
      status: 'completed',
      retryCause: 'injected retryable failure in upgradeRelease on worker-3',
    });
    expect(row(m, 'worker-1').gates).toEqual([
      expect.objectContaining({ closedAs: 'running', end: expect.any(Number) }),
    ]);
    expect(m.decisions).toEqual([
      expect.objectContaining({ cluster: 'worker-1', approved: true, by: 'alice', at: '2026-11-30T03:53:34.250Z' }),
      expect.objectContaining({ cluster: 'worker-2', approved: false, by: 'bob', reason: 'recorded reject' }),
    ]);

    const html = renderReportHtml(m);
    for (const c of m.clusters) expect(html).toContain(`<div class="row"><div class="name"><b>${c.cluster}</b>`);
    expect(html).toContain('2026-11-30 03:53:34.250'); // alice's approval, when
    expect(html).toContain('recorded reject');
    expect(html).toContain('injected nonRetryable failure in verifyWorkloads on worker-3; rolled back to revision 1');
    expect(html).toContain('helm upgrade skoala-init on worker-3 0.18.0 -&gt; 0.19.2 ×2'); // the retried bar
    expect(html).toContain('worker · 1.76 s · 1 retry'); // worker-3's row
    expect(html.match(/<div class="bar gate"/g)).toHaveLength(2); // worker-1's and worker-2's gate waits
  });

  it('approvals with who and when, a refused digest, hold and release; children without history come from the parent', () => {
    const { parent, child } = gates();
    const m = reportModel([parent], new Map([['recorded-gates/worker-1', [child]]]));
    expect(m.missingChildren).toEqual(['recorded-gates/worker-2', 'recorded-gates/worker-3']);
    expect(m.clusters.map((c) => [c.cluster, c.outcome, c.source])).toEqual([
      ['control-plane', 'upgraded', 'parent'],
      ['worker-1', 'upgraded', 'child'],
      ['worker-2', 'upgraded', 'parent-only'],
      ['worker-3', 'upgraded', 'parent-only'],
    ]);
    // worker-2's gate is seen through the parent's progress signals only.
    expect(row(m, 'worker-2').gates).toHaveLength(1);
    expect(row(m, 'worker-1').decision).toMatchObject({ by: 'bob, carol', approvers: ['bob', 'carol'] });
    expect(row(m, 'worker-3').decision).toMatchObject({ by: 'dave', reason: 'approved ahead (tier=dev)' });
    const refused = m.log.filter((l) => l.refused);
    expect(refused).toEqual([
      expect.objectContaining({ action: 'approve', scope: 'worker-1', by: 'carol', digest: '9a14ef72c7a8' }),
    ]);
    expect(refused[0]?.result).toMatch(/changed since it was shown: now 94eff697f012/);
    expect(m.log.map((l) => `${l.action} ${l.scope ?? ''} ${l.by ?? ''}`)).toEqual([
      'hold tier=dev bob',
      'approve worker-1 bob',
      'approve worker-1 carol',
      'approve worker-1 bob',
      'approve worker-1 carol',
      'release tier=dev bob',
      'approve ahead tier=dev dave',
    ]);

    const html = renderReportHtml(m);
    expect(html).toContain('refused: the CRD change of worker-1 changed since it was shown');
    expect(html).toContain('2026-11-30 03:53:54.176'); // bob and carol's decision
    expect(html).toContain('parent&#39;s view (no child history)'); // escaped, as every text
  });

  it('a failed child: the cause is shown; a child history of another run is not taken for this one', () => {
    const v3 = ['continued-run1', 'continued-run2', 'final-run3'].map((r) => load(`upgrade-engine-${r}-v3.json`));
    const failedChild = load('worker-cluster-failed-at-site-v3.json');
    const m = reportModel(v3, new Map([['recorded/worker-3', [failedChild]]]));
    expect(row(m, 'worker-3')).toMatchObject({ outcome: 'failed', source: 'child' });
    const cause = 'worker-3: upgradeRelease failed: injected nonRetryable failure in upgradeRelease on worker-3';
    expect(row(m, 'worker-3').error).toBe(cause);
    expect(row(m, 'worker-3').steps.find((s) => s.activity === 'upgradeRelease')?.failure).toBe(
      'injected nonRetryable failure in upgradeRelease on worker-3'
    );
    expect(renderReportHtml(m)).toContain(cause);

    // The same child ID, but the v3 run: the v7 parent started another. Its row is the parent's view.
    const { runs } = chain();
    const other = reportModel(runs, new Map([['recorded/worker-3', [failedChild]]]));
    expect(row(other, 'worker-3')).toMatchObject({ outcome: 'rolled-back', source: 'parent-only' });
    expect(renderReportHtml(other)).not.toContain('injected nonRetryable failure in upgradeRelease');
  });

  it('a running upgrade: the open gate, no end, where it stands', () => {
    const { parent, child } = gates();
    const events = parent.events ?? [];
    const waiting = events.findIndex(
      (e) => e.workflowExecutionSignaledEventAttributes?.signalName === 'clusterProgress'
    );
    const childEvents = child.events ?? [];
    const sent = childEvents.findIndex((e) => e.externalWorkflowExecutionSignaledEventAttributes);
    const m = reportModel(
      [{ events: events.slice(0, waiting + 1) }],
      new Map([['recorded-gates/worker-1', [{ events: childEvents.slice(0, sent + 1) }]]])
    );
    expect(m.status).toBe('running');
    expect(m.end).toBeUndefined();
    expect(m.outcome).toBe('workers: 0/3 done, 1 running; waiting for approval: worker-1');
    expect(row(m, 'worker-1')).toMatchObject({ outcome: 'waiting-approval' });
    expect(row(m, 'worker-1').gates).toEqual([expect.not.objectContaining({ end: expect.anything() })]);
    expect(row(m, 'worker-2').outcome).toBe('pending');
    expect(renderReportHtml(m)).toContain('not ended (last event');
  });

  it('escapes every text: a reason, an approver and a cluster name holding markup', () => {
    const { parent, child } = gates();
    const hold = parent.events?.find(
      (e) => e.workflowExecutionUpdateAcceptedEventAttributes?.acceptedRequest?.input?.name === 'hold'
    );
    editArg(hold?.workflowExecutionUpdateAcceptedEventAttributes?.acceptedRequest?.input?.args, (v) => {
      v.reason = '<script>alert(1)</script>';
    });
    const decide = child.events?.find((e) => e.workflowExecutionUpdateAcceptedEventAttributes);
    editArg(decide?.workflowExecutionUpdateAcceptedEventAttributes?.acceptedRequest?.input?.args, (v) => {
      v.by = '"><img src=x onerror=alert(2)>';
    });
    editArg(parent.events?.[0]?.workflowExecutionStartedEventAttributes?.input, (v) => {
      const fleet = (v.request as { fleet: { workers: { name: string }[] } }).fleet;
      fleet.workers.push({ name: 'east-<script>alert(3)</script>' });
    });
    const m = reportModel([parent], new Map([['recorded-gates/worker-1', [child]]]));
    // Control: the markup reached the model as given, so the search below could find it.
    expect(m.log.map((l) => `${l.by} ${l.reason}`).join('\n')).toContain('<script>alert(1)</script>');
    expect(m.clusters.map((c) => c.cluster)).toContain('east-<script>alert(3)</script>');
    for (const bad of ['<script>x</script>', '<img src=x>', '<a href="http://x">', '<p style="background:url(x)">'])
      expect(activeMarkup(bad)).not.toEqual([]);

    const html = renderReportHtml(m);
    expect(activeMarkup(html)).toEqual([]);
    expect(html).toContain('&lt;script&gt;alert(1)&lt;/script&gt;');
    expect(html).toContain('&quot;&gt;&lt;img src=x onerror=alert(2)&gt;');
    expect(html).toContain('<b>east-&lt;script&gt;alert(3)&lt;/script&gt;</b>');
  });

  it('is self-contained and shows no payload as such: no Helm --set value, no kubeconfig path', () => {
    const { runs, children } = chain();
    const html = renderReportHtml(reportModel(runs, children));
    expect(activeMarkup(html)).toEqual([]);
    expect(html).toMatch(/<style>[^]*\.bar\{/);
    // Control: the histories hold both; the report picks other fields.
    const raw = [...runs, ...[...children.values()].flat()].map((h) => decodedHistoryText(h)).join('\n');
    for (const s of ['nacos-operator.image.tag', '/nonexistent/worker-1.kubeconfig', 'stackTrace']) {
      expect(raw).toContain(s);
      expect(html).not.toContain(s);
    }
  });
});

describe('report command', () => {
  it('fetches the chain back from its newest run and each child; a child gone from history leaves a parent-only row', async () => {
    const { runs, children } = chain();
    const byRun = new Map(
      [...runs, ...[...children.values()].flat()].map((h) => [
        h.events?.[0]?.workflowExecutionStartedEventAttributes?.originalExecutionRunId,
        h,
      ])
    );
    const newest = runs[0] as History; // final-run3
    const gone = children.get('recorded/worker-3')?.[0]?.events?.[0]?.workflowExecutionStartedEventAttributes;
    const client = {
      workflow: {
        getHandle: (workflowId: string, runId?: string) => ({
          fetchHistory: async () => {
            if (runId === undefined) return newest;
            if (runId === gone?.originalExecutionRunId)
              throw Object.assign(new Error('5 NOT_FOUND: gone'), { code: 5 });
            const h = byRun.get(runId);
            if (!h) throw new Error(`unexpected fetch of ${workflowId} ${runId}`);
            return h;
          },
        }),
      },
    } as unknown as Client;
    const file = path.join(await mkdtemp(path.join(tmpdir(), 'report-')), 'r.html');
    expect(await writeReport(client, 'recorded', file)).toEqual({ file, clusters: 4, status: 'completed' });
    const html = await readFile(file, 'utf8');
    expect(html).toMatch(/^<!doctype html>/);
    expect(html).toContain('3 parent run(s) and 2 child history(ies) read; no history of recorded/worker-3');
  });

  it('names the default file after the workflow ID, nothing but a file name', () => {
    expect(defaultReportFile('recorded-gates/../x y')).toBe('skoala-report-recorded-gates-..-x-y.html');
  });

  const cli = (args: string[]) =>
    execa(process.execPath, ['--import', 'tsx', 'scripts/cli.ts', ...args], {
      reject: false,
      env: { TEMPORAL_ADDRESS: '127.0.0.1:1' },
    });

  it.concurrent.for<[string[], string]>([
    [
      ['report', '--out', '/nonexistent/dir/r.html'],
      'skoala-upgrade: --out /nonexistent/dir/r.html: directory /nonexistent/dir does not exist',
    ],
    [['report', '--format', 'pdf'], "skoala-upgrade: unknown option '--format'"],
  ])('%j: one line, exit 2, before any connection', async ([args, line]) => {
    const r = await cli(args);
    expect(r.stderr).toBe(line);
    expect(r.exitCode).toBe(2);
  });
});
