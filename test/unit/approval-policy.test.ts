/** The fleet file's approver policy resolved for one gate, and the checks the workflows and the CLI share. */
import { describe, expect, it } from 'vitest';
import {
  approverRefusal,
  distinctApprovers,
  gatePolicyFor,
  hasApproved,
  unapprovableBecause,
} from '../../runbook/approval-policy';
import type { ApprovalPolicy } from '../../runbook/types';

const HOUR = 3_600_000;

describe('gatePolicyFor', () => {
  it('no policy: anyone decides, one approval, no deadline', () => {
    expect(gatePolicyFor(undefined, { site: 'east' }, 'alice')).toEqual({ distinct: 1 });
  });

  it('an empty policy is the same as none', () => {
    expect(gatePolicyFor({}, {}, 'alice')).toEqual({ distinct: 1 });
  });

  const rules: ApprovalPolicy = {
    rules: [
      { select: 'tier=prod', distinct: 2 },
      { select: 'site=east', distinct: 3 },
      { select: 'site in (east,west)', distinct: 1 },
    ],
  };

  it('the highest distinct among the matching rules wins', () => {
    expect(gatePolicyFor(rules, { tier: 'prod', site: 'east' }, undefined).distinct).toBe(3);
    expect(gatePolicyFor(rules, { tier: 'prod', site: 'west' }, undefined).distinct).toBe(2);
    expect(gatePolicyFor(rules, { site: 'west' }, undefined).distinct).toBe(1);
  });

  it('a rule that matches nothing leaves the default of one', () => {
    expect(gatePolicyFor(rules, { tier: 'dev' }, undefined)).toEqual({ distinct: 1 });
    expect(gatePolicyFor(rules, {}, undefined)).toEqual({ distinct: 1 });
  });

  it('the order of the rules does not matter', () => {
    const reversed: ApprovalPolicy = { rules: [...(rules.rules ?? [])].reverse() };
    expect(gatePolicyFor(reversed, { tier: 'prod', site: 'east' }, undefined).distinct).toBe(3);
  });

  it('a rule with select "" (or only blanks) matches every cluster, labelled or not', () => {
    const policy: ApprovalPolicy = { rules: [{ select: '', distinct: 2 }] };
    expect(gatePolicyFor(policy, {}, undefined).distinct).toBe(2);
    expect(gatePolicyFor(policy, { site: 'east' }, undefined).distinct).toBe(2);
    expect(gatePolicyFor({ rules: [{ select: '  ', distinct: 4 }] }, {}, undefined).distinct).toBe(4);
  });

  it('a catch-all rule and a more demanding selector: the higher wins', () => {
    const policy: ApprovalPolicy = {
      rules: [
        { select: '', distinct: 2 },
        { select: 'tier=prod', distinct: 3 },
      ],
    };
    expect(gatePolicyFor(policy, { tier: 'prod' }, undefined).distinct).toBe(3);
    expect(gatePolicyFor(policy, { tier: 'dev' }, undefined).distinct).toBe(2);
  });

  it('the approvers list is passed on as it is', () => {
    expect(gatePolicyFor({ approvers: ['alice', 'Bob'] }, {}, undefined)).toEqual({
      approvers: ['alice', 'Bob'],
      distinct: 1,
    });
  });

  it('the starter is named only when the policy sets notStarter and the starter is known', () => {
    expect(gatePolicyFor({ notStarter: true }, {}, 'alice')).toEqual({ starter: 'alice', distinct: 1 });
    expect(gatePolicyFor({ notStarter: true }, {}, undefined)).toEqual({ distinct: 1 });
    expect(gatePolicyFor({ notStarter: true }, {}, '')).toEqual({ distinct: 1 });
    expect(gatePolicyFor({ notStarter: false }, {}, 'alice')).toEqual({ distinct: 1 });
    expect(gatePolicyFor({}, {}, 'alice')).toEqual({ distinct: 1 });
  });

  it('a deadline without onDeadline rejects', () => {
    expect(gatePolicyFor({ deadlineMs: 24 * HOUR }, {}, undefined)).toEqual({
      distinct: 1,
      deadlineMs: 24 * HOUR,
      onDeadline: 'reject',
    });
  });

  it('a deadline keeps its onDeadline', () => {
    expect(gatePolicyFor({ deadlineMs: HOUR, onDeadline: 'fail' }, {}, undefined)).toEqual({
      distinct: 1,
      deadlineMs: HOUR,
      onDeadline: 'fail',
    });
  });

  it('onDeadline without a deadline is dropped', () => {
    expect(gatePolicyFor({ onDeadline: 'fail' }, {}, undefined)).toEqual({ distinct: 1 });
  });

  it('the reminder interval is passed on', () => {
    expect(gatePolicyFor({ remindEveryMs: HOUR }, {}, undefined)).toEqual({ distinct: 1, remindEveryMs: HOUR });
  });

  it('every part together', () => {
    const policy: ApprovalPolicy = {
      approvers: ['alice', 'bob', 'carol'],
      notStarter: true,
      rules: [{ select: 'tier=prod', distinct: 2 }],
      deadlineMs: 2 * HOUR,
      onDeadline: 'fail',
      remindEveryMs: HOUR / 2,
    };
    expect(gatePolicyFor(policy, { tier: 'prod' }, 'dave')).toEqual({
      approvers: ['alice', 'bob', 'carol'],
      starter: 'dave',
      distinct: 2,
      deadlineMs: 2 * HOUR,
      onDeadline: 'fail',
      remindEveryMs: HOUR / 2,
    });
  });
});

describe('approverRefusal', () => {
  const listed = { approvers: ['alice', 'Bob'] };

  it('no approvers list and no starter: anyone may approve or reject', () => {
    expect(approverRefusal({}, 'mallory', true)).toBeUndefined();
    expect(approverRefusal({}, 'mallory', false)).toBeUndefined();
  });

  it('a listed approver may approve and reject, names compared without case or surrounding blanks', () => {
    expect(approverRefusal(listed, 'alice', true)).toBeUndefined();
    expect(approverRefusal(listed, 'ALICE', true)).toBeUndefined();
    expect(approverRefusal(listed, 'bob', false)).toBeUndefined();
    expect(approverRefusal(listed, ' bob ', true)).toBeUndefined();
  });

  it('a name not on the list is refused for an approval, naming the list', () => {
    expect(approverRefusal(listed, 'mallory', true)).toBe(
      'mallory is not an allowed approver (the fleet file allows: alice, Bob)'
    );
  });

  it('a name not on the list is refused for a rejection too', () => {
    expect(approverRefusal(listed, 'mallory', false)).toBe(
      'mallory is not an allowed approver (the fleet file allows: alice, Bob)'
    );
  });

  it('a name that only contains a listed one is not on the list', () => {
    expect(approverRefusal(listed, 'alice2', true)).toBe(
      'alice2 is not an allowed approver (the fleet file allows: alice, Bob)'
    );
  });

  it('the starter may not approve', () => {
    expect(approverRefusal({ starter: 'alice' }, 'alice', true)).toBe(
      "alice started this upgrade and may not approve it (the fleet file's approvals.notStarter)"
    );
  });

  it('the starter is recognised whatever the case, and named as they wrote it', () => {
    expect(approverRefusal({ starter: 'Alice' }, 'aLICE', true)).toBe(
      "aLICE started this upgrade and may not approve it (the fleet file's approvals.notStarter)"
    );
  });

  it('the starter may reject: stopping is always safe', () => {
    expect(approverRefusal({ starter: 'alice' }, 'alice', false)).toBeUndefined();
    expect(approverRefusal({ ...listed, starter: 'alice' }, 'alice', false)).toBeUndefined();
  });

  it('someone else may approve when a starter is set', () => {
    expect(approverRefusal({ ...listed, starter: 'alice' }, 'bob', true)).toBeUndefined();
  });

  it('a listed starter is refused as the starter; an unlisted one as not allowed', () => {
    expect(approverRefusal({ ...listed, starter: 'alice' }, 'alice', true)).toBe(
      "alice started this upgrade and may not approve it (the fleet file's approvals.notStarter)"
    );
    expect(approverRefusal({ ...listed, starter: 'mallory' }, 'mallory', true)).toBe(
      'mallory is not an allowed approver (the fleet file allows: alice, Bob)'
    );
  });
});

describe('distinctApprovers', () => {
  it('keeps the first spelling of each person, in order, trimmed', () => {
    expect(distinctApprovers(['alice', 'Bob', 'ALICE', ' bob ', 'carol'])).toEqual(['alice', 'Bob', 'carol']);
  });

  it('trims the names it keeps', () => {
    expect(distinctApprovers([' dave  ', 'Dave'])).toEqual(['dave']);
  });

  it('nobody', () => {
    expect(distinctApprovers([])).toEqual([]);
  });
});

describe('hasApproved', () => {
  it('finds a name whatever its case', () => {
    expect(hasApproved(['alice', 'Bob'], 'bob')).toBe(true);
    expect(hasApproved(['alice', 'Bob'], ' ALICE')).toBe(true);
  });

  it('does not find someone else', () => {
    expect(hasApproved(['alice', 'Bob'], 'carol')).toBe(false);
    expect(hasApproved(['alice'], 'alic')).toBe(false);
    expect(hasApproved([], 'alice')).toBe(false);
  });
});

describe('unapprovableBecause', () => {
  const policy: ApprovalPolicy = {
    approvers: ['alice', 'bob'],
    notStarter: true,
    rules: [{ select: 'tier=prod', distinct: 2 }],
  };

  it('the starter is one of two approvers and a rule needs two: no gate could be approved', () => {
    expect(unapprovableBecause(policy, 'Alice')).toBe(
      'Alice may not approve an upgrade they start (approvals.notStarter), which leaves 1 approver(s) (bob) where 2 distinct are needed: let someone else start it'
    );
  });

  it('fine when someone else starts it, when the starter may approve, or when enough are left', () => {
    expect(unapprovableBecause(policy, 'carol')).toBeUndefined();
    expect(unapprovableBecause({ ...policy, notStarter: false }, 'alice')).toBeUndefined();
    expect(unapprovableBecause({ ...policy, approvers: ['alice', 'bob', 'carol'] }, 'alice')).toBeUndefined();
    expect(unapprovableBecause({ approvers: ['alice'], notStarter: true }, 'alice')).toBe(
      'alice may not approve an upgrade they start (approvals.notStarter), which leaves 0 approver(s) (nobody) where 1 distinct are needed: let someone else start it'
    );
  });
});
