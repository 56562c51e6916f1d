/**
 * `npm run worker`: one worker process polling the upgrade task queue until SIGINT/SIGTERM. With
 * SKOALA_WORKER_ROLE=workflows / activities it runs only that half (config.ts says why to split).
 */
import { NativeConnection } from '@temporalio/worker';
import { mkdir } from 'node:fs/promises';
import { createActivities } from '../activities';
import { workerConfig } from './config';
import { createWorker } from './create-worker';
import { startHealthServer } from './health';

let config: ReturnType<typeof workerConfig>;
try {
  config = workerConfig();
} catch (err) {
  console.error(`worker: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(2);
}
const { temporal } = config;
const runsActivities = config.role !== 'workflows';
if (runsActivities) {
  await mkdir(config.backupDir, { recursive: true, mode: 0o700 });
  await mkdir(config.workDir, { recursive: true });
}
let connection: NativeConnection;
try {
  connection = await NativeConnection.connect(temporal.connectionOptions);
} catch (err) {
  // One line, as the CLI says it: a wrong certificate or address is a configuration problem.
  const first = (err instanceof Error ? err.message : String(err)).split('\n')[0];
  console.error(`worker: cannot reach Temporal at ${temporal.address} (${temporal.security}): ${first}`);
  process.exit(3);
}
try {
  const worker = await createWorker({
    connection,
    namespace: temporal.namespace,
    taskQueue: config.taskQueue,
    activities: createActivities(config),
    // A workflows-only process runs the local activities of its workflows, not the helm/kubectl ones.
    remoteActivities: runsActivities,
    workflows: config.role !== 'activities',
    maxConcurrentActivityTaskExecutions: config.maxConcurrentActivities,
    // Opt-in: a stale bundle would run old workflow code, so it is used only when named.
    ...(config.workflowBundle ? { workflowBundle: { codePath: config.workflowBundle } } : {}),
  });
  const health =
    config.healthPort === undefined ? undefined : await startHealthServer(config.healthPort, () => worker.getState());
  const runs = {
    all: `workflows and up to ${config.maxConcurrentActivities} activities at once`,
    workflows: 'workflows only',
    activities: `activities only, up to ${config.maxConcurrentActivities} at once`,
  }[config.role];
  console.log(
    `worker polling task queue ${config.taskQueue} on ${temporal.address} (namespace ${temporal.namespace}, ${temporal.security}; ${runs})`
  );
  try {
    await worker.run(); // the SDK stops it gracefully on SIGINT/SIGTERM
  } finally {
    health?.close();
  }
} finally {
  await connection.close();
}
