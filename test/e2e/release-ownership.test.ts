/**
 * Never touch a release that is not ours, for real (sandbox clusters, real helm): another helm
 * holding a release pending, a release that was `failed` before we started, a missing release
 * (no silent fresh install), and our own helm killed mid-upgrade (helm#7476), which the real
 * activities wait for, roll back and upgrade exactly once.
 */
import { type ApplicationFailure } from '@temporalio/common';
import { execa, type ResultPromise } from 'execa';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createActivities } from '../../activities';
import { OWNER_LABEL, ownerLabelValue } from '../../activities/releases';
import { ADMISSION_JOBS, skoalaInitImageValues } from '../../runbook/rules';
import type { BackupRef, ClusterRef, Step } from '../../runbook/types';
import { startSandbox, writeFleetFile, type Sandbox, type SandboxCluster } from '../../sandbox';
import { realActivityEnv } from '../helpers/activity-env';

const NS = 'skoala-system';
const UPGRADE_ID = 'skoala-upgrade-sandbox-0.19.2';
let sb: Sandbox;
let fleet: string;
beforeAll(async () => {
  sb = await startSandbox({ workers: 3, installVersion: '0.18.0', customValues: true, log: () => {} });
  fleet = await writeFleetFile(sb, path.join(sb.dir, 'fleet.yaml'));
});
afterAll(async () => {
  await sb?.stop();
});

const worker = (i: number): SandboxCluster => {
  const w = sb.workers[i];
  if (!w) throw new Error(`no worker ${i}`);
  return w;
};
const helm = (w: SandboxCluster, args: string[]) =>
  execa(sb.tools.helm, ['--kubeconfig', w.kubeconfig, '-n', NS, ...args], { env: sb.helmEnv });
const history = async (w: SandboxCluster) =>
  JSON.parse((await helm(w, ['history', 'skoala-init', '-o', 'json'])).stdout) as {
    revision: number;
    status: string;
    chart: string;
    description: string;
  }[];
const upgradeTo019 = () => ['upgrade', 'skoala-init', 'skoala-init', '--repo', sb.chartRepo.url, '--version', '0.19.2'];

/** A helm upgrade that never ends by itself here (--wait: no controller makes Deployments ready). */
function hangingUpgrade(w: SandboxCluster, extra: string[] = []): ResultPromise {
  return execa(
    sb.tools.helm,
    [
      '--kubeconfig',
      w.kubeconfig,
      '-n',
      NS,
      ...upgradeTo019(),
      '--reuse-values',
      '--wait',
      '--timeout',
      '5m',
      ...extra,
    ],
    { env: sb.helmEnv, reject: false }
  );
}

async function untilPending(w: SandboxCluster): Promise<void> {
  for (let i = 0; i < 150 && (await history(w)).at(-1)?.status !== 'pending-upgrade'; i++)
    await new Promise((r) => setTimeout(r, 200));
  expect((await history(w)).at(-1)?.status).toBe('pending-upgrade');
}

function cli(args: string[]) {
  return execa(process.execPath, ['--import', 'tsx', 'scripts/cli.ts', ...args], {
    reject: false,
    env: {
      ...sb.helmEnv,
      SKOALA_HELM: sb.tools.helm,
      SKOALA_KUBECTL: sb.tools.kubectl,
      TEMPORAL_ADDRESS: '127.0.0.1:1',
    },
  });
}

async function activities(pendingGraceMs = 10 * 60_000) {
  const workDir = path.join(sb.dir, 'work');
  await mkdir(workDir, { recursive: true });
  return createActivities({
    helm: sb.tools.helm,
    kubectl: sb.tools.kubectl,
    env: { ...process.env, ...sb.helmEnv },
    backupDir: path.join(sb.dir, 'backups'),
    workDir,
    pendingGraceMs,
  });
}

const ref = (w: SandboxCluster): ClusterRef => ({
  name: w.name,
  kubeconfig: w.kubeconfig,
  context: w.context,
  namespace: NS,
});
const step = (): Step & { kind: 'upgradeRelease' } => ({
  kind: 'upgradeRelease',
  release: 'skoala-init',
  chart: 'skoala-init',
  repo: { name: 'skoala', url: sb.chartRepo.url },
  version: '0.19.2',
  set: skoalaInitImageValues('0.19.2'),
  useBackup: true,
  valuesFiles: [],
  fromRevision: 1,
});
const failureOf = (p: Promise<unknown>) =>
  p.then(
    () => undefined,
    (e: unknown) => e as ApplicationFailure
  );

describe.sequential('releases that are not ours', () => {
  let foreign: ResultPromise;

  it('preflight refuses a release another helm holds pending and one that failed before we started, naming the history line', async () => {
    foreign = hangingUpgrade(worker(0));
    await untilPending(worker(0));
    // A release left `failed` by someone's earlier attempt (--wait times out here, for real).
    const failed = await helm(worker(1), [...upgradeTo019(), '--wait', '--timeout', '2s']).catch(
      (e: { stderr: string }) => e.stderr
    );
    expect(String(failed)).toContain('UPGRADE FAILED');
    const before = await Promise.all([history(worker(0)), history(worker(1))]);

    const run = await cli(['plan', '--version', '0.19.2', '--fleet', fleet]);
    expect(run.exitCode).toBe(2);
    const lines = run.stderr.split('\n').filter(Boolean);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(
      /worker-1: skoala-init is pending-upgrade and not by this upgrade \(helm history: revision 2 \(pending-upgrade, skoala-init-0\.19\.2, [^)]+\): Preparing upgrade\); finish or roll it back first/
    );
    expect(lines[0]).toMatch(
      /worker-2: skoala-init is failed and not by this upgrade \(helm history: revision 2 \(failed, skoala-init-0\.19\.2, [^)]+\): Upgrade "skoala-init" failed: [^)]*\)/
    );
    expect(await Promise.all([history(worker(0)), history(worker(1))])).toEqual(before);
  });

  it('upgradeRelease waits (ReleaseLocked, retryable) while another helm holds the release, changing nothing', async () => {
    const acts = await activities(0); // even with no grace: a revision that is not ours is never rolled back
    const env = realActivityEnv();
    const err = await failureOf(
      env.run(acts.upgradeRelease, { upgradeId: UPGRADE_ID, cluster: ref(worker(0)), step: step() })
    );
    expect(err).toMatchObject({ type: 'ReleaseLocked', nonRetryable: false });
    expect(err?.message).toMatch(
      /^skoala-init on worker-1 is held by another helm operation \(revision 2 \(pending-upgrade/
    );
    expect((await history(worker(0))).map((h) => h.status)).toEqual(['deployed', 'pending-upgrade']);
    foreign.kill('SIGKILL');
    await foreign;
  });

  it('a missing release is refused unless --allow-install, and then planned as an install', async () => {
    await helm(worker(1), ['uninstall', 'skoala-init']);
    const refused = await cli(['plan', '--version', '0.19.2', '--fleet', fleet]);
    expect(refused.exitCode).toBe(2);
    expect(refused.stderr).toContain(
      'worker-2: skoala-init is not installed; pass --allow-install to install it instead of upgrading'
    );

    await helm(worker(0), ['rollback', 'skoala-init', '1']); // the foreign pending one, cleaned up by its owner
    const allowed = await cli(['plan', '--version', '0.19.2', '--fleet', fleet, '--allow-install']);
    expect(allowed.exitCode, allowed.stderr).toBe(0);
    expect(allowed.stdout).toContain('note: fresh install on worker-2 (--allow-install)');
    const w2 = allowed.stdout.slice(allowed.stdout.indexOf('worker-2 (worker'));
    expect(w2).toMatch(/^worker-2 \(worker, skoala-init not installed -> 0\.19\.2\):/);
    expect(w2.slice(0, w2.indexOf('worker-3'))).not.toContain('get values');
  });
});

describe('our own helm killed mid-upgrade', () => {
  it('is waited for while it may still run, then rolled back (its own activity) and upgraded exactly once', async () => {
    const w = worker(2);
    // The product's own marks: this pending revision is ours.
    const killed = hangingUpgrade(w, [
      '--description',
      `skoala-upgrade ${UPGRADE_ID}`,
      '--labels',
      `${OWNER_LABEL}=${ownerLabelValue(UPGRADE_ID, 2)}`,
    ]);
    await untilPending(w);
    killed.kill('SIGKILL');
    await killed;
    const blocked = await helm(w, [...upgradeTo019()]).catch((e: { stderr: string }) => e.stderr);
    expect(blocked).toContain('another operation (install/upgrade/rollback) is in progress');

    // Long enough to be seen young on a loaded 2-core machine, short enough to wait out below.
    const graceMs = 8_000;
    const acts = await activities(graceMs);
    const env = realActivityEnv();
    const cluster = ref(w);
    const backup: BackupRef = await env.run(acts.backupValues, {
      upgradeId: UPGRADE_ID,
      cluster,
      release: 'skoala-init' as const,
      revision: 1,
    });
    const input = { upgradeId: UPGRADE_ID, cluster, step: step(), backup };
    // Young: its helm may still be running, so wait (retryable), never roll back under it.
    const young = await failureOf(env.run(acts.upgradeRelease, input));
    expect(young).toMatchObject({ type: 'ReleaseLocked', nonRetryable: false });
    expect(young?.message).toContain('our earlier helm may still be running');
    await new Promise((r) => setTimeout(r, graceMs));
    // Old enough: the workflow is asked to roll it back first.
    const old = await failureOf(env.run(acts.upgradeRelease, input));
    expect(old).toMatchObject({ type: 'PendingRollbackNeeded', nonRetryable: true });
    expect(
      await env.run(acts.rollbackRelease, {
        upgradeId: UPGRADE_ID,
        cluster,
        release: 'skoala-init' as const,
        revision: 1,
      })
    ).toEqual({
      rolledBack: true,
    });
    expect(await env.run(acts.upgradeRelease, input)).toEqual({ revision: 4, alreadyDone: false });
    const after = await history(w);
    expect(after.map((h) => [h.revision, h.chart, h.status])).toEqual([
      [1, 'skoala-init-0.18.0', 'superseded'],
      [2, 'skoala-init-0.19.2', 'pending-upgrade'], // helm rollback does not mark it superseded
      [3, 'skoala-init-0.18.0', 'superseded'],
      [4, 'skoala-init-0.19.2', 'deployed'],
    ]);
    expect(after[2]?.description).toBe('Rollback to 1');
    expect(after[3]?.description).toBe(`skoala-upgrade ${UPGRADE_ID}`);
    expect(JSON.parse((await helm(w, ['get', 'values', 'skoala-init', '-o', 'json'])).stdout)).toMatchObject({
      custom: { marker: w.name },
    });

    // A retry (e.g. after a worker crash) finds our revision deployed and changes nothing; a second
    // rollback request does nothing either.
    expect(await env.run(acts.upgradeRelease, input)).toEqual({ revision: 4, alreadyDone: true });
    expect(
      await env.run(acts.rollbackRelease, {
        upgradeId: UPGRADE_ID,
        cluster,
        release: 'skoala-init' as const,
        revision: 1,
      })
    ).toEqual({
      rolledBack: false,
    });
    expect(await history(w)).toHaveLength(4);
  });
});

describe('our own rollback, failed and then interrupted (real helm)', () => {
  it('stays ours: a failed helm rollback is retried, a killed one is rolled back and the upgrade done once', async () => {
    const w = worker(2);
    const cluster = ref(w);
    const U2 = 'skoala-upgrade-sandbox-0.28.1';
    // Someone's ordinary upgrade to a version with the admission Jobs: the base of our upgrade.
    await helm(w, [
      'upgrade',
      'skoala-init',
      'skoala-init',
      '--repo',
      sb.chartRepo.url,
      '--version',
      '0.27.2',
      '--reuse-values',
    ]);
    const base = (await history(w)).at(-1)?.revision ?? 0;
    // A pending revision with no lease is "young" for 6 s here: long enough to be seen young on a
    // loaded machine (2 s was not, in a CI run), short enough to wait out below.
    const acts = await activities(6_000);
    const env = realActivityEnv();
    const jobs = { cluster, jobs: ADMISSION_JOBS };
    await env.run(acts.deleteAdmissionJobs, jobs);
    const backup: BackupRef = await env.run(acts.backupValues, {
      upgradeId: U2,
      cluster,
      release: 'skoala-init' as const,
      revision: base,
    });
    const input = {
      upgradeId: U2,
      cluster,
      step: { ...step(), version: '0.28.1', set: skoalaInitImageValues('0.28.1'), fromRevision: base },
      backup,
    };
    const first = await env.run(acts.upgradeRelease, input);
    expect(first).toEqual({ revision: base + 1, alreadyDone: false });

    // The rollback with the 0.28.1 Jobs still there: their pod template cannot change, so helm
    // itself fails and records a `failed` revision of its own words.
    const rollback = { upgradeId: U2, cluster, release: 'skoala-init' as const, revision: base };
    const failed = await failureOf(env.run(acts.rollbackToRevision, rollback));
    expect(failed?.message).toContain('Job.batch "gateway-api-admission" is invalid');
    expect((await history(w)).at(-1)).toMatchObject({
      revision: base + 2,
      status: 'failed',
      description: expect.stringMatching(
        /^Rollback "skoala-init" failed: .*Job\.batch "gateway-api-admission" is invalid/
      ) as unknown as string,
    });
    // The retry (and `npm run rollback`) takes it as ours, not someone else's revision.
    await env.run(acts.deleteAdmissionJobs, jobs);
    expect(await env.run(acts.rollbackToRevision, rollback)).toEqual({ rolledBack: true });
    expect((await history(w)).at(-1)).toMatchObject({ status: 'deployed', description: `Rollback to ${base}` });

    // Upgraded again, then a helm rollback of ours killed mid-way (--wait: nothing makes the
    // Deployments ready here) leaves `pending-rollback` "Rollback to BASE" with the base's labels.
    await env.run(acts.deleteAdmissionJobs, jobs);
    const second = await env.run(acts.upgradeRelease, input);
    expect(second).toEqual({ revision: base + 4, alreadyDone: false });
    await env.run(acts.deleteAdmissionJobs, jobs);
    const killed = execa(
      sb.tools.helm,
      ['--kubeconfig', w.kubeconfig, '-n', NS, 'rollback', 'skoala-init', String(base), '--wait', '--timeout', '5m'],
      { env: sb.helmEnv, reject: false }
    );
    for (let i = 0; i < 150 && (await history(w)).at(-1)?.status !== 'pending-rollback'; i++)
      await new Promise((r) => setTimeout(r, 200));
    killed.kill('SIGKILL');
    await killed;
    expect((await history(w)).at(-1)).toMatchObject({ status: 'pending-rollback', description: `Rollback to ${base}` });

    // Ours: waited for while young, then the workflow is asked to roll it back, and upgrades once.
    const young = await failureOf(env.run(acts.upgradeRelease, input));
    expect(young).toMatchObject({ type: 'ReleaseLocked', nonRetryable: false });
    expect(young?.message).toContain('our earlier helm may still be running');
    await new Promise((r) => setTimeout(r, 6_000));
    expect(await failureOf(env.run(acts.upgradeRelease, input))).toMatchObject({ type: 'PendingRollbackNeeded' });
    // As run-steps.ts asks: the admission Jobs deleted right before each helm (the rollback brings the old ones back).
    expect(await env.run(acts.rollbackRelease, { ...rollback, deleteJobs: ADMISSION_JOBS })).toEqual({
      rolledBack: true,
    });
    expect(await env.run(acts.upgradeRelease, { ...input, deleteJobs: ADMISSION_JOBS })).toEqual({
      revision: base + 7,
      alreadyDone: false,
    });
    const after = (await history(w)).filter((h) => h.revision > base);
    expect(after.map((h) => [h.status, h.chart])).toEqual([
      ['superseded', 'skoala-init-0.28.1'],
      ['failed', 'skoala-init-0.27.2'],
      ['superseded', 'skoala-init-0.27.2'],
      ['superseded', 'skoala-init-0.28.1'],
      ['pending-rollback', 'skoala-init-0.27.2'], // helm rollback does not mark it superseded
      ['superseded', 'skoala-init-0.27.2'],
      ['deployed', 'skoala-init-0.28.1'],
    ]);
    // A retry after all that changes nothing.
    expect(await env.run(acts.upgradeRelease, input)).toEqual({ revision: base + 7, alreadyDone: true });
  });
});
