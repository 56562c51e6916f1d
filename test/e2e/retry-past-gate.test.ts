/**
 * A retry after a failure past the gate, with real helm and a real API server's refusal: worker-1's
 * API server refuses CRD updates (a ValidatingAdmissionPolicy, as a site's change freeze would), so
 * its CRD step fails after the approval, with the release already upgraded. Under
 * `--on-failure pause` the upgrade waits; the refusal is lifted and `retry` finishes the cluster
 * without upgrading its release a second time, and nothing is left pending.
 */
import type { Client, WorkflowHandle } from '@temporalio/client';
import { execa } from 'execa';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildRequest } from '../../scripts/commands/plan';
import { retryOrSkip } from '../../scripts/commands/retry-skip';
import { startUpgrade } from '../../scripts/commands/start-upgrade';
import { startLocalStack, type LocalStack } from '../../scripts/lib/local-stack';
import type { UpgradeResult, UpgradeStatus } from '../../runbook/types';
import { approveUntil } from './approve-until';
import { kube, NS } from './kube';

const CRD = 'httpproxies.projectcontour.io';

let stack: LocalStack;
let client: Client;
let k: ReturnType<typeof kube>;

beforeAll(async () => {
  stack = await startLocalStack({ workers: 1, installVersion: '0.18.0', log: () => {} });
  await stack.startWorker();
  client = stack.temporal.client;
  k = kube(stack);
}, 300_000);
afterAll(async () => {
  await stack?.stop();
});

const w1 = () => stack.sandbox.workers[0] as (typeof stack.sandbox.workers)[0];

/** The API server's own admission: every change to the CRD refused with a site's reason. */
async function freezeCrd(): Promise<void> {
  const file = path.join(stack.sandbox.dir, 'crd-freeze.yaml');
  await writeFile(
    file,
    `apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata: { name: crd-freeze }
spec:
  failurePolicy: Fail
  matchConstraints:
    resourceRules:
      - apiGroups: [apiextensions.k8s.io]
        apiVersions: ['*']
        operations: [CREATE, UPDATE]
        resources: [customresourcedefinitions]
  validations:
    - expression: "object.metadata.name != '${CRD}'"
      message: 'change freeze: CRDs are frozen until Monday'
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata: { name: crd-freeze }
spec:
  policyName: crd-freeze
  validationActions: [Deny]
`
  );
  await k.kubectl(w1(), ['apply', '-f', file]);
  // The policy is enforced once the API server has loaded it: a server-side dry run says when.
  const annotate = () =>
    execa(
      stack.sandbox.tools.kubectl,
      [
        '--kubeconfig',
        w1().kubeconfig,
        'annotate',
        'crd',
        CRD,
        'skoala-upgrade-test/probe=1',
        '--overwrite',
        '--dry-run=server',
      ],
      { reject: false, all: true }
    );
  for (let i = 0; i < 100 && !(await annotate()).all.includes('change freeze'); i++)
    await new Promise((r) => setTimeout(r, 200));
  expect((await annotate()).all).toContain('change freeze');
}

const approveTill = (handle: WorkflowHandle, until: (s: UpgradeStatus) => boolean) =>
  approveUntil(client, handle, until, 180_000);

describe('a retry after a failure past the gate', () => {
  it('the CRD step refused after the approval: the cluster fails, the upgrade pauses; retry finishes it with one helm upgrade', async () => {
    await freezeCrd();
    const request = await buildRequest({ version: '0.19.2', fleet: stack.fleetFile, onFailure: 'pause' });
    request.tuning = { retryInitialInterval: '1s', retryMaximumAttempts: 2, approvalReminder: '10s' };
    const { workflowId } = await startUpgrade(request, client, stack.env);
    const handle = client.workflow.getHandle(workflowId);

    const failed = await approveTill(handle, (s) => s.workers.some((w) => w.state === 'failed'));
    const cluster = failed.workers.find((w) => w.cluster === 'worker-1');
    expect(cluster?.state).toBe('failed');
    expect(JSON.stringify(cluster)).toContain('change freeze: CRDs are frozen until Monday');
    expect(failed.rollout?.paused?.by).toBe('on-failure pause');
    // Past the gate: the release is upgraded (not rolled back under pause), nothing pending, CRDs as before.
    expect(await k.release(w1(), 'skoala-init')).toMatchObject({ status: 'deployed', chart: 'skoala-init-0.19.2' });
    expect(await k.crdChartVersion(w1(), CRD)).toBe('0.18.0');
    const revisionsAtFailure = await k.revisions(w1(), 'skoala-init');

    await k.kubectl(w1(), ['delete', 'validatingadmissionpolicybinding', 'crd-freeze']);
    const retried = await retryOrSkip('retry', { cluster: 'worker-1', by: 'e2e', workflowId }, client);
    expect(retried.answer).toMatch(/worker-1/);
    await approveTill(handle, (s) => s.phase === 'done');
    const result = (await handle.result()) as UpgradeResult;
    expect(result.workers.map((w) => `${w.cluster}:${w.outcome}`)).toEqual(['worker-1:upgraded']);
    expect(await k.crdChartVersion(w1(), CRD)).toBe('0.19.2');
    // Never upgraded twice: the retry found the release at its target; no revision added, none pending.
    expect(await k.revisions(w1(), 'skoala-init')).toBe(revisionsAtFailure);
    const history = JSON.parse(await k.helm(w1(), ['history', 'skoala-init', '-n', NS, '-o', 'json'])) as {
      status: string;
      chart: string;
    }[];
    expect(history.filter((h) => h.status.startsWith('pending'))).toEqual([]);
    expect(history.filter((h) => h.chart === 'skoala-init-0.19.2')).toHaveLength(1);
  }, 400_000);
});
