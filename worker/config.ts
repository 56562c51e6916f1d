/** Worker settings from the environment, with defaults that work on a laptop. */
import { homedir } from 'node:os';
import path from 'node:path';
import { DEFAULT_TASK_QUEUE } from './create-worker';

export interface WorkerConfig {
  address: string;
  namespace: string;
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
    address: env.TEMPORAL_ADDRESS ?? 'localhost:7233',
    namespace: env.TEMPORAL_NAMESPACE ?? 'default',
    taskQueue: env.SKOALA_TASK_QUEUE ?? DEFAULT_TASK_QUEUE,
    helm: env.SKOALA_HELM ?? 'helm',
    kubectl: env.SKOALA_KUBECTL ?? 'kubectl',
    backupDir: env.SKOALA_BACKUP_DIR ?? path.join(state, 'skoala-upgrade', 'backups'),
    workDir: env.SKOALA_WORK_DIR ?? path.join(state, 'skoala-upgrade', 'work'),
    workflowBundle: env.SKOALA_WORKFLOW_BUNDLE,
  };
}
