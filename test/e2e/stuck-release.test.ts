/**
 * Helm's best-known failure, for real: a helm killed mid-upgrade leaves the release
 * `pending-upgrade`, and every later upgrade fails with "another operation is in progress"
 * (helm#7476). The real upgradeRelease activity must recover, upgrade once, and a retry must
 * change nothing.
 */
import { MockActivityEnvironment } from '@temporalio/testing';
import { execa } from 'execa';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createActivities } from '../../activities';
import { skoalaInitImageValues } from '../../runbook/rules';
import type { BackupRef, ClusterRef, Step } from '../../runbook/types';
import { startSandbox, type Sandbox } from '../../sandbox';

const NS = 'skoala-system';
let sb: Sandbox;
beforeAll(async () => {
  sb = await startSandbox({ workers: 1, installVersion: '0.18.0', customValues: true, log: () => {} });
});
afterAll(async () => {
  await sb?.stop();
});

describe('a release stuck pending-upgrade', () => {
  it('is rolled back to the pre-upgrade revision, then upgraded exactly once', async () => {
    const w = sb.workers[0];
    if (!w) throw new Error('no worker');
    const helm = (args: string[]) =>
      execa(sb.tools.helm, ['--kubeconfig', w.kubeconfig, '-n', NS, ...args], { env: sb.helmEnv });
    const history = async () =>
      JSON.parse((await helm(['history', 'skoala-init', '-o', 'json'])).stdout) as {
        revision: number;
        status: string;
        chart: string;
        description: string;
      }[];

    // --wait never ends here (no controllers make Deployments ready): kill helm mid-upgrade.
    const killed = execa(
      sb.tools.helm,
      [
        '--kubeconfig',
        w.kubeconfig,
        '-n',
        NS,
        'upgrade',
        'skoala-init',
        'skoala-init',
        '--repo',
        sb.chartRepo.url,
        '--version',
        '0.19.2',
        '--reuse-values',
        '--wait',
        '--timeout',
        '5m',
      ],
      {
        env: sb.helmEnv,
        reject: false,
      }
    );
    for (let i = 0; i < 100 && (await history()).at(-1)?.status !== 'pending-upgrade'; i++)
      await new Promise((r) => setTimeout(r, 200));
    killed.kill('SIGKILL');
    await killed;
    expect((await history()).at(-1)).toMatchObject({ revision: 2, status: 'pending-upgrade' });
    const blocked = await helm([
      'upgrade',
      'skoala-init',
      'skoala-init',
      '--repo',
      sb.chartRepo.url,
      '--version',
      '0.19.2',
    ]).catch((e: { stderr: string }) => e.stderr);
    expect(blocked).toContain('another operation (install/upgrade/rollback) is in progress');

    const workDir = path.join(sb.dir, 'work');
    await mkdir(workDir, { recursive: true });
    const acts = createActivities({
      helm: sb.tools.helm,
      kubectl: sb.tools.kubectl,
      env: { ...process.env, ...sb.helmEnv },
      backupDir: path.join(sb.dir, 'backups'),
      workDir,
    });
    const env = new MockActivityEnvironment();
    const cluster: ClusterRef = { name: w.name, kubeconfig: w.kubeconfig, context: w.context, namespace: NS };
    const backup: BackupRef = await env.run(acts.backupValues, {
      upgradeId: 'stuck',
      cluster,
      release: 'skoala-init' as const,
      revision: 1,
    });
    const step: Step & { kind: 'upgradeRelease' } = {
      kind: 'upgradeRelease',
      release: 'skoala-init',
      chart: 'skoala-init',
      repo: { name: 'skoala', url: sb.chartRepo.url },
      version: '0.19.2',
      set: skoalaInitImageValues('0.19.2'),
      useBackup: true,
      valuesFiles: [],
      fromRevision: 1,
    };
    expect(await env.run(acts.upgradeRelease, { cluster, step, backup })).toEqual({ revision: 4, alreadyDone: false });
    const after = await history();
    expect(after.map((h) => [h.revision, h.chart])).toEqual([
      [1, 'skoala-init-0.18.0'],
      [2, 'skoala-init-0.19.2'],
      [3, 'skoala-init-0.18.0'],
      [4, 'skoala-init-0.19.2'],
    ]);
    expect(after[2]?.description).toBe('Rollback to 1');
    expect(after[3]?.status).toBe('deployed');
    expect(JSON.parse((await helm(['get', 'values', 'skoala-init', '-o', 'json'])).stdout)).toMatchObject({
      custom: { marker: w.name },
    });

    // A retry of the same activity (e.g. after a worker crash) finds it done and changes nothing.
    expect(await env.run(acts.upgradeRelease, { cluster, step, backup })).toEqual({ revision: 4, alreadyDone: true });
    expect(await history()).toHaveLength(4);
  });
});
