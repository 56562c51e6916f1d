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
