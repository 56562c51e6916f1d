/**
 * A real node (sandbox/node.ts) leaves nothing behind: not after stop(), and not after its owner
 * process was SIGKILLed with pods running (its containerd and kubelet die with it, the pods'
 * shims do not): the next node to take the slot cleans what is left.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { execa } from 'execa';
import { describe, expect, it } from 'vitest';

/** Processes whose command line names anything under dir. */
async function processesUnder(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const pid of (await readdir('/proc')).filter((p) => /^\d+$/.test(p))) {
    const cmd = (await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '')).replace(/\0/g, ' ');
    if (cmd.includes(dir)) out.push(`${pid} ${cmd.slice(0, 120)}`);
  }
  return out;
}
const mountsUnder = async (dir: string) =>
  (await readFile('/proc/self/mountinfo', 'utf8')).split('\n').filter((l) => l.split(' ')[4]?.startsWith(dir));

describe('a real node', { timeout: 240_000 }, () => {
  it('whose owner was SIGKILLed with a pod running is cleaned by the next node; then stop() leaves nothing', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'skoala-node-test-'));
    try {
      const script = join(dir, 'owner.mts');
      await writeFile(
        script,
        `import { execFileSync } from 'node:child_process';\n` +
          `import { startSandbox } from ${JSON.stringify(resolve('sandbox/index.ts'))};\n` +
          `const sb = await startSandbox({ workers: 0, realNodes: true, dir: ${JSON.stringify(join(dir, 'first'))}, log: () => undefined });\n` +
          `const k = (a: string[]) => execFileSync(sb.tools.kubectl, ['--kubeconfig', sb.controlPlane.kubeconfig, ...a]);\n` +
          `k(['create', 'deployment', 'hive', '--image=release.daocloud.io/skoala/hive:v0.19.2']);\n` +
          `k(['rollout', 'status', 'deployment/hive', '--timeout=60s']);\n` +
          `console.log('READY');\nsetInterval(() => undefined, 1000);\n`
      );
      const child = spawn(process.execPath, ['--import', 'tsx', script], { stdio: ['ignore', 'pipe', 'inherit'] });
      const exited = new Promise<void>((res) => child.once('exit', () => res()));
      await new Promise<void>((res, rej) => {
        child.stdout.on('data', (b: Buffer) => b.toString().includes('READY') && res());
        void exited.then(() => rej(new Error('the owner exited before its pod was ready')));
      });
      const first = join(dir, 'first', 'nodes');
      child.kill('SIGKILL');
      await exited;
      // containerd, kubelet and the rest died with their owner; the pod's shim and containers did not.
      await new Promise((r) => setTimeout(r, 1000));
      const left = await processesUnder(first);
      expect(left.length, 'a pod outlives its killed owner (the case to clean)').toBeGreaterThan(0);
      expect(left.join('\n')).not.toMatch(/kubelet|containerd --config/);
      expect((await mountsUnder(first)).length).toBeGreaterThan(0);

      // The next node cleans every slot whose owner is gone before it takes one.
      const { startSandbox } = await import('../../sandbox');
      const sb = await startSandbox({ workers: 0, realNodes: true, dir: join(dir, 'second'), log: () => undefined });
      try {
        expect(await processesUnder(first)).toEqual([]);
        expect(await mountsUnder(first)).toEqual([]);
        const r = await execa(sb.tools.kubectl, [
          '--kubeconfig',
          sb.controlPlane.kubeconfig,
          'get',
          'nodes',
          '-o',
          'name',
        ]);
        expect(r.stdout).toBe('node/control-plane');
      } finally {
        await sb.stop();
      }
      const second = join(dir, 'second');
      expect(await processesUnder(second)).toEqual([]);
      expect(await mountsUnder(second)).toEqual([]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
