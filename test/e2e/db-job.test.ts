/**
 * The DB-migration Job is this upgrade's: against a real kube-apiserver (sandbox control plane, Job
 * stand-in for the missing Job controller), the real runDbMigrationJob activity replaces a
 * Complete Job left by an earlier upgrade instead of taking it for its own, does not replace its
 * own Job on a retry, and refuses to touch a Job of another upgrade that is still running.
 */
import { ApplicationFailure } from '@temporalio/common';
import { execa } from 'execa';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { parse, stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createActivities } from '../../activities';
import { UPGRADE_ID_ANNOTATION, UPGRADE_LABEL } from '../../activities/db-migration-job';
import type { ClusterRef } from '../../runbook/types';
import { DB_MIGRATION_JOB, startJobStandIn, startSandbox, type Sandbox } from '../../sandbox';
import { realActivityEnv } from '../helpers/activity-env';

const NS = 'skoala-system';
const JOB = 'skoala-db-upgrade';

interface LiveJob {
  metadata: { uid: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  status?: { conditions?: { type: string; status: string }[] };
}

let sb: Sandbox;

/** The real activities on the sandbox's control plane, with scratch in `workDir`. */
async function activitiesIn(workDir: string, jobPollMs: number) {
  await mkdir(workDir, { recursive: true });
  return createActivities({
    helm: sb.tools.helm,
    kubectl: sb.tools.kubectl,
    env: { ...process.env, ...sb.helmEnv },
    backupDir: path.join(sb.dir, 'backups'),
    workDir,
    jobPollMs,
  });
}
beforeAll(async () => {
  // Nothing installed: only the control plane's API is needed.
  sb = await startSandbox({ workers: 0, log: () => {} });
});
afterAll(async () => {
  await sb?.stop();
});

describe('the DB-migration Job of an earlier upgrade', () => {
  it('is replaced when finished, kept on a retry, and a running one of another upgrade is refused', async () => {
    const cp = sb.controlPlane;
    const kubectl = async (args: string[]) =>
      (await execa(sb.tools.kubectl, ['--kubeconfig', cp.kubeconfig, '--context', cp.context, ...args])).stdout;
    const liveJob = async () => JSON.parse(await kubectl(['get', 'job', JOB, '-n', NS, '-o', 'json'])) as LiveJob;
    const complete = (j: LiveJob) => j.status?.conditions?.some((c) => c.type === 'Complete' && c.status === 'True');
    await kubectl(['create', 'namespace', NS]);

    const workDir = path.join(sb.dir, 'work');
    const acts = await activitiesIn(workDir, 200);
    const env = realActivityEnv();
    const cluster: ClusterRef = { name: cp.name, kubeconfig: cp.kubeconfig, context: cp.context, namespace: NS };
    const input = { upgradeId: 'upgrade-b', cluster, manifest: DB_MIGRATION_JOB };

    const standIn = startJobStandIn({
      kubectl: sb.tools.kubectl,
      kubeconfig: cp.kubeconfig,
      namespace: NS,
      intervalMs: 200,
    });
    try {
      // An earlier upgrade's Job, applied as it used to be (no upgrade label), and run to Complete.
      await kubectl(['apply', '-n', NS, '-f', DB_MIGRATION_JOB]);
      await kubectl(['wait', '-n', NS, '--for=condition=complete', `job/${JOB}`, '--timeout=30s']);
      const earlier = await liveJob();

      expect(await env.run(acts.runDbMigrationJob, input)).toEqual({ job: `job.batch/${JOB}`, replaced: JOB });
      const ours = await liveJob();
      expect(ours.metadata.uid).not.toBe(earlier.metadata.uid);
      expect(ours.metadata.labels?.[UPGRADE_LABEL]).toBe('upgrade-b');
      expect(ours.metadata.annotations?.[UPGRADE_ID_ANNOTATION]).toBe('upgrade-b');
      expect(complete(ours)).toBe(true);
      // The labelled copy was scratch: nothing left in workDir.
      expect(await execa('find', [workDir, '-mindepth', '1']).then((r) => r.stdout)).toBe('');

      // A retry of the same activity (e.g. after a worker crash): the same Job, not replaced again.
      expect(await env.run(acts.runDbMigrationJob, input)).toEqual({ job: `job.batch/${JOB}` });
      expect((await liveJob()).metadata.uid).toBe(ours.metadata.uid);
    } finally {
      await standIn.stop();
    }

    // With the stand-in stopped nothing finishes a Job: one of upgrade-a stays active.
    await kubectl(['delete', 'job', JOB, '-n', NS, '--cascade=background']);
    const foreign = parse(await readFile(DB_MIGRATION_JOB, 'utf8')) as {
      metadata: { labels: Record<string, string>; annotations?: Record<string, string> };
    };
    foreign.metadata.labels[UPGRADE_LABEL] = 'upgrade-a';
    foreign.metadata.annotations = { [UPGRADE_ID_ANNOTATION]: 'upgrade-a' };
    const foreignFile = path.join(sb.dir, 'job-upgrade-a.yaml');
    await writeFile(foreignFile, stringify(foreign));
    await kubectl(['apply', '-n', NS, '-f', foreignFile]);
    const running = await liveJob();
    expect(complete(running)).toBeFalsy();

    const err = await env.run(acts.runDbMigrationJob, input).then(
      () => undefined,
      (e: unknown) => e
    );
    expect(err).toBeInstanceOf(ApplicationFailure);
    expect(err).toMatchObject({ type: 'DbMigrationJobBusy', nonRetryable: true });
    expect((err as ApplicationFailure).message).toContain(
      `kubectl --kubeconfig ${cp.kubeconfig} --context ${cp.context} -n ${NS} delete job ${JOB}`
    );
    expect((err as ApplicationFailure).message).toContain(`delete job ${JOB}`);
    // Left as it was.
    const after = await liveJob();
    expect(after.metadata.uid).toBe(running.metadata.uid);
    expect(after.metadata.annotations?.[UPGRADE_ID_ANNOTATION]).toBe('upgrade-a');
  });

  it('is watched, not polled: with a 2-minute poll the activity still ends when the Job completes', async () => {
    const cp = sb.controlPlane;
    const ns = 'watched';
    await execa(sb.tools.kubectl, ['--kubeconfig', cp.kubeconfig, '--context', cp.context, 'create', 'namespace', ns]);
    // A sleep between reads would outlast this test's 60 s timeout; kubectl wait ends at Complete.
    const acts = await activitiesIn(path.join(sb.dir, 'work-watched'), 120_000);
    const standIn = startJobStandIn({
      kubectl: sb.tools.kubectl,
      kubeconfig: cp.kubeconfig,
      namespace: ns,
      intervalMs: 500,
    });
    try {
      const cluster: ClusterRef = { name: cp.name, kubeconfig: cp.kubeconfig, context: cp.context, namespace: ns };
      const input = { upgradeId: 'upgrade-w', cluster, manifest: DB_MIGRATION_JOB };
      // A real attempt's timeout: the mock's default (1 s) would cut kubectl wait short.
      const attempt = realActivityEnv();
      expect(await attempt.run(acts.runDbMigrationJob, input)).toEqual({
        job: `job.batch/${JOB}`,
      });
    } finally {
      await standIn.stop();
    }
  }, 60_000);
});
