/**
 * Replays recorded histories against the current workflow code: a change that would break
 * upgrades already running (non-determinism) fails here. Record new ones with record-histories.ts.
 * Also: an edit of runbook/rules.ts does not change a running upgrade's plan (the rules are
 * recorded once), while an edit that does change it (of plan.ts, the control) is caught.
 */
import { historyFromJSON } from '@temporalio/common/lib/proto-utils';
import { bundleWorkflowCode, Worker, type WorkflowBundleWithSourceMap } from '@temporalio/worker';
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { workflowsPath } from '../../worker/create-worker';

const dir = new URL('../histories/', import.meta.url);
const ids = JSON.parse(readFileSync(new URL('ids.json', dir), 'utf8')) as Record<string, string>;
const files = readdirSync(dir).filter((f) => f.endsWith('.json') && f !== 'ids.json');
const quiet = { trace() {}, debug() {}, info() {}, warn() {}, error() {}, log() {} };

/** Bundles the workflows with one runbook module swapped for an edited copy (what a deploy of an edit does). */
function bundleWith(module: RegExp, replacement: string): Promise<WorkflowBundleWithSourceMap> {
  const file = fileURLToPath(new URL(replacement, import.meta.url));
  return bundleWorkflowCode({
    workflowsPath,
    logger: quiet,
    webpackConfigHook: (config) => {
      config.plugins = [
        ...(config.plugins ?? []),
        {
          apply(compiler) {
            compiler.hooks.normalModuleFactory.tap('edited-runbook', (factory) =>
              factory.hooks.beforeResolve.tap('edited-runbook', (data) => {
                // The edited copy imports the real module itself: only swap imports from elsewhere.
                if (module.test(data.request) && !/test[\\/]workflow/.test(data.contextInfo.issuer))
                  data.request = file;
              })
            );
          },
        },
      ];
      return config;
    },
  });
}

const replay = (workflowBundle: WorkflowBundleWithSourceMap, file: string) =>
  Worker.runReplayHistory(
    { workflowBundle },
    historyFromJSON(JSON.parse(readFileSync(new URL(file, dir), 'utf8'))),
    ids[file]
  );

describe('recorded histories replay on the current workflow code', () => {
  let current: WorkflowBundleWithSourceMap;
  beforeAll(async () => {
    current = await bundleWorkflowCode({ workflowsPath, logger: quiet });
  });

  it('has recorded histories to replay, continue-as-new and a per-site task queue among them', () => {
    expect(files.length).toBeGreaterThanOrEqual(5);
    const text = files.map((f) => readFileSync(new URL(f, dir), 'utf8')).join('\n');
    expect(text).toContain('EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW');
    expect(text).toContain('"name": "record-site"');
  });

  it.each(files)('%s', async (file) => {
    expect(ids[file], `${file} has no workflow ID in ids.json`).toBeDefined();
    await expect(replay(current, file)).resolves.toBeUndefined();
  });

  describe('after an edit of the runbook', () => {
    // The parent runs that upgraded the control plane: the edit drops its DB-migration step.
    const parents = files.filter(
      (f) => f.startsWith('upgrade-engine') && readFileSync(new URL(f, dir), 'utf8').includes('"runDbMigrationJob"')
    );
    let editedRules: WorkflowBundleWithSourceMap;
    let editedPlan: WorkflowBundleWithSourceMap;
    beforeAll(async () => {
      [editedRules, editedPlan] = await Promise.all([
        bundleWith(/runbook[\\/]rules$/, './edited-rules.ts'),
        bundleWith(/runbook[\\/]plan$/, './edited-plan.ts'),
      ]);
    });

    it('an edit of rules.ts: running upgrades keep their recorded plan', async () => {
      expect(parents.length).toBeGreaterThanOrEqual(2); // v2 and v3
      for (const f of parents) await expect(replay(editedRules, f)).resolves.toBeUndefined();
    });

    it('control: the same edit, with the plan computed from the current rules instead, is caught by replay', async () => {
      for (const f of parents)
        await expect(replay(editedPlan, f)).rejects.toThrow(/[Nn]ondeterminism|DeterminismViolation/);
    });
  });
});
