/**
 * Everything the demo and the end-to-end tests run on one machine: an embedded Temporal dev
 * server, sandbox clusters with a chart repository, the DB-migration Job and workload stand-ins, and a real
 * worker with the real activities. stop() leaves no process behind.
 */
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type { Worker } from '@temporalio/worker';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createActivities } from '../../activities';
import {
  SANDBOX_NAMESPACE,
  startJobStandIn,
  startSandbox,
  startWorkloadStandIns,
  writeFleetFile,
  type Sandbox,
} from '../../sandbox';
import type { WorkloadStandIn } from '../../sandbox/workload-standin';
import { createWorker, DEFAULT_TASK_QUEUE } from '../../worker/create-worker';
import { startDevServer } from './dev-server';
import { startSiteRegistry } from './site-registry';
import type { TemporalEnv } from './temporal';

export interface LocalStackOptions {
  workers: number;
  installVersion?: string;
  customValues?: boolean;
  /** Serve the Temporal UI on this port (the demo does). */
  uiPort?: number;
  /** Where the sandbox keeps its files (kept by stop()); a temp dir, removed by stop(), when omitted. */
  dir?: string;
  /** Extra fleet-file fields. */
  fleet?: Record<string, unknown>;
  /**
   * Cluster name -> `<container>:<tag>` entries whose workloads never become ready (the workload
   * stand-in leaves them at ProgressDeadlineExceeded). Default: DEFAULT_BROKEN_IMAGES, for the
   * clusters the stack has; `{}` makes every workload roll out.
   */
  brokenImages?: Record<string, string[]>;
  /**
   * Charts and images from a stand-in for the site's Harbor (an OCI registry with TLS and a robot
   * account, see site-registry.ts) holding these versions; the image check runs against it.
   */
  siteRegistryVersions?: string[];
  /**
   * A real node per cluster (sandbox/node.ts): pods run, and the versions that break do so in their
   * images (sandbox/images.ts BROKEN_IMAGES), so no stand-in runs and brokenImages does not apply.
   */
  realNodes?: boolean;
  log?: (line: string) => void;
}

/** 0.19.3's hive never gets ready; nor does 0.28.2's skoala-agent on worker-1. */
export const DEFAULT_BROKEN_IMAGES: Readonly<Record<string, string[]>> = {
  'control-plane': ['hive:v0.19.3'],
  'worker-1': ['skoala-agent:v0.28.2'],
};

export interface LocalStack {
  sandbox: Sandbox;
  temporal: TestWorkflowEnvironment;
  env: TemporalEnv;
  fleetFile: string;
  backupDir: string;
  taskQueue: string;
  /** The Temporal server's stdout and stderr (`temporal-server.log` in the sandbox dir). */
  temporalLog: string;
  /** Per cluster, its workload status stand-in (setBroken: an image becomes available, or not); none on real nodes. */
  workloads: Record<string, WorkloadStandIn>;
  /** Starts a worker with the real activities; the stack stops it on stop(). */
  startWorker(): Promise<Worker>;
  stop(): Promise<void>;
}

export async function startLocalStack(opts: LocalStackOptions): Promise<LocalStack> {
  const log = opts.log ?? ((l: string) => console.log(l));
  if (opts.realNodes && opts.brokenImages)
    throw new Error(
      'brokenImages is for the status stand-in: on real nodes a version breaks in its image (BROKEN_IMAGES)'
    );
  // The dir is known before the sandbox starts, so the Temporal server (started alongside) logs into it.
  const dir = path.resolve(opts.dir ?? (await mkdtemp(path.join(tmpdir(), 'skoala-sandbox-'))));
  await mkdir(dir, { recursive: true });
  const temporalLog = path.join(dir, 'temporal-server.log');
  const removeDir = async () => {
    if (!opts.dir) await rm(dir, { recursive: true, force: true });
  };
  const [sandboxStart, temporalStart] = await Promise.allSettled([
    startSandbox({
      workers: opts.workers,
      installVersion: opts.installVersion,
      customValues: opts.customValues,
      realNodes: opts.realNodes,
      dir,
      log,
    }),
    startDevServer({ uiPort: opts.uiPort, logFile: temporalLog }),
  ]);
  if (sandboxStart.status === 'rejected' || temporalStart.status === 'rejected') {
    // Whichever did start must not outlive the failure.
    if (sandboxStart.status === 'fulfilled') await sandboxStart.value.stop().catch(() => undefined);
    if (temporalStart.status === 'fulfilled') await temporalStart.value.teardown().catch(() => undefined);
    await removeDir();
    throw sandboxStart.status === 'rejected' ? sandboxStart.reason : (temporalStart as PromiseRejectedResult).reason;
  }
  const sandbox = sandboxStart.value;
  const temporal = temporalStart.value;
  // Temporal goes after everything that talks to it, the dir last (its log complete until then).
  const stops: (() => Promise<unknown>)[] = [() => sandbox.stop(), () => temporal.teardown(), removeDir];
  const taskQueue = DEFAULT_TASK_QUEUE;
  const backupDir = path.join(sandbox.dir, 'backups');
  const workDir = path.join(sandbox.dir, 'work');
  await mkdir(backupDir, { recursive: true, mode: 0o700 });
  await mkdir(workDir, { recursive: true });
  let standIns: Record<string, WorkloadStandIn> = {};
  if (!opts.realNodes) {
    // No Job controller runs in the sandbox: complete the DB-migration Job the way envtest does.
    const jobs = startJobStandIn({
      kubectl: sandbox.tools.kubectl,
      kubeconfig: sandbox.controlPlane.kubeconfig,
      namespace: SANDBOX_NAMESPACE,
    });
    stops.unshift(() => jobs.stop());
    // No Deployment controller or kubelet either: roll workloads out (or not, for a broken image).
    const names = new Set([sandbox.controlPlane, ...sandbox.workers].map((c) => c.name));
    const broken =
      opts.brokenImages ??
      Object.fromEntries(Object.entries(DEFAULT_BROKEN_IMAGES).filter(([name]) => names.has(name)));
    let workloads: ReturnType<typeof startWorkloadStandIns>;
    try {
      workloads = startWorkloadStandIns(sandbox, broken);
    } catch (err) {
      // An unknown cluster name in brokenImages: leave no process behind.
      for (const s of stops) await s().catch(() => undefined);
      throw err;
    }
    stops.unshift(() => workloads.stop());
    standIns = workloads.standIns;
  }
  let siteFleet: Record<string, unknown> = {};
  if (opts.siteRegistryVersions) {
    const site = await startSiteRegistry(sandbox, opts.siteRegistryVersions);
    stops.unshift(() => site.stop());
    // The in-process worker reads the username from its environment, as a site's worker would.
    Object.assign(process.env, site.env);
    siteFleet = site.fleet;
  }
  const fleetFile = await writeFleetFile(sandbox, path.join(sandbox.dir, 'fleet.yaml'), {
    ...siteFleet,
    ...opts.fleet,
  });
  const env: TemporalEnv = {
    address: temporal.address,
    namespace: 'default',
    connectionOptions: { address: temporal.address },
    security: 'plain',
    uiUrl: opts.uiPort ? `http://127.0.0.1:${opts.uiPort}` : '(no UI)',
    taskQueue,
  };
  return {
    sandbox,
    temporal,
    env,
    fleetFile,
    backupDir,
    taskQueue,
    temporalLog,
    workloads: standIns,
    async startWorker() {
      const activities = createActivities({
        helm: sandbox.tools.helm,
        kubectl: sandbox.tools.kubectl,
        env: { ...process.env, ...sandbox.helmEnv },
        backupDir,
        workDir,
        jobPollMs: 500,
        // The sandbox's workload stand-in answers within ~0.5 s: a 2 s poll would mostly wait.
        healthPollMs: 500,
      });
      const worker = await createWorker({
        connection: temporal.nativeConnection,
        taskQueue,
        activities,
        shutdownGraceTime: '2s',
      });
      const running = worker.run();
      stops.unshift(async () => {
        if (worker.getState() === 'RUNNING') worker.shutdown();
        await running.catch(() => undefined);
      });
      return worker;
    },
    async stop() {
      for (const s of stops) await s().catch((err: unknown) => log(`stop: ${String(err)}`));
    },
  };
}
