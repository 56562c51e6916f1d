/**
 * The worker as a site runs it. Its container image is built here from ../Dockerfile (podman, a
 * Debian base made from package registries: sandbox/worker-image.ts) and drives real upgrades:
 *  - as a container (podman, host network: the sandbox listens on loopback), the CLI on the host;
 *  - as a Deployment in a real-node cluster, installed with the project's chart (deploy/chart), the
 *    CLI run in its pod with `kubectl exec`, as the chart's notes say.
 * No worker of the test process runs: every activity below ran in the image. The outcome is read
 * from the clusters (release versions, backups on disk) and the pod's own state.
 */
import type { Client } from '@temporalio/client';
import { execa } from 'execa';
import { chown, copyFile, mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { parse, stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildRequest } from '../../scripts/commands/plan';
import { startUpgrade } from '../../scripts/commands/start-upgrade';
import { startLocalStack, type LocalStack } from '../../scripts/lib/local-stack';
import type { UpgradeResult } from '../../runbook/types';
import { freePort } from '../../sandbox/procs';
import { buildWorkerImage, podman, podmanEnv, WORKER_IMAGE_REPO } from '../../sandbox/worker-image';
import { ROOT } from '../helpers/worker-process';
import { approveUntil } from './approve-until';
import { kube, NS } from './kube';

/** The image's user (the Dockerfile's `node`). */
const UID = 1000;
const CONTAINER = `skoala-worker-e2e-${process.pid}`;
const WORKER_NS = 'skoala-upgrade';

let stack: LocalStack;
let client: Client;
let k: ReturnType<typeof kube>;
let image: string;

beforeAll(async () => {
  // The image build (nothing when it exists) beside the sandbox start.
  [image, stack] = await Promise.all([
    buildWorkerImage({ log: () => {} }),
    startLocalStack({ workers: 1, installVersion: '0.18.0', realNodes: true, log: () => {} }),
  ]);
  client = stack.temporal.client;
  k = kube(stack);
}, 900_000);
afterAll(async () => {
  await execa('podman', ['rm', '-f', '-t', '0', CONTAINER], { env: await podmanEnv(), reject: false });
  await stack?.stop();
});

const cp = () => stack.sandbox.controlPlane;
const w1 = () => stack.sandbox.workers[0] as (typeof stack.sandbox.workers)[0];

/**
 * The site's files as a site keeps them: the fleet file and every file it names, in one folder
 * owned by the worker's user, the fleet file naming them under `prefix` (where the worker sees them).
 */
async function siteFiles(dir: string, prefix: string): Promise<string> {
  const fleet = parse(await readFile(stack.fleetFile, 'utf8')) as {
    controlPlane: { name: string; kubeconfig: string };
    workers: { name: string; kubeconfig: string }[];
    dbMigrationJob?: string;
  };
  await mkdir(dir, { recursive: true });
  for (const c of [fleet.controlPlane, ...fleet.workers]) {
    await copyFile(c.kubeconfig, path.join(dir, `${c.name}.kubeconfig`));
    c.kubeconfig = `${prefix}/${c.name}.kubeconfig`;
  }
  if (fleet.dbMigrationJob) {
    await copyFile(path.resolve(path.dirname(stack.fleetFile), fleet.dbMigrationJob), path.join(dir, 'db-job.yaml'));
    fleet.dbMigrationJob = `${prefix}/db-job.yaml`;
  }
  await writeFile(path.join(dir, 'fleet.yaml'), stringify(fleet));
  await execa('chown', ['-R', `${UID}:${UID}`, dir]);
  return path.join(dir, 'fleet.yaml');
}

/** A folder on this host the image's user owns, owner-only (as values backups need). */
async function ownedDir(dir: string): Promise<string> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  await chown(dir, UID, UID);
  return dir;
}

/** Every file under dir, relative. */
async function filesUnder(dir: string): Promise<string[]> {
  return (await execa('find', [dir, '-type', 'f', '-printf', '%P\n'])).stdout.split('\n').filter(Boolean);
}

async function approveUntilDone(workflowId: string): Promise<UpgradeResult> {
  const handle = client.workflow.getHandle(workflowId);
  await approveUntil(client, handle, undefined, 300_000);
  return (await handle.result()) as UpgradeResult;
}

describe.sequential('the worker image', { timeout: 600_000 }, () => {
  it('runs as a non-root user with helm 3.18 and kubectl 1.33 inside', async () => {
    expect(image.startsWith(`${WORKER_IMAGE_REPO}:`)).toBe(true);
    const out = await podman([
      'run',
      '--rm',
      image,
      'sh',
      '-c',
      'id -u; "$SKOALA_HELM" version --short; "$SKOALA_KUBECTL" version --client; stat -c %a /var/lib/skoala-upgrade/backups',
    ]);
    const [uid, helm, kubectl, , backupsMode] = out.split('\n');
    expect(uid).toBe(String(UID));
    expect(helm).toMatch(/^v3\.18\./);
    expect(kubectl).toMatch(/^Client Version: v1\.33\./);
    expect(backupsMode).toBe('700');
  });

  it('as a container: drives 0.18.0 -> 0.19.2 on the sandbox, backups in its volume, stops cleanly on SIGTERM', async () => {
    const site = path.join(stack.sandbox.dir, 'site-container');
    const fleet = await siteFiles(site, site);
    const backups = await ownedDir(path.join(stack.sandbox.dir, 'container-backups'));
    await podman([
      'run',
      '--detach',
      '--name',
      CONTAINER,
      '--network',
      'host',
      '--env',
      `TEMPORAL_ADDRESS=${stack.temporal.address}`,
      '--env',
      `SKOALA_TASK_QUEUE=${stack.taskQueue}`,
      '--volume',
      `${site}:${site}:ro`,
      '--volume',
      `${backups}:/var/lib/skoala-upgrade/backups`,
      image,
    ]);
    const logs = () => podman(['logs', CONTAINER]).catch((e: Error) => e.message);
    for (let i = 0; i < 120 && !(await logs()).includes('worker polling task queue'); i++)
      await new Promise((r) => setTimeout(r, 500));
    expect(await logs()).toContain(`worker polling task queue ${stack.taskQueue}`);

    const request = await buildRequest({ version: '0.19.2', fleet });
    request.tuning = { retryInitialInterval: '1s', retryMaximumAttempts: 3, approvalReminder: '10s' };
    const { workflowId } = await startUpgrade(request, client, stack.env);
    const result = await approveUntilDone(workflowId);
    expect(result.workers.map((x) => `${x.cluster}:${x.outcome}`)).toEqual(['worker-1:upgraded']);
    expect(await k.release(cp(), 'skoala')).toMatchObject({ status: 'deployed', chart: 'skoala-0.19.2' });
    expect(await k.release(w1(), 'skoala-init')).toMatchObject({ status: 'deployed', chart: 'skoala-init-0.19.2' });
    // The values backups were written by the container, into its volume.
    const saved = await filesUnder(backups);
    expect(saved.some((f) => f.includes('/control-plane/skoala-revision-'))).toBe(true);
    expect(saved.some((f) => f.includes('/worker-1/skoala-init-revision-'))).toBe(true);

    await podman(['stop', '--time', '30', CONTAINER]);
    const exit = await podman(['inspect', '--format', '{{.State.ExitCode}}', CONTAINER]);
    expect(exit, await logs()).toBe('0');
    await podman(['rm', CONTAINER]);
  });

  it('as a Deployment from deploy/chart in a real-node cluster: ready, and drives 0.19.2 -> 0.28.1 from its pod', async () => {
    // The image reaches the control plane's node the way an air-gapped site loads one.
    const archive = path.join(stack.sandbox.dir, 'worker-image.tar');
    await podman(['save', '--format', 'oci-archive', '--output', archive, image]);
    const node = stack.sandbox.nodes.find((n) => n.name === cp().name);
    if (!node) throw new Error('no real node for the control plane');
    await node.loadImage(archive);

    const site = path.join(stack.sandbox.dir, 'site-chart');
    await siteFiles(site, '/site');
    const backups = await ownedDir(path.join(stack.sandbox.dir, 'chart-backups'));
    await k.kubectl(cp(), ['create', 'namespace', WORKER_NS]);
    await k.kubectl(cp(), ['create', 'secret', 'generic', 'skoala-site', '-n', WORKER_NS, `--from-file=${site}`]);
    const healthPort = await freePort();
    const [repository, tag] = image.split(':') as [string, string];
    await k.helm(cp(), [
      'install',
      'worker',
      path.join(ROOT, 'deploy', 'chart'),
      '-n',
      WORKER_NS,
      '--set',
      `image.repository=${repository}`,
      '--set',
      `image.tag=${tag}`,
      '--set',
      'image.pullPolicy=Never',
      '--set',
      'hostNetwork=true',
      '--set',
      `healthPort=${healthPort}`,
      '--set',
      `temporal.address=${stack.temporal.address}`,
      '--set',
      `taskQueue=${stack.taskQueue}`,
      '--set',
      `backups.hostPath=${backups}`,
      // The sandbox's machine is small: requests it can schedule.
      '--set',
      'resources.requests.cpu=10m',
      '--set',
      'resources.requests.memory=64Mi',
      '--wait',
      '--timeout',
      '3m',
    ]);
    // Ready = its readiness probe (/readyz) saw the worker polling.
    const pod = JSON.parse(
      await k.kubectl(cp(), ['get', 'pods', '-n', WORKER_NS, '-l', 'app.kubernetes.io/instance=worker', '-o', 'json'])
    ) as { items: { status: { containerStatuses: { ready: boolean; restartCount: number; image: string }[] } }[] };
    expect(pod.items).toHaveLength(1);
    expect(pod.items[0]?.status.containerStatuses[0]).toMatchObject({ ready: true, restartCount: 0 });

    const exec = (args: string[]) =>
      k.kubectl(cp(), ['exec', '-n', WORKER_NS, 'deploy/worker', '--', 'npm', 'run', '-s', ...args]);
    const started = await exec(['start-upgrade', '--', '--fleet', '/site/fleet.yaml', '--version', '0.28.1']);
    const workflowId = /^started upgrade (\S+)$/m.exec(started)?.[1];
    if (!workflowId) throw new Error(`start-upgrade in the pod printed:\n${started}`);
    const result = await approveUntilDone(workflowId);
    expect(result.workers.map((x) => `${x.cluster}:${x.outcome}`)).toEqual(['worker-1:upgraded']);
    expect(await k.release(cp(), 'skoala')).toMatchObject({ status: 'deployed', chart: 'skoala-0.28.1' });
    expect(await k.release(w1(), 'skoala-init')).toMatchObject({ status: 'deployed', chart: 'skoala-init-0.28.1' });
    // `status` from the pod reads the finished upgrade.
    expect(await exec(['status', '--', '--workflow-id', workflowId])).toContain('0.28.1');
    // Its backups on the node's disk, owner-only.
    const saved = await filesUnder(backups);
    expect(saved.some((f) => f.includes('/control-plane/skoala-revision-'))).toBe(true);
    expect(saved.some((f) => f.includes('/worker-1/skoala-init-revision-'))).toBe(true);
    expect(((await stat(backups)).mode & 0o777).toString(8)).toBe('700');
    // The release stays in NS untouched by the worker's own: a separate namespace.
    expect(await k.kubectl(cp(), ['get', 'deploy', '-n', NS, '-o', 'name'])).not.toContain('deployment.apps/worker');

    await k.helm(cp(), ['uninstall', 'worker', '-n', WORKER_NS, '--wait', '--timeout', '2m']);
  });
});
