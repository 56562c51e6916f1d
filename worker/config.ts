/** Worker settings from the environment, with defaults that work on a laptop. */
import { homedir } from 'node:os';
import path from 'node:path';
import { DEFAULT_TASK_QUEUE } from '../runbook/fleet';
import { healthPort } from './health';
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
  /** Activities this worker runs at once (each is a helm or kubectl process while it runs). */
  maxConcurrentActivities: number;
  /** What this process runs: both (default), only the workflows, or only the activities. */
  role: WorkerRole;
  /** SKOALA_HEALTH_PORT: probes for a container orchestrator (health.ts); none by default. */
  healthPort?: number;
}

export const WORKER_ROLES = ['all', 'workflows', 'activities'] as const;
export type WorkerRole = (typeof WORKER_ROLES)[number];

/**
 * SKOALA_WORKER_ROLE. Why split: every helm/kubectl process is forked from the worker's main
 * thread, and a fork costs time in proportion to the process's memory (page tables), which the
 * workflow cache makes large (~6 ms per spawn at 650 MiB against ~1 ms at 50 MiB, measured). An
 * activities-only process stays small and runs beside the workflows process on another core.
 */
export function workerRole(value: string | undefined): WorkerRole {
  if (value === undefined || value.trim() === '') return 'all';
  const role = WORKER_ROLES.find((r) => r === value.trim());
  if (!role) throw new Error(`SKOALA_WORKER_ROLE "${value}" must be one of: ${WORKER_ROLES.join(', ')}`);
  return role;
}

/**
 * Enough for `--max-parallel 50` and a preflight of many clusters at once: the activities wait on
 * helm and kubectl processes, not on this process's CPU. The default of the SDK (and of this worker
 * before) was 20, which held a fan-out at `--max-parallel 50` to 20 clusters at a time.
 */
export const DEFAULT_MAX_CONCURRENT_ACTIVITIES = 50;

/** SKOALA_MAX_CONCURRENT_ACTIVITIES: a whole number from 1 to 1000, or one line naming what is wrong. */
export function maxConcurrentActivities(value: string | undefined): number {
  if (value === undefined || value.trim() === '') return DEFAULT_MAX_CONCURRENT_ACTIVITIES;
  const n = Number(value);
  if (!/^\d+$/.test(value.trim()) || n < 1 || n > 1000)
    throw new Error(`SKOALA_MAX_CONCURRENT_ACTIVITIES "${value}" must be a whole number from 1 to 1000`);
  return n;
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
    maxConcurrentActivities: maxConcurrentActivities(env.SKOALA_MAX_CONCURRENT_ACTIVITIES),
    role: workerRole(env.SKOALA_WORKER_ROLE),
    healthPort: healthPort(env.SKOALA_HEALTH_PORT),
  };
}
