/**
 * The parent's current details (`setCurrentDetails`, shown on its page in the Temporal UI): a short
 * Markdown table that answers "what is it doing, and what waits on me". Pure: unit-tested.
 */
import type { ClusterStatus, UpgradeStatus } from '../runbook/types';

const SHOWN = 10;

/** Cell text: Markdown table syntax in a value must not break the table. */
const cell = (s: string) => s.replace(/\|/g, '\\|').replace(/\s*\n\s*/g, ' ');

/** Upgraded, running, waiting, failed... in the order an operator reads them. */
const COUNTED: [string, (c: ClusterStatus) => boolean][] = [
  ['upgraded', (c) => c.state === 'upgraded' || c.state === 'already-at-target'],
  ['running', (c) => c.state === 'running'],
  ['waiting for approval', (c) => c.state === 'waiting-approval'],
  ['failed', (c) => c.state === 'failed' || c.state === 'rolled-back'],
  ['skipped', (c) => c.state === 'skipped' || c.state === 'rejected'],
  ['not started', (c) => c.state === 'pending' || c.state === 'not-started'],
  ['cancelled', (c) => c.state === 'cancelled'],
];

export function detailsMarkdown(s: UpgradeStatus, workflowId: string, notes: string[] = []): string {
  const lines = [
    `**skoala ${s.targetVersion}** · phase **${phaseOf(s)}**${notes.map((n) => ` · ${cell(n)}`).join('')}`,
    '',
  ];
  const all = [s.controlPlane, ...s.workers];
  const counts = COUNTED.map(([name, is]) => [name, all.filter(is).length] as const).filter(([, n]) => n > 0);
  lines.push(`| ${counts.map(([n]) => n).join(' | ')} |`, `|${counts.map(() => '---').join('|')}|`);
  lines.push(`| ${counts.map(([, n]) => n).join(' | ')} |`, '');

  const waiting = s.workers.filter((w) => w.state === 'waiting-approval');
  const failed = all.filter((w) => w.state === 'failed' || w.state === 'rolled-back');
  if (waiting.length + failed.length > 0) {
    lines.push('| cluster | waits for | since / cause |', '|---|---|---|');
    for (const w of waiting.slice(0, SHOWN)) {
      const g = w.gate;
      const approvals = g?.needs ? ` (${g.approvedBy?.length ?? 0}/${g.needs} approvals)` : '';
      lines.push(
        `| ${w.cluster} | CRD approval ${g ? `\`${g.digest.slice(0, 19)}\`` : ''}${approvals} | ${g?.since ?? ''} |`
      );
    }
    for (const f of failed.slice(0, SHOWN))
      lines.push(`| ${f.cluster} | retry or skip (${f.state}) | ${cell(f.error ?? 'no cause given')} |`);
    const more = Math.max(0, waiting.length - SHOWN) + Math.max(0, failed.length - SHOWN);
    if (more > 0) lines.push(`| … | ${more} more | \`npm run status\` |`);
    lines.push('');
  }
  if (waiting.length > 0)
    lines.push(
      `Approve: \`npm run approve -- --workflow-id ${workflowId} --cluster ${waiting[0]?.cluster} --by NAME\` (or \`--all\`), or signal \`crdDecision\` on the cluster's child workflow.`
    );
  if (failed.some((f) => f.role === 'worker'))
    lines.push(
      `Retry or skip: \`npm run retry -- --workflow-id ${workflowId} --cluster NAME --by NAME\`, \`npm run skip -- --workflow-id ${workflowId} --cluster NAME --reason WHY --by NAME\`.`
    );
  return lines.join('\n').trimEnd();
}

/** The phase the UI and the SkoalaPhase search attribute show: what waits, before what runs. */
export function phaseOf(s: Pick<UpgradeStatus, 'phase' | 'pendingApprovals' | 'rollout'>): string {
  if (s.phase !== 'workers') return s.phase;
  if (s.pendingApprovals.length > 0) return 'waiting-approval';
  if (s.rollout?.paused) return 'paused';
  return 'workers';
}
