/**
 * A worker dies (SIGKILL) a third of the way through an N-cluster upgrade; a fresh worker process
 * starts at once. Measured from the fresh worker's spawn: when it polls, when it runs its first
 * command (the upgrade moves again), and when every cluster that was mid-command at the kill has
 * run a command again (their interrupted activities are retried after the heartbeat timeout).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { runPoint, type Point, type ReplaySetup } from './replay';
import { readCalls } from './stand-in';
import { startWorkers } from './worker-process';

export interface Resume {
  clusters: number;
  maxParallel: number;
  killedAfterMs: number;
  /** Spawn of the fresh worker -> it polls. */
  readyMs: number;
  /** Spawn -> its first helm/kubectl command. */
  firstCommandMs: number;
  /** Spawn -> every cluster interrupted by the kill ran a command again. */
  interruptedResumedMs: number;
  interrupted: number;
  point: Point;
}

export async function measureResume(s: ReplaySetup, clusters: number, maxParallel: number): Promise<Resume> {
  const dir = s.recording.standIn.dir;
  const before = (await readCalls(dir)).length;
  const target = Math.floor((s.recording.controlPlaneCalls.length + clusters * s.recording.workerCalls.length) / 3);
  let spawnAt = 0;
  let killAt = 0;
  let killedAfterMs = 0;
  let readyMs = 0;
  const point = await runPoint(s, clusters, maxParallel, {
    skipBaseline: true,
    during: async ({ worker, env, startedAt }) => {
      while ((await readCalls(dir)).length - before < target) await sleep(500);
      await worker.kill();
      killAt = Date.now();
      killedAfterMs = killAt - startedAt;
      spawnAt = Date.now();
      const fresh = await startWorkers(env, { split: s.split });
      readyMs = fresh.readyAt - spawnAt;
      return fresh;
    },
  });
  const calls = (await readCalls(dir)).slice(before);
  // Mid-command at the kill: a command started within L + 0.5 s before it.
  const inFlight = new Set(
    calls
      .filter((c) => c.cluster !== 'host' && c.startMs <= killAt && c.startMs > killAt - s.latency * 1000 - 500)
      .map((c) => c.cluster)
  );
  const after = calls.filter((c) => c.startMs > spawnAt);
  const firstAfter = new Map<string, number>();
  for (const c of after) firstAfter.set(c.cluster, Math.min(firstAfter.get(c.cluster) ?? Infinity, c.startMs));
  const timing = {
    killedAfterMs,
    readyMs,
    firstCommandMs: Math.min(...after.map((c) => c.startMs)) - spawnAt,
    interruptedResumedMs: Math.max(0, ...[...inFlight].map((c) => (firstAfter.get(c) ?? NaN) - spawnAt)),
    interrupted: inFlight.size,
  };
  return { clusters, maxParallel, ...timing, point };
}
