/**
 * Replays recorded histories against the current workflow code: a change that would break
 * upgrades already running (non-determinism) fails here. Record new ones with record-histories.ts.
 */
import { historyFromJSON } from '@temporalio/common/lib/proto-utils';
import { bundleWorkflowCode, Worker, type WorkflowBundleWithSourceMap } from '@temporalio/worker';
import { readdirSync, readFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import { workflowsPath } from '../../worker/create-worker';

const dir = new URL('../histories/', import.meta.url);
const ids = JSON.parse(readFileSync(new URL('ids.json', dir), 'utf8')) as Record<string, string>;
const files = readdirSync(dir).filter((f) => f.endsWith('.json') && f !== 'ids.json');

describe('recorded histories replay on the current workflow code', () => {
  let workflowBundle: WorkflowBundleWithSourceMap;
  beforeAll(async () => {
    workflowBundle = await bundleWorkflowCode({
      workflowsPath,
      logger: { trace() {}, debug() {}, info() {}, warn() {}, error() {}, log() {} },
    });
  });

  it('has recorded histories to replay', () => {
    expect(files.length).toBeGreaterThanOrEqual(4);
  });

  it.each(files)('%s', async (file) => {
    const history = historyFromJSON(JSON.parse(readFileSync(new URL(file, dir), 'utf8')));
    expect(ids[file], `${file} has no workflow ID in ids.json`).toBeDefined();
    await expect(Worker.runReplayHistory({ workflowBundle }, history, ids[file])).resolves.toBeUndefined();
  });
});
