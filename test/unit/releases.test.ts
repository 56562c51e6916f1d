/**
 * The upgrade's identity and the marks it leaves: the workflow ID (one per fleet), the upgrade ID
 * (fleet and version), and how activities/releases.ts reads a release's history and recognises the
 * revisions this upgrade made.
 */
import { ApplicationFailure } from '@temporalio/common';
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  historyLine,
  OWNER_LABEL,
  ownerLabelValue,
  ownRevisions,
  parseHistory,
  parseSecretLabels,
  releaseFacts,
  type HistoryEntry,
} from '../../activities/releases';
import { upgradeIdFor, upgradeWorkflowId } from '../../runbook/fleet';

const T0 = '2025-01-01T00:00:00Z';
const entry = (revision: number, status: string, version: string, description = 'Upgrade complete'): HistoryEntry => ({
  revision,
  updated: T0,
  status,
  chart: `skoala-init-${version}`,
  description,
});

describe('upgrade IDs', () => {
  it('the workflow ID is one per fleet, whatever the version: two versions never race on its clusters', () => {
    expect(upgradeWorkflowId('prod')).toBe('skoala-upgrade-prod');
  });

  it('the upgrade ID is the fleet going to one version', () => {
    expect(upgradeIdFor('prod', '0.28.1')).toBe('skoala-upgrade-prod-0.28.1');
    expect(upgradeIdFor('prod', '0.28.1')).toBe(`${upgradeWorkflowId('prod')}-0.28.1`);
    expect(upgradeIdFor('prod', '0.28.1')).not.toBe(upgradeIdFor('prod', '0.28.2'));
    expect(upgradeIdFor('prod', '0.28.1')).not.toBe(upgradeIdFor('staging', '0.28.1'));
  });
});

describe('owner marks', () => {
  it('the label value: 20 hex digits of the upgrade ID, then the revision; a valid label value', () => {
    const id = 'skoala-upgrade-prod-0.28.1';
    const value = ownerLabelValue(id, 4);
    expect(value).toBe(`${createHash('sha256').update(id).digest('hex').slice(0, 20)}.r4`);
    expect(value).toMatch(/^[a-z0-9]([-a-z0-9_.]{0,61}[a-z0-9])?$/);
    expect(OWNER_LABEL).toBe('skoala-upgrade.io/revision');
  });

  it('differs per revision and per upgrade: a label helm copies to a later revision never matches it', () => {
    expect(ownerLabelValue('u-1', 4)).not.toBe(ownerLabelValue('u-1', 5));
    expect(ownerLabelValue('u-1', 4)).not.toBe(ownerLabelValue('u-2', 4));
  });
});

describe('ownRevisions: one rule for every revision this upgrade creates', () => {
  const U = 'skoala-upgrade-prod-0.28.1';
  /** The labels of the release Secrets: ours on the revisions given. */
  const labelled = (...revisions: number[]) =>
    new Map(revisions.map((r) => [r, { [OWNER_LABEL]: ownerLabelValue(U, r), version: String(r) }]));
  const ours = (history: HistoryEntry[], labels: Map<number, Record<string, string>> = labelled(4)) => [
    ...ownRevisions(history, labels, U),
  ];
  const base = [entry(2, 'superseded', '0.26.2'), entry(3, 'superseded', '0.27.2'), entry(4, 'superseded', '0.28.1')];

  it('an upgrade revision by its own label; a copied label (another number) is not ours', () => {
    expect(ours(base)).toEqual([4]);
    const copied = new Map<number, Record<string, string>>([
      [5, { [OWNER_LABEL]: ownerLabelValue(U, 4) }],
      ...labelled(4),
    ]);
    expect(ours([...base, entry(5, 'deployed', '0.28.1')], copied)).toEqual([4]);
    expect(ownRevisions(base, labelled(4), 'another-upgrade').size).toBe(0);
  });

  it('our interrupted rollback (pending-rollback "Rollback to 3", with revision 3\'s labels) is ours', () => {
    expect(ours([...base, entry(5, 'pending-rollback', '0.27.2', 'Rollback to 3')])).toEqual([4, 5]);
  });

  it('our failed rollback (helm 3.18: `Rollback "NAME" failed: ...`, the base\'s chart) is ours, and so is the next try', () => {
    const failed = entry(
      5,
      'failed',
      '0.27.2',
      'Rollback "skoala-init" failed: Job.batch "x" is invalid: field is immutable'
    );
    expect(ours([...base, failed])).toEqual([4, 5]);
    expect(ours([...base, failed, entry(6, 'deployed', '0.27.2', 'Rollback to 3')])).toEqual([4, 5, 6]);
  });

  it('a chain: pending upgrade, our rollback, our upgrade again, our rollback again', () => {
    const history = [
      entry(3, 'superseded', '0.27.2'),
      entry(4, 'pending-upgrade', '0.28.1', 'Preparing upgrade'),
      entry(5, 'superseded', '0.27.2', 'Rollback to 3'),
      entry(6, 'superseded', '0.28.1'),
      entry(7, 'deployed', '0.27.2', 'Rollback to 3'),
    ];
    expect(ours(history, labelled(4, 6))).toEqual([4, 5, 6, 7]);
  });

  it('a rerun of the same upgrade plans from our rollback: a rollback back to that is ours too', () => {
    // Seen on real nodes (test/e2e/rollback-killed.test.ts): rolled back, rerun with --retry-failed
    // (same upgrade ID, planned from revision 6), then its `npm run rollback` interrupted.
    const history = [
      ...base,
      entry(5, 'pending-rollback', '0.27.2', 'Rollback to 3'),
      entry(6, 'superseded', '0.27.2', 'Rollback to 3'),
      entry(7, 'deployed', '0.28.1'),
      entry(8, 'pending-rollback', '0.27.2', 'Rollback to 6'),
    ];
    expect(ours(history, labelled(4, 7))).toEqual([4, 5, 6, 7, 8]);
  });

  it.each<[string, HistoryEntry]>([
    ['a rollback to another revision than the base', entry(5, 'deployed', '0.26.2', 'Rollback to 2')],
    [
      'a failed rollback to another chart than the base',
      entry(5, 'failed', '0.26.2', 'Rollback "skoala-init" failed: x'),
    ],
    ['an upgrade by someone else', entry(5, 'deployed', '0.28.2')],
    ["someone else's failed upgrade", entry(5, 'failed', '0.28.2', 'Upgrade "skoala-init" failed: x')],
  ])('not ours: %s', (_, theirs) => {
    expect(ours([...base, theirs])).toEqual([4]);
  });

  it('a rollback after a revision that is not ours is not ours, even back to the base', () => {
    const history = [...base, entry(5, 'deployed', '0.28.2'), entry(6, 'deployed', '0.27.2', 'Rollback to 3')];
    expect(ours(history)).toEqual([4]);
  });
});

describe('parseHistory', () => {
  it('sorts by revision, oldest first', () => {
    const out = JSON.stringify([
      entry(4, 'deployed', '0.28.1'),
      entry(2, 'superseded', '0.27.1'),
      entry(3, 'superseded', '0.27.2'),
    ]);
    expect(parseHistory(out).map((e) => e.revision)).toEqual([2, 3, 4]);
  });

  it('empty output is an empty history', () => {
    expect(parseHistory('')).toEqual([]);
  });

  it('output that is not JSON is a non-retryable UnexpectedOutput', () => {
    let err: unknown;
    try {
      parseHistory('REVISION\tUPDATED\tSTATUS');
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ApplicationFailure);
    expect(err).toMatchObject({
      type: 'UnexpectedOutput',
      nonRetryable: true,
      message: 'helm history printed something that is not JSON: REVISION\tUPDATED\tSTATUS',
    });
  });
});

describe('parseSecretLabels', () => {
  it('one JSON labels map a line, keyed by the revision (helm `version` label); blank lines skipped', () => {
    const out = [
      JSON.stringify({ name: 'skoala-init', owner: 'helm', status: 'superseded', version: '3' }),
      '',
      JSON.stringify({ name: 'skoala-init', owner: 'helm', status: 'deployed', version: '4', [OWNER_LABEL]: 'x.r4' }),
      '',
    ].join('\n');
    const labels = parseSecretLabels(out);
    expect([...labels.keys()]).toEqual([3, 4]);
    expect(labels.get(4)?.[OWNER_LABEL]).toBe('x.r4');
    expect(labels.get(3)?.[OWNER_LABEL]).toBeUndefined();
  });
});

describe('releaseFacts', () => {
  it('no history: not installed', () => {
    expect(releaseFacts('skoala-init', [], () => true)).toEqual({ installed: false });
  });

  it('the newest revision, whether it is ours, and the last deployed (or superseded) one', () => {
    const history = [entry(3, 'superseded', '0.27.2'), entry(4, 'failed', '0.28.1', 'Upgrade "skoala-init" failed')];
    expect(releaseFacts('skoala-init', history, (e) => e.revision === 4)).toEqual({
      installed: true,
      chartVersion: '0.28.1',
      revision: 4,
      status: 'failed',
      description: 'Upgrade "skoala-init" failed',
      historyLine: `revision 4 (failed, skoala-init-0.28.1, ${T0}): Upgrade "skoala-init" failed`,
      ours: true,
      updated: T0,
      lastDeployed: { revision: 3, chartVersion: '0.27.2' },
    });
  });

  it('no deployed revision in the history: no lastDeployed', () => {
    const facts = releaseFacts('skoala-init', [entry(1, 'pending-install', '0.28.1')], () => false);
    expect(facts).toMatchObject({ installed: true, status: 'pending-install', ours: false });
    expect(facts.lastDeployed).toBeUndefined();
  });

  it('historyLine says what helm history says', () => {
    expect(historyLine(entry(2, 'pending-upgrade', '0.19.2', 'Preparing upgrade'))).toBe(
      `revision 2 (pending-upgrade, skoala-init-0.19.2, ${T0}): Preparing upgrade`
    );
  });
});
