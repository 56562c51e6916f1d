/**
 * A real site's Harbor, end to end: charts from an HTTPS chart repository with basic auth and a
 * test CA, and from a real OCI registry (distribution, TLS + htpasswd) where the images live too.
 * The worker is its own process and reads the robot account's password from a file and its name
 * from an environment variable, as the fleet file names them. Nothing but references to those
 * secrets may reach workflow history, the worker's logs or `plan` output.
 */
import type { Client, WorkflowHandle } from '@temporalio/client';
import { execa } from 'execa';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { approve } from '../../scripts/commands/approve';
import { buildRequest } from '../../scripts/commands/plan';
import { startUpgrade } from '../../scripts/commands/start-upgrade';
import { startLocalStack, type LocalStack } from '../../scripts/lib/local-stack';
import { writeFleetFile } from '../../sandbox';
import {
  MISSING_IMAGE,
  VERSION_WITH_MISSING_IMAGE,
  startOciRegistry,
  startSecureChartRepo,
  type OciRegistry,
  type SecureChartRepo,
} from '../../sandbox/secure-registry';
import { createTestCa, type TestCa } from '../../sandbox/test-ca';
import { waitForStatus } from '../workflow/harness';
import { buildWorkflowBundle, ROOT, startWorkerProcess, type WorkerProcess } from '../helpers/worker-process';
import { historiesText, kube } from './kube';

// Distinctive, so a search that finds it can only have found the secret.
const PASSWORD = 'Harbor-r0bot-s3cret-7f3a9c';
const USER = 'robot$skoala';
const USER_VAR = 'SKOALA_E2E_HARBOR_USER';

let stack: LocalStack;
let client: Client;
let k: ReturnType<typeof kube>;
let ca: TestCa;
let otherCa: TestCa;
let httpsRepo: SecureChartRepo;
let oci: OciRegistry;
let passwordFile: string;
let wrongPasswordFile: string;
let worker: WorkerProcess;
const workflowIds: string[] = [];
/** Upgrades that reached the worker clusters (the others have no child workflows). */
const withChildren = new Set<string>();

beforeAll(async () => {
  stack = await startLocalStack({ workers: 1, installVersion: '0.18.0', log: () => {} });
  client = stack.temporal.client;
  k = kube(stack);
  const dir = path.join(stack.sandbox.dir, 'site');
  await mkdir(dir, { recursive: true });
  [ca, otherCa] = await Promise.all([createTestCa(path.join(dir, 'ca')), createTestCa(path.join(dir, 'other-ca'))]);
  passwordFile = path.join(dir, 'harbor-password');
  wrongPasswordFile = path.join(dir, 'wrong-password');
  await writeFile(passwordFile, `${PASSWORD}\n`, { mode: 0o600 });
  await writeFile(wrongPasswordFile, 'not-the-password\n', { mode: 0o600 });
  const versions = ['0.18.0', '0.19.2', VERSION_WITH_MISSING_IMAGE];
  const bundleFile = path.join(dir, 'workflow-bundle.js');
  [httpsRepo, oci] = await Promise.all([
    startSecureChartRepo({
      dir: path.join(dir, 'chart-repo'),
      helm: stack.sandbox.tools.helm,
      ca,
      username: USER,
      password: PASSWORD,
      versions,
    }),
    startOciRegistry({
      dir: path.join(dir, 'oci'),
      tools: stack.sandbox.tools,
      ca,
      username: USER,
      password: PASSWORD,
      versions,
      imageVersions: ['0.19.2', VERSION_WITH_MISSING_IMAGE],
    }),
    buildWorkflowBundle(bundleFile),
  ]);

  // The worker as a site runs it: its own process, the username in its environment.
  worker = startWorkerProcess({
    TEMPORAL_ADDRESS: stack.temporal.address,
    SKOALA_TASK_QUEUE: stack.taskQueue,
    SKOALA_HELM: stack.sandbox.tools.helm,
    SKOALA_KUBECTL: stack.sandbox.tools.kubectl,
    SKOALA_BACKUP_DIR: path.join(dir, 'backups'),
    SKOALA_WORK_DIR: path.join(dir, 'work'),
    SKOALA_WORKFLOW_BUNDLE: bundleFile,
    [USER_VAR]: USER,
    ...stack.sandbox.helmEnv,
  });
  await worker.polling;
}, 300_000);

afterAll(async () => {
  await worker?.stop();
  await Promise.all([httpsRepo?.stop(), oci?.stop()]);
  await stack?.stop();
});

const all = () => [stack.sandbox.controlPlane, ...stack.sandbox.workers];
const releaseOf = (name: string) => (name === 'control-plane' ? 'skoala' : 'skoala-init');
const chartVersions = async () => Promise.all(all().map(async (c) => (await k.release(c, releaseOf(c.name)))?.chart));
const revisions = async () => Promise.all(all().map((c) => k.revisions(c, releaseOf(c.name))));

const credentials = (password = passwordFile) => ({ username: { env: USER_VAR }, password: { file: password } });
const httpsSource = (over: Record<string, unknown> = {}) => ({
  name: 'harbor',
  url: httpsRepo.url,
  ...credentials(),
  caFile: ca.caCert,
  ...over,
});
const ociSource = (over: Record<string, unknown> = {}) => ({
  name: 'harbor-oci',
  url: oci.chartUrl,
  ...credentials(),
  caFile: ca.caCert,
  ...over,
});

/** A fleet file for this site: images from the OCI registry, checked with the same robot account. */
async function fleet(name: string, chartRepo: Record<string, unknown>): Promise<string> {
  return writeFleetFile(stack.sandbox, path.join(stack.sandbox.dir, 'site', `${name}.yaml`), {
    name,
    chartRepo,
    imageRegistry: oci.host,
    registries: [{ host: oci.host, ...credentials(), caFile: ca.caCert }],
    checkImages: true,
  });
}

async function start(fleetFile: string, version: string): Promise<WorkflowHandle> {
  const request = await buildRequest({ version, fleet: fleetFile });
  request.tuning = { retryInitialInterval: '1s', retryMaximumAttempts: 3, approvalReminder: '10s' };
  const started = await startUpgrade(request, client, stack.env);
  workflowIds.push(started.workflowId);
  return client.workflow.getHandle(started.workflowId);
}

async function upgradeThrough(fleetFile: string, version: string): Promise<void> {
  const handle = await start(fleetFile, version);
  await waitForStatus(handle, (s) => s.pendingApprovals.length === 1, 180_000);
  await approve({ all: true, by: 'e2e', workflowId: handle.workflowId }, client);
  withChildren.add(handle.workflowId);
  const result = (await handle.result()) as { counts: { upgraded: number } };
  expect(result.counts.upgraded).toBe(2);
}

/** Back to 0.18.0 with plain helm (as an operator would), so the next source upgrades from there too. */
async function rollBackByHand(): Promise<void> {
  for (const c of all()) await k.helm(c, ['rollback', releaseOf(c.name), '1', '-n', 'skoala-system']);
}

/** `npm run plan` as an operator runs it, with the site's variables; no Temporal needed. */
function planCli(fleetFile: string, version: string) {
  return execa(
    process.execPath,
    ['--import', 'tsx', 'scripts/cli.ts', 'plan', '--fleet', fleetFile, '--version', version],
    {
      cwd: ROOT,
      reject: false,
      all: true,
      env: {
        ...stack.sandbox.helmEnv,
        SKOALA_HELM: stack.sandbox.tools.helm,
        SKOALA_KUBECTL: stack.sandbox.tools.kubectl,
        TEMPORAL_ADDRESS: '127.0.0.1:1',
        [USER_VAR]: USER,
      },
    }
  );
}

describe.sequential('charts and images from a secured site registry', () => {
  it('0.18.0 -> 0.19.2 from an HTTPS chart repository with basic auth and the site CA', async () => {
    await upgradeThrough(await fleet('site-https', httpsSource()), '0.19.2');
    expect(await chartVersions()).toEqual(['skoala-0.19.2', 'skoala-init-0.19.2']);
    // The images came from the site registry (global.imageRegistry), as checked at preflight.
    expect(await k.image(stack.sandbox.controlPlane, 'hive')).toBe(`${oci.host}/skoala/hive:v0.19.2`);
  });

  it('0.18.0 -> 0.19.2 from an OCI registry with TLS and credentials (helm registry login)', async () => {
    await rollBackByHand();
    expect(await chartVersions()).toEqual(['skoala-0.18.0', 'skoala-init-0.18.0']);
    await upgradeThrough(await fleet('site-oci', ociSource()), '0.19.2');
    expect(await chartVersions()).toEqual(['skoala-0.19.2', 'skoala-init-0.19.2']);
  });

  it.each([
    ['HTTPS repository, wrong password', () => httpsSource(credentials(wrongPasswordFile)), /401/],
    ['HTTPS repository, untrusted CA', () => httpsSource({ caFile: otherCa.caCert }), /certificate|x509/],
    ['OCI registry, wrong password', () => ociSource(credentials(wrongPasswordFile)), /401|unauthorized/i],
    ['OCI registry, untrusted CA', () => ociSource({ caFile: otherCa.caCert }), /certificate|x509/],
  ])('%s: preflight fails naming the repository, nothing changes', async (_, source, cause) => {
    const before = await revisions();
    const src = source();
    const handle = await start(await fleet(`site-bad-${workflowIds.length}`, src), '0.27.2');
    const message = await handle.result().then(
      () => 'succeeded',
      (e: { cause?: Error }) => e.cause?.message ?? ''
    );
    expect(message).toMatch(/^preflight failed, nothing was changed: chart skoala: /);
    expect(message).toContain(`chart repository ${String(src.name)} (${String(src.url)})`);
    expect(message).toMatch(cause);
    expect(await revisions()).toEqual(before);
  });

  it('plan checks the images too: the missing one named for 0.27.2, exit 1, the plan still printed', async () => {
    const fleetFile = await fleet('site-missing-image', ociSource());
    const bad = await planCli(fleetFile, VERSION_WITH_MISSING_IMAGE);
    expect(bad.exitCode, bad.all).toBe(1);
    expect(bad.all).toContain(
      `images: MISSING (preflight will refuse this upgrade): ${oci.host}/${MISSING_IMAGE} (not found; needed by control-plane)`
    );
    // The plan itself is still printed.
    expect(bad.all).toMatch(/helm .*upgrade .*skoala '<chart cache>\/skoala-0\.27\.2-[0-9a-f]{64}\.tgz' -f /);
  });

  it('an image missing from the registry fails preflight with its name, before the DB Job or any upgrade', async () => {
    const before = await revisions();
    const handle = await start(await fleet('site-missing-image', ociSource()), VERSION_WITH_MISSING_IMAGE);
    const message = await handle.result().then(
      () => 'succeeded',
      (e: { cause?: Error }) => e.cause?.message ?? ''
    );
    expect(message).toContain(
      `preflight failed, nothing was changed: images missing from their registries: ${oci.host}/${MISSING_IMAGE} (not found; needed by control-plane)`
    );
    expect(await revisions()).toEqual(before);
    expect(
      await k.kubectl(stack.sandbox.controlPlane, ['get', 'jobs', '-n', 'skoala-system', '-o', 'name'])
    ).not.toMatch(/migration/);
  });

  it('no history, worker log line or plan output holds the password; the search finds what is there', async () => {
    // `plan` as an operator runs it, with the site's variables: it adds the repo and reads clusters.
    const planRun = await planCli(path.join(stack.sandbox.dir, 'site', 'site-oci.yaml'), '0.19.2');
    const planText = planRun.all ?? '';
    expect(planRun.exitCode, planText).toBe(0);
    expect(planText).toContain(`password from file ${passwordFile}`);
    const histories = (
      await Promise.all(
        workflowIds.map((id) =>
          historiesText(client, id, withChildren.has(id) ? stack.sandbox.workers.map((w) => w.name) : [])
        )
      )
    ).join('\n');
    // The search works: what must be there (decoded payloads: references, the CA path) is found.
    expect(histories).toContain(USER_VAR);
    expect(histories).toContain(passwordFile);
    for (const [where, text] of [
      ['histories', histories],
      ['worker output', worker.output()],
      ['plan', planText],
    ] as const) {
      expect.soft(text.includes(PASSWORD), `${where} holds the registry password`).toBe(false);
      expect.soft(text.includes(Buffer.from(PASSWORD).toString('base64')), `${where} holds it base64`).toBe(false);
    }
  });
});
