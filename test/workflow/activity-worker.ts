/**
 * A worker process that only runs activities, for the worker-death test: `tsx activity-worker.ts
 * ADDRESS TASK_QUEUE`. Its `helm repo add` never ends (it heartbeats, like a live worker running a
 * slow helm) and it prints HOLDING when that step starts, so the test can SIGKILL it mid-step.
 */
import { Context } from '@temporalio/activity';
import { NativeConnection, Worker } from '@temporalio/worker';
import { fakeFleetAt, fleetOf } from './request';

const [address, taskQueue] = process.argv.slice(2) as [string, string];
const fake = fakeFleetAt(fleetOf(1), '0.18.0');
const connection = await NativeConnection.connect({ address });
const worker = await Worker.create({
  connection,
  taskQueue,
  activities: {
    ...fake.activities(),
    async addChartRepo() {
      console.log('HOLDING');
      for (;;) {
        Context.current().heartbeat();
        await new Promise((r) => setTimeout(r, 1000));
      }
    },
  },
});
console.log('READY');
await worker.run();
