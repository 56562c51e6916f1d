/**
 * The CRD approval gate of one worker cluster: what it asks to approve (a preview and its digest),
 * who may decide (the fleet's approver policy), how many must approve, and what happens when
 * nobody does in time. Decisions come as an update (the caller learns of a refusal at once) or as
 * a signal (the UI, the `temporal` CLI, the parent's approve-all).
 */
import {
  ApplicationFailure,
  CancellationScope,
  condition,
  isCancellation,
  log,
  patched,
  setCurrentDetails,
  setHandler,
  sleep,
} from '@temporalio/workflow';
import type { GatePolicy } from '../runbook/approval-policy';
import { shortDigest } from '../runbook/digest';
import {
  approvalCount,
  deadlinePassed,
  gateRefusal,
  newGate,
  openGate,
  previewChanged,
  recordDecision,
} from '../runbook/gate';
import { formatDuration } from '../runbook/duration';
import type { Approval, ClusterPlan, ClusterState } from '../runbook/types';
import type { Proxies } from './activities';
import { errorMessage } from './errors';
import { previewCrdStep, releaseChanges } from './gate-previews';
import { crdDecisionSignal, decideCrdUpdate, type ClusterProgress, type CrdDecision, type GateView } from './messages';
import type { Notifier } from './notify';

/** An approval given ahead that covers the cluster when it was started: the gate passes at once. */
export interface AheadGrant {
  by: string;
  reason?: string;
  selector: string;
  /** When the policy needs several: the distinct approvers whose ahead approvals cover the cluster. */
  approvers?: string[];
  digest?: string;
}

export interface GateDeps {
  plan: ClusterPlan;
  acts: Proxies;
  policy: GatePolicy;
  approvedAhead?: AheadGrant;
  /** The tuning's reminder interval (tests), when the policy sets none. */
  reminder?: string;
  notify: Notifier;
  /** Tells the parent about a state change (retried). */
  report(p: Omit<ClusterProgress, 'cluster' | 'seq'>): Promise<void>;
  state(): ClusterState;
  setState(s: ClusterState): void;
}

const refuse = (message: string) => ApplicationFailure.nonRetryable(message, 'ApprovalRefused');

export function crdGate(d: GateDeps) {
  const cluster = d.plan.cluster.name;
  const { policy } = d;
  // Who may decide, what is recorded, when it is decided: runbook/gate.ts. Here: the waiting and the messages.
  const g = newGate(cluster, policy);
  let decidedBy: string | undefined; // the approve-all request that decided, if one did
  /** What the upgrade changed in the release (manifest and values, compact, redacted), for the approver. */
  let changes: string[] | undefined;

  const view = (): GateView | undefined =>
    g.preview?.digest && g.since
      ? {
          digest: g.preview.digest,
          since: g.since,
          ...(policy.distinct > 1 ? { needs: policy.distinct, approvedBy: g.approvals.map((a) => a.by) } : {}),
        }
      : undefined;

  /** Why this decision cannot be taken now, or undefined when it can. Shared by the update validator and the signal. */
  const refusal = (x: CrdDecision): string | undefined => gateRefusal(g, x, d.state());

  /** Records a decision the refusal check let through. Approvals are checked against a fresh preview first. */
  async function decide(x: CrdDecision): Promise<string> {
    const at = new Date().toISOString();
    if (x.approve && g.preview?.digest && patched('crd-approval-recheck')) {
      // What was seen must still be what will be applied: the cluster may have changed since the gate opened.
      g.checking = true;
      const fresh = await previewCrdStep(d.plan, d.acts).finally(() => (g.checking = false));
      // A cluster that cannot be read now shows no change: the approval stands, the CRD step retries.
      if (fresh.failed)
        log.warn('could not re-check the CRD preview before the approval', { cluster, why: fresh.text });
      else if (fresh.digest && fresh.digest !== g.preview.digest) {
        const why = previewChanged(g, fresh, at);
        showWaiting();
        await d.report({ state: d.state(), ...gateOf() });
        throw refuse(why);
      }
      if (g.decision) throw refuse(`cluster ${cluster} was decided while this approval was checked (${g.decision.by})`);
      if (g.closed) throw refuse(`the gate of cluster ${cluster} closed while this approval was checked: ${g.closed}`);
    }
    const recorded = recordDecision(g, x, at);
    if (!recorded.decided) {
      log.info('CRD step approval recorded', { cluster, by: x.by, have: g.approvals.length, needs: policy.distinct });
      showWaiting();
      await d.report({ state: d.state(), ...gateOf() });
      return recorded.answer;
    }
    decidedBy = x.requestId;
    log.info(`CRD step ${x.approve ? 'approved' : 'rejected'}`, { cluster, by: x.by, reason: x.reason });
    return recorded.answer;
  }

  const gateOf = () => {
    const v = view();
    return v ? { gate: v } : {};
  };

  function showWaiting(): void {
    const { preview } = g;
    const digest = preview?.digest ? ` --digest ${shortDigest(preview.digest)}` : '';
    setCurrentDetails(
      // Markdown in the UI: commands and the preview in code spans and blocks, so `--x` stays `--x`.
      `**${cluster}**: waiting for approval of the CRD re-apply${approvalCount(g)}: \`npm run approve -- --cluster ${cluster}${digest} --by NAME\`` +
        (preview?.text ? `\n\n\`\`\`\n${preview.text}\n\`\`\`` : '') +
        (changes?.length ? `\n\nWhat the upgrade changed:\n\`\`\`\n${changes.join('\n')}\n\`\`\`` : '') +
        (preview?.digest ? `\n\ndigest: \`${preview.digest}\`` : '')
    );
  }

  setHandler(
    decideCrdUpdate,
    async (x) => {
      // Two decisions at once (a person's and an approve-all): the second waits for the first's
      // check, then gets a definite answer (decided, or why not) instead of "try again".
      if (g.checking) {
        await condition(() => !g.checking);
        const why = refusal(x);
        if (why) throw refuse(why);
      }
      return decide(x);
    },
    {
      validator: (x) => {
        const why = refusal(x);
        if (why) throw refuse(why);
      },
    }
  );
  setHandler(crdDecisionSignal, async (x) => {
    // Signals queue behind an approval being checked (e.g. two approvals given ahead, sent together).
    if (g.checking) await condition(() => !g.checking);
    const why = refusal(x);
    let answer: string | undefined = why;
    if (!why) {
      try {
        await decide(x);
        if (g.decision) return; // the gate reports it, with the ack, when it closes
      } catch (err) {
        if (isCancellation(err)) throw err;
        answer = errorMessage(err);
      }
    }
    if (answer) log.warn(`CRD decision not taken: ${answer}`, { cluster, by: x.by });
    if (x.requestId)
      await d.report({
        state: d.state(),
        ack: { requestId: x.requestId, decided: false, reason: answer ?? 'recorded; more approvals needed' },
      });
  });

  /** Waits for a person's decision (or the policy's deadline outcome) and returns it. */
  async function awaitDecision(): Promise<Approval> {
    const ahead = d.approvedAhead;
    if (ahead) {
      // Decided before the gate opened: recorded like any approval, nobody waits, the parent is not signalled.
      const reason = ahead.reason ?? `approved ahead (${ahead.selector || 'every cluster'})`;
      const decision: Approval = {
        approved: true,
        by: ahead.approvers?.join(', ') ?? ahead.by,
        reason,
        at: new Date().toISOString(),
        ...(ahead.digest ? { digest: ahead.digest } : {}),
        ...(ahead.approvers && ahead.approvers.length > 1 ? { approvers: ahead.approvers } : {}),
      };
      g.decision = decision;
      log.info('CRD step approved ahead', { cluster, by: decision.by, selector: ahead.selector });
      return decision;
    }
    // Added after v2 histories were recorded: upgrades already waiting replay without it.
    const preview = patched('crd-preview-at-gate') ? await previewCrdStep(d.plan, d.acts) : undefined;
    // Added after v8 histories were recorded: gates already waiting replay without it.
    if (patched('release-changes-at-gate')) changes = await releaseChanges(d.plan, d.acts);
    openGate(g, preview, new Date().toISOString());
    d.setState('waiting-approval');
    showWaiting();
    await d.report({ state: 'waiting-approval', ...gateOf() });
    d.notify.send({
      event: 'gate-opened',
      cluster,
      message: `${cluster} waits for approval of its CRD re-apply${preview?.text ? `: ${preview.text}` : ''}`,
      ...(preview?.digest ? { digest: preview.digest } : {}),
    });

    let expired = false;
    const deadline = new CancellationScope();
    if (policy.deadlineMs !== undefined) {
      const ms = policy.deadlineMs;
      void deadline
        .run(() =>
          sleep(ms, {
            summary: `approval deadline of ${cluster}: ${policy.onDeadline ?? 'reject'} after ${formatDuration(ms)}`,
          })
        )
        .then(
          () => (expired = true),
          () => undefined
        );
    }
    const every = policy.remindEveryMs ?? d.reminder ?? '30 minutes';
    // No approval without a person: the deadline only ever rejects or fails. Reminders keep the wait visible.
    // The timer's summary says in the UI what it waits for (not just `1 (30m)`).
    const remind = {
      summary: `${cluster} waits for CRD approval; reminder every ${typeof every === 'number' ? formatDuration(every) : every}`,
    };
    while (!(await condition(() => g.decision !== undefined || expired, every, remind))) {
      log.warn('still waiting for approval of the CRD re-apply', { cluster, since: g.since });
      d.notify.send({
        event: 'gate-reminder',
        cluster,
        message: `${cluster} has waited for approval of its CRD re-apply since ${g.since}`,
        ...(g.preview?.digest ? { digest: g.preview.digest } : {}),
      });
    }
    deadline.cancel();
    // An approval given before the deadline and being checked now decides first: the gate has one
    // outcome, and the approver is told it (added after v8 histories: those replay without it).
    if (!g.decision && g.checking && patched('gate-deadline-waits-for-check')) await condition(() => !g.checking);
    if (!g.decision) await deadlineReached(policy.deadlineMs ?? 0);
    g.waiting = false;
    const decision = g.decision as Approval | undefined; // set above, or deadlineReached threw
    d.setState(decision?.approved ? 'running' : 'rejected');
    await d.report({ state: d.state(), ...(decidedBy ? { ack: { requestId: decidedBy, decided: true } } : {}) });
    return decision as Approval;
  }

  // async as it always was: its await keeps the order of the gate's commands in recorded histories.
  async function deadlineReached(ms: number): Promise<void> {
    const what = `no decision on the CRD re-apply of ${cluster} within ${formatDuration(ms)}`;
    d.notify.send({ event: 'gate-deadline', cluster, message: `${what}: ${policy.onDeadline ?? 'reject'}` });
    const { failure } = deadlinePassed(g, what, new Date().toISOString());
    if (failure) throw ApplicationFailure.nonRetryable(failure, 'GateDeadline');
  }

  return {
    awaitDecision,
    query: () => ({
      ...(g.preview?.text ? { preview: g.preview.text } : {}),
      ...(changes ? { changes } : {}),
      ...gateOf(),
    }),
  };
}
