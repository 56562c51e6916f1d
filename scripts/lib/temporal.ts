/** Connecting to Temporal and finding the upgrade an operator means. */
import { Client, Connection } from '@temporalio/client';
import { DEFAULT_TASK_QUEUE } from '../../runbook/fleet';
import { temporalConnectConfig, TemporalConfigError, type TemporalConnectConfig } from '../../worker/temporal-config';
import { EXIT, ExitError } from './errors';

export interface TemporalEnv extends TemporalConnectConfig {
  uiUrl: string;
  taskQueue: string;
}

/** Temporal's environment configuration (see worker/temporal-config.ts) plus the UI link and task queue. */
export function temporalEnv(env: NodeJS.ProcessEnv = process.env): TemporalEnv {
  let config: TemporalConnectConfig;
  try {
    config = temporalConnectConfig(env);
  } catch (err) {
    if (err instanceof TemporalConfigError) throw new ExitError(err.message, EXIT.badInput);
    throw err;
  }
  return {
    ...config,
    uiUrl: env.TEMPORAL_UI_URL ?? 'http://localhost:8233',
    taskQueue: env.SKOALA_TASK_QUEUE ?? DEFAULT_TASK_QUEUE,
  };
}

/** First line of a gRPC/TLS failure: the rest is a stack of transport details. */
const firstLine = (err: unknown): string => (err instanceof Error ? err.message : String(err)).split('\n')[0] ?? '';

export async function connectClient(t: TemporalEnv): Promise<Client> {
  const { address, tls, apiKey, metadata } = t.connectionOptions;
  try {
    const connection = await Connection.connect({ address, tls, apiKey, metadata, connectTimeout: '5s' });
    return new Client({ connection, namespace: t.namespace });
  } catch (err) {
    const how =
      t.security === 'plain'
        ? 'set TEMPORAL_ADDRESS, and TEMPORAL_TLS_* or TEMPORAL_API_KEY if it is secured'
        : `connection: ${t.security}; check TEMPORAL_TLS_* / TEMPORAL_API_KEY`;
    throw new ExitError(
      `cannot reach Temporal at ${t.address} (${how}): ${await whyUnreachable(t, err)}`,
      EXIT.unreachable
    );
  }
}

/**
 * connect() retries until its deadline and then says only that: one call without the retrying
 * interceptor gets the transport's own reason (a TLS alert such as "unknown ca", a refused port).
 */
async function whyUnreachable(t: TemporalEnv, err: unknown): Promise<string> {
  const { address, tls, apiKey, metadata } = t.connectionOptions;
  const probe = Connection.lazy({ address, tls, apiKey, metadata, interceptors: [], connectTimeout: '5s' });
  try {
    await probe.workflowService.getSystemInfo({});
    return firstLine(err);
  } catch (probeErr) {
    // Only a reason that says more than "no connection" replaces connect()'s own.
    const reason = firstLine(probeErr).replace(/^\d+ [A-Z_]+: /, '');
    return /alert|certificate|tls|ssl|handshake|unauthenticated|permission|api key/i.test(reason)
      ? reason
      : firstLine(err);
  } finally {
    await probe.close().catch(() => undefined);
  }
}

export const workflowUrl = (t: TemporalEnv, workflowId: string): string =>
  `${t.uiUrl}/namespaces/${encodeURIComponent(t.namespace)}/workflows/${encodeURIComponent(workflowId)}`;

/** The workflow ID given, or the one running upgrade; several running ones must be named. */
export async function resolveUpgradeId(client: Client, given: string | undefined): Promise<string> {
  if (given) return given;
  const running: string[] = [];
  for await (const w of client.workflow.list({
    query: `WorkflowType = 'upgradeEngine' AND ExecutionStatus = 'Running'`,
  })) {
    running.push(w.workflowId);
  }
  if (running.length === 1) return running[0] as string;
  if (running.length === 0) throw new ExitError('no upgrade is running; pass --workflow-id to name a finished one');
  throw new ExitError(`${running.length} upgrades are running (${running.join(', ')}): pass --workflow-id`);
}
