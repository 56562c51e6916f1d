/** Worker settings from the environment, with defaults that work on a laptop. */
import { homedir } from 'node:os';
import path from 'node:path';
import { DEFAULT_TASK_QUEUE } from './create-worker';
import { temporalConnectConfig, type TemporalConnectConfig } from './temporal-config';

export interface WorkerConfig {
  /** Address, namespace, TLS or API key: Temporal's environment configuration. */
  temporal: TemporalConnectConfig;
  taskQueue: string;
  helm: string;
  kubectl: string;
  backupDir: string;
  workDir: string;
  /** A bundle from `npm run build` (SKOALA_WORKFLOW_BUNDLE=dist/workflow-bundle.js); bundled at start otherwise. */
  workflowBundle?: string;
}

export function workerConfig(env: NodeJS.ProcessEnv = process.env): WorkerConfig {
  const state = env.XDG_STATE_HOME ?? path.join(homedir(), '.local', 'state');
  return {
    temporal: temporalConnectConfig(env),
    taskQueue: env.SKOALA_TASK_QUEUE ?? DEFAULT_TASK_QUEUE,
    helm: env.SKOALA_HELM ?? 'helm',
    kubectl: env.SKOALA_KUBECTL ?? 'kubectl',
    backupDir: env.SKOALA_BACKUP_DIR ?? path.join(state, 'skoala-upgrade', 'backups'),
    workDir: env.SKOALA_WORK_DIR ?? path.join(state, 'skoala-upgrade', 'work'),
    workflowBundle: env.SKOALA_WORKFLOW_BUNDLE,
  };
}
