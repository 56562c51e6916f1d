/**
 * The CRD approval gate's rules (runbook/gate.ts, the code workflows/crd-gate.ts runs) driven by
 * random sequences with fast-check: decisions from allowed and unknown people, the starter, the
 * wrong cluster, with the right, a wrong or no digest, sent before the gate opens, while it waits
 * and after it decided; the preview changing under an approval (the re-check); the deadline. After
 * every event: every decision got exactly one answer (taken, recorded, or why not), a refused one
 * changed nothing, a decision is never changed or approved by the deadline, and an approval is
 * always that of enough distinct allowed people who approved the digest it carries. The seed is
 * printed; SKOALA_FC_SEED=N replays one, SKOALA_FC_RUNS=N runs more.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { distinctApprovers, type GatePolicy } from '../../runbook/approval-policy';
import {
  approveAllAnswer,
  deadlinePassed,
  gateRefusal,
  newGate,
  openGate,
  previewChanged,
  recordDecision,
  type GateRequest,
  type GateState,
} from '../../runbook/gate';
import type { Approval } from '../../runbook/types';

const CLUSTER = 'worker-1';
const PEOPLE = ['alice', 'bob', 'carol', 'mallory', 'starter', ' Alice '] as const;
const DIGESTS = [`sha256:${'a'.repeat(64)}`, `sha256:${'b'.repeat(64)}`, `sha256:${'c'.repeat(64)}`];

interface Policy {
  allowList: boolean;
  notStarter: boolean;
  distinct: number;
  onDeadline: 'reject' | 'fail';
  digestAtOpen: boolean;
}

type Event =
  | { kind: 'open' }
  | {
      kind: 'decide';
      who: number;
      approve: boolean;
      wrongCluster: boolean;
      digest: 'current' | 'short' | 'other' | 'none';
      /** An approval is re-checked against a fresh preview: the change may have moved meanwhile. */
      changedOnCheck: boolean;
    }
  | { kind: 'deadline' };

const policyArb: fc.Arbitrary<Policy> = fc.record({
  allowList: fc.boolean(),
  notStarter: fc.boolean(),
  distinct: fc.integer({ min: 1, max: 3 }),
  onDeadline: fc.constantFrom('reject' as const, 'fail' as const),
  digestAtOpen: fc.boolean(),
});
const eventArb: fc.Arbitrary<Event> = fc.oneof(
  { weight: 1, arbitrary: fc.constant({ kind: 'open' as const }) },
  {
    weight: 6,
    arbitrary: fc.record({
      kind: fc.constant('decide' as const),
      who: fc.integer({ min: 0, max: PEOPLE.length - 1 }),
      approve: fc.boolean(),
      wrongCluster: fc.integer({ min: 0, max: 9 }).map((n) => n < 2),
      digest: fc.constantFrom('current' as const, 'short' as const, 'other' as const, 'none' as const),
      changedOnCheck: fc.integer({ min: 0, max: 9 }).map((n) => n < 3),
    }),
  },
  { weight: 1, arbitrary: fc.constant({ kind: 'deadline' as const }) }
);

function gatePolicy(p: Policy): GatePolicy {
  return {
    ...(p.allowList ? { approvers: ['alice', 'bob', 'carol', 'starter'] } : {}),
    ...(p.notStarter ? { starter: 'starter' } : {}),
    distinct: p.distinct,
    deadlineMs: 60_000,
    onDeadline: p.onDeadline,
  };
}

const allowed = (p: GatePolicy, by: string, approve: boolean) =>
  by.trim() !== '' &&
  (!p.approvers || p.approvers.some((a) => a.toLowerCase() === by.trim().toLowerCase())) &&
  !(approve && p.starter && p.starter === by.trim().toLowerCase());

/** The workflow's flow around the core (crd-gate.ts), one decision at a time, and what each sender is told. */
function check(p: Policy, events: Event[]): void {
  const policy = gatePolicy(p);
  const g: GateState = newGate(CLUSTER, policy);
  let clock = 0;
  const at = () => new Date(Date.UTC(2026, 0, 1) + clock++ * 1000).toISOString();
  let previews = 0;
  const nextPreview = () => ({ text: `change ${previews}`, digest: DIGESTS[previews++ % DIGESTS.length] });
  let decided: Approval | undefined;
  /** Every approval since the last preview change: who sent it and which digest it named. */
  let approvedSince: { by: string; digest?: string }[] = [];

  for (const e of events) {
    const before = JSON.stringify(g);
    if (e.kind === 'open') {
      if (g.waiting || g.decision || g.closed) continue; // a gate opens once
      openGate(g, p.digestAtOpen ? nextPreview() : { text: 'no CRD change' }, at());
    } else if (e.kind === 'deadline') {
      // The deadline timer runs only while the gate waits; a decision cancels it.
      if (!g.waiting || g.decision || g.closed) continue;
      const { failure } = deadlinePassed(g, 'no decision within 1m', at());
      if (p.onDeadline === 'fail') {
        expect(failure).toContain('onDeadline: fail');
        expect(g.closed).toBeDefined();
        expect(g.decision).toBeUndefined();
      } else {
        expect(g.decision).toMatchObject({ approved: false, by: 'deadline' });
      }
    } else {
      const by = PEOPLE[e.who] as string;
      const current = g.preview?.digest;
      const digest =
        e.digest === 'current' && current
          ? current
          : e.digest === 'short' && current
            ? current.slice(0, 'sha256:'.length + 12)
            : e.digest === 'other'
              ? (DIGESTS.find((d) => d !== current) as string)
              : undefined;
      const x: GateRequest = {
        cluster: e.wrongCluster ? 'worker-2' : CLUSTER,
        approve: e.approve,
        by,
        ...(digest ? { digest } : {}),
      };
      const why = gateRefusal(g, x, g.waiting ? 'waiting-approval' : 'running');
      let answer: string;
      if (why) {
        answer = why;
        // A refusal changes nothing.
        expect(JSON.stringify(g)).toBe(before);
        // ... and says why, in terms of what was wrong.
        if (e.wrongCluster) expect(why).toContain(`belongs to cluster ${CLUSTER}`);
        else if (decided) expect(why).toContain('was already');
        else if (g.closed) expect(why).toContain('closed');
        else if (!g.waiting) expect(why).toContain('not waiting for approval yet');
        else if (!allowed(policy, by, e.approve))
          expect(why).toMatch(/not an allowed approver|may not approve|must say who/);
      } else {
        // What may pass: the right cluster, an open gate, an allowed person, the digest shown (approvals).
        expect(x.cluster).toBe(CLUSTER);
        expect(g.waiting && !g.decision && !g.closed).toBe(true);
        expect(allowed(policy, by, e.approve)).toBe(true);
        if (e.approve && current) expect(current.startsWith(String(x.digest).slice(0, 19))).toBe(true);
        if (e.approve && current && e.changedOnCheck) {
          // The re-check saw another change: the approval is refused, earlier ones no longer count.
          answer = previewChanged(g, nextPreview(), at());
          approvedSince = [];
          expect(g.approvals).toEqual([]);
        } else {
          const r = recordDecision(g, x, at());
          answer = r.answer;
          if (e.approve) approvedSince.push({ by, ...(digest ? { digest } : {}) });
          expect(r.decided).toBe(g.decision !== undefined);
          if (!r.decided) expect(answer).toMatch(/approval \d of \d recorded/);
        }
      }
      // Exactly one answer, never empty: taken, recorded, or why not.
      expect(answer.length).toBeGreaterThan(0);
    }

    // A decision, once taken, never changes.
    if (decided) expect(g.decision).toEqual(decided);
    if (g.decision && !decided) {
      decided = g.decision;
      if (decided.approved) {
        // Enough distinct allowed people, each of whom approved the digest the decision carries.
        const who = decided.approvers ?? [decided.by];
        expect(distinctApprovers(who)).toEqual(who);
        expect(who.length).toBe(policy.distinct);
        for (const w of who) expect(allowed(policy, w, true)).toBe(true);
        expect(decided.by).not.toBe('deadline');
        expect(decided.digest).toBe(g.preview?.digest);
        for (const a of approvedSince)
          if (decided.digest) expect(decided.digest.startsWith(String(a.digest).slice(0, 19))).toBe(true);
      }
    }
    // The gate never holds more approvals than it needs, and never two of one person.
    expect(g.approvals.length).toBeLessThanOrEqual(policy.distinct);
    expect(distinctApprovers(g.approvals.map((a) => a.by))).toHaveLength(g.approvals.length);
  }
}

const seed = Number(process.env.SKOALA_FC_SEED ?? Date.now() % 2 ** 31);

describe('the approval gate model, property-based', () => {
  it('random decision sequences keep every invariant (seed printed)', () => {
    console.log(`gate model: fast-check seed ${seed} (replay: SKOALA_FC_SEED=${seed})`);
    fc.assert(
      fc.property(policyArb, fc.array(eventArb, { maxLength: 30 }), (p, events) => check(p, events)),
      {
        seed,
        numRuns: Number(process.env.SKOALA_FC_RUNS ?? 500),
        examples: [
          // Two distinct approvers, the change moving under the second: the first must approve again.
          [
            { allowList: false, notStarter: false, distinct: 2, onDeadline: 'reject', digestAtOpen: true },
            [
              { kind: 'open' },
              { kind: 'decide', who: 0, approve: true, wrongCluster: false, digest: 'current', changedOnCheck: false },
              { kind: 'decide', who: 1, approve: true, wrongCluster: false, digest: 'current', changedOnCheck: true },
              { kind: 'decide', who: 1, approve: true, wrongCluster: false, digest: 'current', changedOnCheck: false },
              { kind: 'decide', who: 5, approve: true, wrongCluster: false, digest: 'short', changedOnCheck: false },
            ],
          ],
        ],
      }
    );
  });

  it('the deadline never approves, and a gate that closed answers every later decision with why', () => {
    const g = newGate(CLUSTER, { distinct: 1, deadlineMs: 1000, onDeadline: 'fail' });
    openGate(g, { text: 'x', digest: DIGESTS[0] }, '2026-01-01T00:00:00Z');
    expect(deadlinePassed(g, 'no decision within 1s', '2026-01-01T00:00:01Z').failure).toBe(
      'no decision within 1s (approvals.onDeadline: fail)'
    );
    expect(g.decision).toBeUndefined();
    expect(gateRefusal(g, { cluster: CLUSTER, by: 'alice', approve: true, digest: DIGESTS[0] }, 'failed')).toBe(
      `the gate of cluster ${CLUSTER} closed: no decision within 1s (approvals.onDeadline: fail)`
    );
  });

  it('approve-all answers for every cluster it targeted: decided, or not and why (never silent)', () => {
    const clusterArb = fc.uniqueArray(fc.constantFrom<string>('w1', 'w2', 'w3', 'w4', 'w5'), { maxLength: 5 });
    const answerArb = fc.record({
      decided: fc.boolean(),
      reason: fc.option(fc.constantFrom('cluster w1 was already approved by bob', 'recorded; more approvals needed'), {
        nil: undefined,
      }),
    });
    fc.assert(
      fc.property(
        clusterArb,
        fc.array(fc.nat()),
        fc.dictionary(fc.constantFrom('w1', 'w2', 'w3', 'w4', 'w5'), answerArb),
        (targets, closedPicks, answerMap) => {
          const closed = [...new Set(closedPicks.map((i) => targets[i % Math.max(1, targets.length)]))].filter(
            (c): c is string => c !== undefined
          );
          const answers = new Map(
            Object.entries(answerMap).map(([c, a]) => [
              c,
              { decided: a.decided, ...(a.reason ? { reason: a.reason } : {}) },
            ])
          );
          const r = approveAllAnswer(targets, closed, answers);
          const named = [...r.decided, ...r.notDecided.map((n) => n.cluster)];
          // Each cluster targeted exactly once; none that was not.
          expect([...named].sort()).toEqual([...targets].sort());
          for (const n of r.notDecided) expect(n.reason.length).toBeGreaterThan(0);
          // Decided only where its gate said so, and never a closed one.
          for (const c of r.decided) {
            expect(answers.get(c)?.decided).toBe(true);
            expect(closed).not.toContain(c);
          }
        }
      ),
      { seed, numRuns: 300 }
    );
  });
});
