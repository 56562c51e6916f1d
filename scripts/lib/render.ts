/** Turning plans and status into text: tables and command lines for people, JSON for machines. */
import { fleetCrdChange, fleetCrdDigest, shortDigest } from '../../runbook/digest';
import { missingImagesLine, type ImageCheckResult } from '../../runbook/images';
import Table from 'cli-table3';
import { crdPreviewLines, type CrdChange } from '../../activities/crd-preview';
import { redactArgv } from '../../activities/errors';
import { commandsOfStep } from '../../runbook/commands';
import { manifestDiffLines, type ManifestDiff } from '../../runbook/manifest-diff';
import type { ClusterPlan, ClusterStatus, Plan, UpgradeResult, UpgradeStatus } from '../../runbook/types';

const quote = (a: string): string => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`);

/** One CRD of the plan's preview (see activities/crd-preview.ts). */
export type CrdPreview = CrdChange;

/** The manifest diffs of the plan: compact, or with `full` every unified diff (`plan --diff`). */
export interface DiffView {
  diffs: ManifestDiff[];
  full?: boolean;
}

function renderClusterPlan(p: ClusterPlan, crds: CrdPreview[], diff?: DiffView): string[] {
  const head = `${p.cluster.name} (${p.role}, ${p.release} ${p.from ?? 'not installed'} -> ${p.to})`;
  if (p.skipped) return [`${head}: ${p.skipped}`];
  const lines = [`${head}:`];
  let n = 0;
  for (const step of p.steps) {
    for (const c of commandsOfStep(p.cluster, step)) {
      n++;
      lines.push(
        c.tool === 'gate' || c.tool === 'check'
          ? `  ${n}. [${c.tool}] ${c.argv[0]}`
          : `  ${n}. ${c.tool} ${redactArgv(c.argv).map(quote).join(' ')}`
      );
    }
  }
  const crdStep = p.steps.find((s) => s.kind === 'reapplyCrds');
  const allowDowngrade = crdStep?.kind === 'reapplyCrds' && crdStep.allowDowngrade;
  const own = crds.filter((x) => x.cluster === p.cluster.name);
  lines.push(...crdPreviewLines(own, { allowDowngrade }).map((l) => `     ${l}`));
  for (const d of diff?.diffs.filter((x) => x.cluster === p.cluster.name) ?? [])
    lines.push(...manifestDiffLines(d, { full: diff?.full }).map((l) => `     ${l}`));
  return lines;
}

export function renderPlan(plan: Plan, crds: CrdPreview[] = [], images?: ImageCheckResult, diff?: DiffView): string {
  const crdDigest = fleetCrdDigest(plan);
  return [
    `Plan ${plan.upgradeId}: skoala and skoala-init to ${plan.targetVersion}`,
    ...plan.notes.map((n) => `  note: ${n}`),
    ...(crdDigest
      ? [
          `  CRD change ${crdDigest}: ${fleetCrdChange(plan)} (approve --ahead --digest ${shortDigest(crdDigest)} names it)`,
        ]
      : []),
    ...(images
      ? [
          images.missing.length === 0
            ? `  images: ${images.checked} checked in their registries, all present`
            : `  images: MISSING (preflight will refuse this upgrade): ${missingImagesLine(images.missing)}`,
        ]
      : []),
    '',
    ...renderClusterPlan(plan.controlPlane, crds, diff),
    '',
    ...plan.workers.flatMap((w) => [...renderClusterPlan(w, crds, diff), '']),
  ].join('\n');
}

/** Every cluster's state in words: what it did, what it waits for, why it stopped. */
export function reasonOf(c: ClusterStatus, rollout?: UpgradeStatus['rollout']): string {
  const approval = c.approval
    ? `${c.approval.approved ? 'approved' : 'rejected'} by ${c.approval.by}${c.approval.reason ? `: ${c.approval.reason}` : ''}${c.approval.digest ? ` (${shortDigest(c.approval.digest)})` : ''}`
    : '';
  switch (c.state) {
    case 'upgraded':
      return c.error ?? (approval ? `upgraded; CRD step ${approval}` : 'upgraded');
    case 'waiting-approval':
      return c.gate
        ? `waiting for approval since ${c.gate.since}, digest ${shortDigest(c.gate.digest)}${c.gate.needs ? `, ${c.gate.approvedBy?.length ?? 0} of ${c.gate.needs} approvals${c.gate.approvedBy?.length ? ` (${c.gate.approvedBy.join(', ')})` : ''}` : ''}`
        : 'waiting for approval';
    case 'running':
      if (c.retrying) return `retrying: ${c.retrying.error} (${c.retrying.activity}, attempt ${c.retrying.attempt})`;
      return c.step ? `running ${c.step}` : 'running';
    case 'failed':
      return `failed: ${c.error ?? 'no cause given'}`;
    case 'pending':
      return `not started: ${c.waitingFor ?? (rollout?.paused ? `the rollout is paused by ${rollout.paused.by}` : c.role === 'worker' ? 'queued' : 'waiting for preflight')}`;
    case 'rejected':
      return c.error ?? (approval ? `CRD step ${approval}` : 'CRD step rejected');
    default:
      // rolled-back, cancelled, skipped, not-started, already-at-target: the workflow names the cause.
      return c.error ?? (approval || (c.state === 'already-at-target' ? `already at ${c.to}` : ''));
  }
}

export function renderStatus(s: UpgradeStatus): string {
  const table = new Table({
    head: ['cluster', 'role', 'state', 'step', 'from', 'to', 'reason'],
    style: { head: [], border: [] },
    // The reason wraps instead of being cut: its end is often the cause (ProgressDeadlineExceeded).
    colWidths: [null, null, null, null, null, null, 72],
    wordWrap: true,
  });
  for (const c of [s.controlPlane, ...s.workers]) {
    table.push([c.cluster, c.role, c.state, c.step ?? '', c.from ?? '-', c.to, reasonOf(c, s.rollout).slice(0, 400)]);
  }
  const lines = [`${s.upgradeId}: ${s.phase} (target ${s.targetVersion})`, table.toString()];
  if (s.pendingApprovals.length > 0) lines.push(`waiting for approval: ${s.pendingApprovals.join(', ')}`);
  lines.push(...rolloutLines(s.rollout));
  return lines.join('\n');
}

/** Waves, soak, pause and ahead approvals: one line each, only what applies. */
function rolloutLines(r: UpgradeStatus['rollout']): string[] {
  if (!r) return [];
  const lines: string[] = [];
  if (r.waves)
    lines.push(`wave ${r.wave ?? 1} of ${r.waves}${r.soakingUntil ? `: soaking until ${r.soakingUntil}` : ''}`);
  if (r.paused)
    lines.push(
      `PAUSED by ${r.paused.by} at ${r.paused.at}${r.paused.reason ? `: ${r.paused.reason}` : ''} (npm run resume -- --by NAME)`
    );
  for (const h of r.holds ?? [])
    lines.push(
      `HELD by ${h.by} since ${h.at}: ${h.selector ? `clusters matching ${h.selector}` : 'every cluster'}${h.reason ? `: ${h.reason}` : ''} (npm run release -- --select '${h.selector}' --by NAME)`
    );
  for (const a of r.aheadApprovals ?? [])
    lines.push(
      `approved ahead by ${a.by}: ${a.selector ? `clusters matching ${a.selector}` : 'every cluster'}${a.digest ? ` (${shortDigest(a.digest)})` : ''}`
    );
  if (r.crdDigest) lines.push(`fleet CRD change ${r.crdDigest}: ${r.crdChange ?? ''}`);
  return lines;
}

/** A finished upgrade's result in the same shape as a live status, so one table serves both. */
export function statusOfResult(r: UpgradeResult): UpgradeStatus {
  const toStatus = (c: UpgradeResult['controlPlane']): ClusterStatus => ({
    cluster: c.cluster,
    role: c.role,
    state: c.outcome,
    from: c.from,
    to: c.to,
    error: c.error,
    approval: c.approval,
    ...(c.step ? { step: c.step } : {}),
  });
  const workers = r.workers.map(toStatus);
  return {
    upgradeId: r.upgradeId,
    targetVersion: r.targetVersion,
    phase: 'done',
    controlPlane: toStatus(r.controlPlane),
    workers,
    pendingApprovals: [],
    failures: workers
      .filter((w) => w.state === 'failed' || w.state === 'rolled-back')
      .map((w) => ({ cluster: w.cluster, error: w.error ?? 'failed' })),
  };
}
