/**
 * The production-shaped Temporal of the sandbox: the real server binary on PostgreSQL 15 with an
 * mTLS frontend. A client with a certificate from the site CA gets in, runs a workflow to the end
 * and finds it in PostgreSQL; a client without one, or with one from another CA, is turned away.
 */
import { Client, Connection, type TLSConfig } from '@temporalio/client';
import { defaultPayloadConverter } from '@temporalio/common';
import { execa } from 'execa';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestCa, type TestCa } from '../../sandbox/test-ca';
import { findPostgresBin, startTemporalServer, type TemporalServer } from '../../sandbox/temporal-server';

// temporal/api/enums/v1/command_type.proto
const COMMAND_TYPE_COMPLETE_WORKFLOW_EXECUTION = 4;

let dir: string;
let ca: TestCa;
let otherCa: TestCa;
let server: TemporalServer;
let startupMs: number;
const connections: Connection[] = [];

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'skoala-temporal-server-test-'));
  ca = await createTestCa(join(dir, 'ca'));
  otherCa = await createTestCa(join(dir, 'other-ca'), 'some other CA');
  const serverCert = await ca.issue('temporal-frontend');
  const t0 = Date.now();
  server = await startTemporalServer({
    dir: join(dir, 'temporal'),
    tls: { caCert: ca.caCert, serverCert: serverCert.cert, serverKey: serverCert.key, requireClientCert: true },
  });
  startupMs = Date.now() - t0;
});

afterAll(async () => {
  await Promise.all(connections.map((c) => c.close().catch(() => undefined)));
  await server?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

async function tls(trust: TestCa, cert?: { cert: string; key: string }): Promise<TLSConfig> {
  return {
    serverRootCACertificate: await readFile(trust.caCert),
    ...(cert ? { clientCertPair: { crt: await readFile(cert.cert), key: await readFile(cert.key) } } : {}),
  };
}

async function connect(tlsConfig: TLSConfig): Promise<Connection> {
  const c = await Connection.connect({ address: server.address, tls: tlsConfig, connectTimeout: 5000 });
  connections.push(c);
  return c;
}

/**
 * Why a connection is refused. Without the SDK's retry interceptor the first call fails with the
 * TLS error itself (with it, connect() only reports "Failed to connect before the deadline").
 */
async function refusal(tlsConfig: TLSConfig): Promise<string> {
  const c = Connection.lazy({ address: server.address, tls: tlsConfig, interceptors: [] });
  connections.push(c);
  return c
    .withDeadline(Date.now() + 10_000, () => c.workflowService.getSystemInfo({}))
    .then(
      () => 'connected',
      (err: unknown) => (err instanceof Error ? err.message : String(err))
    );
}

describe.sequential('production-shaped Temporal server (PostgreSQL, mTLS frontend)', () => {
  it('starts well under a minute, on loopback, with the default namespace', () => {
    expect(server.address).toMatch(/^127\.0\.0\.1:\d+$/);
    expect(server.namespace).toBe('default');
    expect(startupMs).toBeLessThan(60_000);
    console.log(`temporal-server start-up: ${startupMs} ms`, server.timings);
  });

  it('serves a client whose certificate the site CA signed: namespace, a workflow to completion, PostgreSQL rows', async () => {
    const connection = await connect(await tls(ca, await ca.issue('operator')));
    const ns = await connection.workflowService.describeNamespace({ namespace: 'default' });
    expect(ns.namespaceInfo?.name).toBe('default');
    expect(Number(ns.config?.workflowExecutionRetentionTtl?.seconds)).toBe(24 * 3600);

    // A workflow run end to end by hand through the frontend (no SDK worker): start, poll its
    // workflow task from matching, complete it, read the result from history.
    const client = new Client({ connection, namespace: server.namespace });
    const workflowId = `mtls-probe-${Date.now()}`;
    const handle = await client.workflow.start('nothing', { taskQueue: 'mtls-probe', workflowId, args: [] });
    const task = await connection.withDeadline(Date.now() + 30_000, () =>
      connection.workflowService.pollWorkflowTaskQueue({
        namespace: 'default',
        taskQueue: { name: 'mtls-probe' },
        identity: 'temporal-server.test',
      })
    );
    expect(task.workflowType?.name).toBe('nothing');
    await connection.workflowService.respondWorkflowTaskCompleted({
      namespace: 'default',
      taskToken: task.taskToken,
      identity: 'temporal-server.test',
      commands: [
        {
          commandType: COMMAND_TYPE_COMPLETE_WORKFLOW_EXECUTION,
          completeWorkflowExecutionCommandAttributes: {
            result: { payloads: [defaultPayloadConverter.toPayload('done')] },
          },
        },
      ],
    });
    expect(await handle.result()).toBe('done');

    // The visibility store is the PostgreSQL database docker-compose's server would use.
    const psql = async (): Promise<string> =>
      (
        await execa(
          join(findPostgresBin(), 'psql'),
          [
            '-h',
            '127.0.0.1',
            '-p',
            String(server.postgres.port),
            '-U',
            'temporal',
            '-d',
            'temporal_visibility',
            '-tAc',
            `SELECT workflow_type_name FROM executions_visibility WHERE workflow_id = '${workflowId}' AND close_time IS NOT NULL`,
          ],
          { env: { PGPASSWORD: 'temporal' } }
        )
      ).stdout.trim();
    const deadline = Date.now() + 15_000;
    let row = await psql();
    while (row === '' && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 200));
      row = await psql();
    }
    expect(row).toBe('nothing');
  });

  it('refuses a client without a certificate', async () => {
    expect(await refusal(await tls(ca))).toMatch(/^14 UNAVAILABLE: .*alert certificate required/);
  });

  it('refuses a client whose certificate another CA signed', async () => {
    const stranger = await otherCa.issue('stranger');
    expect(await refusal(await tls(ca, stranger))).toMatch(/^14 UNAVAILABLE: .*alert unknown ca/);
  });

  it('is refused by a client that does not trust the server certificate', async () => {
    const msg = await refusal(await tls(otherCa, await ca.issue('operator-2')));
    expect(msg).toMatch(/^14 UNAVAILABLE: .*unable to verify the first certificate/);
  });
});
