/** Connecting to Temporal and finding the upgrade an operator means. */
import { Client, Connection } from '@temporalio/client';
import { DEFAULT_TASK_QUEUE } from '../../runbook/fleet';
import { EXIT, ExitError } from './errors';

export interface TemporalEnv {
  address: string;
  namespace: string;
  uiUrl: string;
  taskQueue: string;
}

export function temporalEnv(env: NodeJS.ProcessEnv = process.env): TemporalEnv {
  return {
    address: env.TEMPORAL_ADDRESS ?? 'localhost:7233',
    namespace: env.TEMPORAL_NAMESPACE ?? 'default',
    uiUrl: env.TEMPORAL_UI_URL ?? 'http://localhost:8233',
    taskQueue: env.SKOALA_TASK_QUEUE ?? DEFAULT_TASK_QUEUE,
  };
}

export async function connectClient(t: TemporalEnv): Promise<Client> {
  try {
    const connection = await Connection.connect({ address: t.address, connectTimeout: '5s' });
    return new Client({ connection, namespace: t.namespace });
  } catch (err) {
    throw new ExitError(
      `cannot reach Temporal at ${t.address} (set TEMPORAL_ADDRESS): ${(err as Error).message}`,
      EXIT.unreachable
    );
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
