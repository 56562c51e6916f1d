// A cluster's ports are chosen free, then bound a moment later: another process (a Temporal server
// starting alongside) may take one in between. The first start chooses again instead of waiting
// 30 s for a port that will not come back.
import { execa } from 'execa';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { SandboxClusterImpl } from '../../sandbox/cluster';
import { freePort } from '../../sandbox/procs';
import { ensureTools, type ToolPaths } from '../../sandbox/tools';

let dir: string;
let tools: ToolPaths;
let squatter: Server;
let taken: number;
beforeAll(async () => {
  tools = await ensureTools({ log: () => undefined });
  dir = await mkdtemp(join(tmpdir(), 'skoala-port-taken-'));
  taken = await freePort();
  squatter = createServer();
  await new Promise<void>((r) => squatter.listen(taken, '127.0.0.1', r));
});
afterAll(async () => {
  await new Promise((r) => squatter.close(r));
  await rm(dir, { recursive: true, force: true });
});

it('a port taken between its choice and the first start: the cluster starts on others, its kubeconfig follows', async () => {
  const cluster = new SandboxClusterImpl('taken', join(dir, 'taken'), taken, taken, 'a'.repeat(32), tools, () => {});
  await cluster.prepare();
  try {
    await cluster.start();
    expect(cluster.server).not.toContain(`:${taken}`);
    const r = await execa(tools.kubectl, ['--kubeconfig', cluster.kubeconfig, 'get', 'namespaces', '-o', 'name']);
    expect(r.stdout).toContain('namespace/default');
  } finally {
    await cluster.stop();
  }
}, 25_000);
