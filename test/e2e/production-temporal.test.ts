/**
 * End to end on a production-shaped Temporal: the real server binary on PostgreSQL with an mTLS
 * frontend (sandbox/temporal-server.ts), sandbox clusters, the worker as its own process and the
 * CLI as an operator runs it, both configured only by the TEMPORAL_* variables of Temporal's
 * environment configuration. The worker is SIGKILLed while the upgrade waits at the CRD approval
 * gate; a new worker picks the upgrade up from the server's database and finishes it.
 */
import { Client, Connection } from '@temporalio/client';
import { execa } from 'execa';
import { mkdir, mkdtemp, readFile, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LocalStack } from '../../scripts/lib/local-stack';
import { upgradeWorkflowId } from '../../runbook/fleet';
import { CLI_TYPE_NAME, SKOALA_SEARCH_ATTRIBUTES } from '../../runbook/search-attributes';
import type { UpgradeResult } from '../../runbook/types';
import {
  SANDBOX_NAMESPACE,
  startJobStandIn,
  startSandbox,
  startWorkloadStandIns,
  writeFleetFile,
  type Sandbox,
} from '../../sandbox';
import { createTestCa, type IssuedCert, type TestCa } from '../../sandbox/test-ca';
import { startTemporalServer, type TemporalServer } from '../../sandbox/temporal-server';
import { toolPaths } from '../../sandbox/tools';
import { buildWorkflowBundle, ROOT, startWorkerProcess, type WorkerProcess } from '../helpers/worker-process';
import { waitForStatus } from '../workflow/harness';
import { kube } from './kube';

const WORKFLOW_ID = upgradeWorkflowId('sandbox');

let dir: string;
let ca: TestCa;
let sandbox: Sandbox;
let temporal: TemporalServer;
let fleetFile: string;
let bundle: string;
let operator: IssuedCert;
let workerCert: IssuedCert;
let client: Client;
let k: ReturnType<typeof kube>;
const stops: (() => Promise<unknown>)[] = [];

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'skoala-prod-temporal-'));
  ca = await createTestCa(path.join(dir, 'ca'));
  const serverCert = await ca.issue('temporal-frontend');
  [operator, workerCert] = await Promise.all([ca.issue('operator'), ca.issue('skoala-worker')]);
  const bundleFile = path.join(dir, 'workflow-bundle.js');
  await mkdir(path.join(dir, 'temporal'));
  const [sb, server] = await Promise.all([
    startSandbox({ workers: 1, installVersion: '0.18.0', dir: path.join(dir, 'sandbox'), log: () => {} }),
    startTemporalServer({
      dir: path.join(dir, 'temporal'),
      tls: {
        caCert: ca.caCert,
        serverCert: serverCert.cert,
        serverKey: serverCert.key,
        requireClientCert: true,
        // Clients dial 127.0.0.1 and check the certificate's DNS name (TEMPORAL_TLS_SERVER_NAME),
        // as they would dial a site's temporal.example.com. A bare IP works too, but Node then
        // warns on stderr that a TLS ServerName must not be an IP (DEP0123).
        serverName: 'localhost',
      },
    }),
    // What `npm run build` makes: both worker processes load it instead of bundling at start.
    buildWorkflowBundle(bundleFile),
  ]);
  sandbox = sb;
  temporal = server;
  bundle = bundleFile;
  stops.push(
    () => sandbox.stop(),
    () => temporal.stop()
  );
  const jobs = startJobStandIn({
    kubectl: sandbox.tools.kubectl,
    kubeconfig: sandbox.controlPlane.kubeconfig,
    namespace: SANDBOX_NAMESPACE,
  });
  const workloads = startWorkloadStandIns(sandbox);
  stops.unshift(
    () => jobs.stop(),
    () => workloads.stop()
  );
  // Images are not what this file is about (no registry serves the charts' images here).
  fleetFile = await writeFleetFile(sandbox, path.join(dir, 'fleet.yaml'), { checkImages: false });
  const connection = await Connection.connect({
    address: temporal.address,
    tls: {
      serverNameOverride: 'localhost',
      serverRootCACertificate: await readFile(ca.caCert),
      clientCertPair: { crt: await readFile(operator.cert), key: await readFile(operator.key) },
    },
  });
  stops.unshift(() => connection.close());
  client = new Client({ connection, namespace: temporal.namespace });
  k = kube({ sandbox } as LocalStack);
});

afterAll(async () => {
  for (const s of stops) await s().catch(() => undefined);
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** A `npm run worker` process with the worker's certificate (or `cert`), stopped after the tests. */
function worker(name: string, cert: IssuedCert = workerCert): WorkerProcess {
  const w = startWorkerProcess(
    {
      ...temporal.clientEnv(cert),
      SKOALA_HELM: sandbox.tools.helm,
      SKOALA_KUBECTL: sandbox.tools.kubectl,
      SKOALA_BACKUP_DIR: path.join(dir, 'backups'),
      SKOALA_WORK_DIR: path.join(dir, `work-${name}`),
      SKOALA_WORKFLOW_BUNDLE: bundle,
      ...sandbox.helmEnv,
    },
    name
  );
  stops.unshift(() => w.stop());
  return w;
}

function cli(args: string[], cert: IssuedCert = operator) {
  return execa(process.execPath, ['--import', 'tsx', 'scripts/cli.ts', ...args], {
    cwd: ROOT,
    reject: false,
    env: temporal.clientEnv(cert),
  });
}

describe.sequential('skoala-upgrade on a production-shaped Temporal (PostgreSQL, mTLS)', () => {
  it('0.18.0 -> 0.19.2 over mTLS; the worker is SIGKILLed at the CRD gate and a new worker finishes the upgrade', async () => {
    const first = worker('first');
    await first.polling;

    const started = await cli(['start-upgrade', '--version', '0.19.2', '--fleet', fleetFile]);
    expect(started.exitCode, started.stderr).toBe(0);
    expect(started.stdout.split('\n')[0]).toBe(`started upgrade ${WORKFLOW_ID}`);

    const handle = client.workflow.getHandle(WORKFLOW_ID);
    const gate = await waitForStatus(
      handle,
      (s) => s.pendingApprovals.includes('worker-1') || s.phase === 'failed',
      180_000
    );
    if (gate.phase === 'failed') {
      const why = await handle.result().then(
        () => 'completed?',
        (err: Error & { cause?: Error }) => `${err.message}: ${err.cause?.message ?? ''}`
      );
      throw new Error(`the upgrade failed before the gate: ${why}\n${first.output()}`);
    }
    const atGate = await cli(['status', '--workflow-id', WORKFLOW_ID]);
    expect(atGate.exitCode, atGate.stderr).toBe(0);
    expect(atGate.stdout).toContain('worker-1');

    first.child.kill('SIGKILL');
    const killed = await first.child;
    expect(killed.signal).toBe('SIGKILL');

    const second = worker('second');
    await second.polling;
    const approved = await cli(['approve', '--all', '--by', 'e2e', '--workflow-id', WORKFLOW_ID]);
    expect(approved.exitCode, `${approved.stderr}\n${second.output()}`).toBe(0);
    expect(approved.stdout).toContain('approved the CRD step of worker-1');

    const result = (await handle.result()) as UpgradeResult;
    expect(result.counts).toMatchObject({ upgraded: 2, failed: 0, rejected: 0 });
    for (const c of [sandbox.controlPlane, ...sandbox.workers]) {
      const rel = c === sandbox.controlPlane ? 'skoala' : 'skoala-init';
      expect(await k.release(c, rel)).toMatchObject({ status: 'deployed', chart: `${rel}-0.19.2` });
    }
    expect(
      await k.crdChartVersion(sandbox.workers[0] as Sandbox['workers'][number], 'httpproxies.projectcontour.io')
    ).toBe('0.19.2');
    const done = await cli(['status', '--workflow-id', WORKFLOW_ID]);
    expect(done.exitCode, done.stderr).toBe(0);
    expect(done.stdout).toMatch(/worker-1 .*upgraded/);
  }, 300_000);

  it('a CLI (or worker) with a certificate from another CA exits non-zero with one clear line', async () => {
    const otherCa = await createTestCa(path.join(dir, 'other-ca'), 'not the site CA');
    const stranger = await otherCa.issue('stranger');
    const run = await cli(['status', '--workflow-id', WORKFLOW_ID], stranger);
    expect(run.exitCode).toBe(3);
    expect(run.stdout).toBe('');
    const lines = run.stderr.trim().split('\n');
    expect(lines, run.stderr).toHaveLength(1);
    expect(lines[0]).toMatch(
      new RegExp(
        `^skoala-upgrade: cannot reach Temporal at ${temporal.address.replace(/\./g, '\\.')} \\(connection: mtls; `
      )
    );
    // The reason is the TLS one, not only "failed to connect before the deadline".
    expect(lines[0]).toMatch(/unknown ca|certificate/i);

    const strangerWorker = worker('stranger', stranger);
    const r = await strangerWorker.child;
    expect(r.exitCode).toBe(3);
    const wlines = strangerWorker.output().trim().split('\n');
    expect(wlines, strangerWorker.output()).toHaveLength(1);
    expect(wlines[0]).toMatch(
      new RegExp(`^worker: cannot reach Temporal at ${temporal.address.replace(/\./g, '\\.')} \\(mtls\\): `)
    );
  }, 120_000);

  it("docker-compose's setup steps (deploy/compose/*.sh) run against this server: schemas again, namespace and search attributes", async () => {
    const { temporal: temporalCli, temporalSqlTool } = toolPaths();
    // What the admin-tools image puts on PATH: the temporal CLI and temporal-sql-tool.
    const bin = path.join(dir, 'admin-tools-bin');
    await mkdir(bin, { recursive: true });
    await symlink(temporalCli, path.join(bin, 'temporal'));
    await symlink(temporalSqlTool, path.join(bin, 'temporal-sql-tool'));
    const env = { PATH: `${bin}:${process.env.PATH ?? ''}` };
    const sh = (script: string, extra: Record<string, string>) =>
      execa('sh', [path.join(ROOT, 'deploy/compose', script)], { env: { ...env, ...extra }, reject: false, all: true });
    const schema = await sh('setup-postgres.sh', {
      POSTGRES_SEEDS: '127.0.0.1',
      DB_PORT: String(temporal.postgres.port),
      POSTGRES_USER: 'temporal',
      SQL_PASSWORD: 'temporal',
    });
    // The server made these databases at its start: the step keeps them and applies nothing twice.
    expect(schema.exitCode, schema.all).toBe(0);
    expect(schema.all).toContain('found zero updates from current version');
    expect(schema.all).toContain('database temporal_visibility: schema postgresql/v12/visibility up to date');
    const tlsEnv = temporal.clientEnv(operator);
    const list = async () =>
      (await execa(temporalCli, ['operator', 'search-attribute', 'list', '--namespace', 'default'], { env: tlsEnv }))
        .stdout;
    expect(await list()).not.toContain('SkoalaPhase');
    for (const round of ['first', 'again']) {
      const ns = await sh('create-namespace.sh', tlsEnv);
      expect(ns.exitCode, `${round}: ${ns.all}`).toBe(0);
      expect(ns.all).toContain('namespace default exists');
    }
    const registered = await list();
    for (const a of SKOALA_SEARCH_ATTRIBUTES)
      expect(registered).toMatch(new RegExp(`${a.name}\\s+${CLI_TYPE_NAME[a.type]}\\b`));
  }, 120_000);
});
