/**
 * What a worker's CRD gate shows the approver: the CRD step's preview (server-side dry run) and its
 * digest, and what the release upgrade changed on the cluster. Read by activities; a failure of
 * either never holds the gate, it is said instead.
 */
import { isCancellation } from '@temporalio/workflow';
import { digestOf } from '../runbook/digest';
import type { ClusterPlan } from '../runbook/types';
import type { Proxies } from './activities';
import { errorMessage } from './errors';

export interface Preview {
  text: string;
  digest?: string;
  /** The dry run did not complete (e.g. the API server is down): nothing was seen to change. */
  failed?: true;
}

/**
 * What the CRD step would do (server-side dry run, without taking fields from other managers) and
 * its digest. A preview that fails does not hold the gate: the approver is told it is missing, and
 * the digest then names the step as planned.
 */
export async function previewCrdStep(plan: ClusterPlan, acts: Proxies): Promise<Preview> {
  const step = plan.steps.find((s) => s.kind === 'reapplyCrds');
  if (step?.kind !== 'reapplyCrds') return { text: '' };
  try {
    const { summary, digest } = await acts.quick.previewCrdChanges.executeWithOptions(
      {
        ...acts.options.quick,
        ...(plan.cluster.taskQueue ? { taskQueue: plan.cluster.taskQueue } : {}),
        retry: { ...acts.options.quick.retry, maximumAttempts: 2 },
        summary: `preview the CRD step on ${plan.cluster.name}`,
      },
      [{ cluster: plan.cluster, step }]
    );
    // `digest` is absent in histories recorded before approvals were bound to it: those stay unbound.
    return { text: `CRD preview: ${summary.text}`, ...(digest ? { digest } : {}) };
  } catch (err) {
    if (isCancellation(err)) throw err;
    const { repo, ...what } = step;
    return {
      text: `CRD preview failed (decide without it, or reject): ${errorMessage(err)}`,
      digest: digestOf({ step: { ...what, repo: repo.url }, previewFailed: true }),
      failed: true,
    };
  }
}

/**
 * What the release upgrade changed on this cluster (the revision it started from against now), in
 * compact redacted lines. Like the preview, a failure does not hold the gate: it says so instead.
 */
export async function releaseChanges(plan: ClusterPlan, acts: Proxies): Promise<string[] | undefined> {
  const step = plan.steps.find((s) => s.kind === 'upgradeRelease');
  if (step?.kind !== 'upgradeRelease' || step.fromRevision === undefined) return undefined;
  try {
    return await acts.quick.releaseChangeLines.executeWithOptions(
      {
        ...acts.options.quick,
        ...(plan.cluster.taskQueue ? { taskQueue: plan.cluster.taskQueue } : {}),
        retry: { ...acts.options.quick.retry, maximumAttempts: 2 },
        summary: `what the upgrade changed on ${plan.cluster.name}`,
      },
      [
        {
          cluster: plan.cluster,
          release: step.release,
          fromRevision: step.fromRevision,
          ...(plan.from ? { from: plan.from } : {}),
          to: plan.to,
        },
      ]
    );
  } catch (err) {
    if (isCancellation(err)) throw err;
    return [`could not read what the upgrade changed: ${errorMessage(err)}`];
  }
}
