/**
 * SKOALA_HEALTH_PORT: an HTTP endpoint for a container orchestrator's probes (deploy/chart).
 * `/livez` answers 200 while the event loop turns and the worker has not stopped or failed;
 * `/readyz` answers 200 only while the worker polls its task queue. Nothing else is served: no
 * upgrade state leaves the process here (that is the CLI's and the UI's job).
 */
import { createServer, type Server } from 'node:http';
import type { State } from '@temporalio/worker';

/** A port number, empty for none, or one line naming what is wrong. */
export function healthPort(value: string | undefined): number | undefined {
  if (value === undefined || value.trim() === '') return undefined;
  const n = Number(value);
  if (!/^\d+$/.test(value.trim()) || n < 1 || n > 65535)
    throw new Error(`SKOALA_HEALTH_PORT "${value}" must be a port number from 1 to 65535`);
  return n;
}

export async function startHealthServer(port: number, state: () => State): Promise<Server> {
  const server = createServer((req, res) => {
    const s = state();
    const ok =
      req.url === '/readyz'
        ? s === 'RUNNING'
        : req.url === '/livez'
          ? s === 'INITIALIZED' || s === 'RUNNING' || s === 'STOPPING' || s === 'DRAINING' || s === 'DRAINED'
          : undefined;
    res.writeHead(ok === undefined ? 404 : ok ? 200 : 503, { 'content-type': 'text/plain' });
    res.end(ok === undefined ? 'not found\n' : `${s.toLowerCase()}\n`);
  });
  // All addresses: a kubelet probes the pod's IP (the node's, with hostNetwork), never loopback.
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, () => resolve());
  });
  return server;
}
