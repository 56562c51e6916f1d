/** `npm run worker`: one worker process polling the upgrade task queue until SIGINT/SIGTERM. */
import { NativeConnection } from '@temporalio/worker';
import { mkdir } from 'node:fs/promises';
import { createActivities } from '../activities';
import { workerConfig } from './config';
import { createWorker } from './create-worker';

const config = workerConfig();
await mkdir(config.backupDir, { recursive: true, mode: 0o700 });
await mkdir(config.workDir, { recursive: true });
const connection = await NativeConnection.connect({ address: config.address });
try {
  const worker = await createWorker({
    connection,
    namespace: config.namespace,
    taskQueue: config.taskQueue,
    activities: createActivities(config),
    // Opt-in: a stale bundle would run old workflow code, so it is used only when named.
    ...(config.workflowBundle ? { workflowBundle: { codePath: config.workflowBundle } } : {}),
  });
  console.log(`worker polling task queue ${config.taskQueue} on ${config.address} (namespace ${config.namespace})`);
  await worker.run(); // the SDK stops it gracefully on SIGINT/SIGTERM
} finally {
  await connection.close();
}
