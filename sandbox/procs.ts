// Registry of every long-running child the sandbox starts (kine, kube-apiserver), so nothing
// outlives the Node process: teardown, SIGINT/SIGTERM and process exit all end them.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, openSync, closeSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createServer } from 'node:net';

export interface Tracked {
  name: string;
  child: ChildProcess;
  logFile: string;
  /** Resolves with the exit code (or signal name) once the process is gone. */
  exited: Promise<string>;
}

const live = new Set<Tracked>();
let handlersInstalled = false;

// setpriv --pdeathsig makes the kernel SIGKILL the child when this Node process dies, even by
// SIGKILL where no handler of ours runs. util-linux ships it on Debian; without it we still
// have the handlers below.
const SETPRIV = '/usr/bin/setpriv';
const useSetpriv = process.platform === 'linux' && existsSync(SETPRIV);

function installHandlers(): void {
  if (handlersInstalled) return;
  handlersInstalled = true;
  // 'exit' handlers must be synchronous: SIGKILL is the only thing that surely lands in time.
  process.on('exit', () => {
    for (const t of live) t.child.kill('SIGKILL');
  });
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    const onSignal = (): void => {
      void stopAllSandboxProcesses().finally(() => {
        // Installing a handler removes Node's default "exit on signal". Exit ourselves only when
        // nobody else listens (e.g. a Temporal worker doing its own graceful shutdown).
        if (process.listenerCount(sig) === 1) process.exit(sig === 'SIGINT' ? 130 : sig === 'SIGTERM' ? 143 : 129);
      });
    };
    process.on(sig, onSignal);
  }
}

/** Starts a tracked child whose stdout+stderr go (appended) to logFile. */
export function spawnTracked(name: string, file: string, args: string[], logFile: string, cwd?: string): Tracked {
  installHandlers();
  const fd = openSync(logFile, 'a');
  const [cmd, argv] = useSetpriv ? [SETPRIV, ['--pdeathsig', 'KILL', '--', file, ...args]] : [file, args];
  let child: ChildProcess;
  try {
    child = spawn(cmd, argv, { stdio: ['ignore', fd, fd], cwd });
  } finally {
    closeSync(fd); // the child holds its own copy
  }
  const exited = new Promise<string>((res) => {
    child.once('exit', (code, signal) => res(signal ?? String(code)));
    child.once('error', (err) => res(`spawn error: ${err.message}`));
  });
  const t: Tracked = { name, child, logFile, exited };
  void exited.then(() => live.delete(t));
  live.add(t);
  return t;
}

/** SIGTERM, then SIGKILL after graceMs; resolves when the process is gone. */
export async function terminate(t: Tracked, graceMs = 5000): Promise<void> {
  if (t.child.exitCode !== null || t.child.signalCode !== null) return;
  t.child.kill('SIGTERM');
  const timer = setTimeout(() => t.child.kill('SIGKILL'), graceMs);
  try {
    await t.exited;
  } finally {
    clearTimeout(timer);
  }
}

/** Ends every live sandbox process (used by teardown and the signal handlers). */
export async function stopAllSandboxProcesses(graceMs = 3000): Promise<void> {
  await Promise.all([...live].map((t) => terminate(t, graceMs)));
}

export function liveSandboxProcesses(): { name: string; pid: number | undefined }[] {
  return [...live].map((t) => ({ name: t.name, pid: t.child.pid }));
}

export async function tailFile(file: string, lines = 15): Promise<string> {
  try {
    return (await readFile(file, 'utf8')).trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

/** A loopback port that was free a moment ago (bind port 0, read it, close). */
export function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const srv = createServer();
    srv.once('error', rej);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => res(port));
    });
  });
}

/** Whether a loopback port can be bound right now. */
export function portBindable(port: number): Promise<boolean> {
  return new Promise((res) => {
    const srv = createServer();
    srv.once('error', () => res(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => res(true)));
  });
}

/** Waits until a port can be bound again (a restart on the same port must not race the old one). */
export async function waitPortFree(port: number, timeoutMs = 30_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await portBindable(port))) {
    if (Date.now() > end) throw new Error(`port 127.0.0.1:${port} still in use after ${timeoutMs} ms`);
    await sleep(200);
  }
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * Polls check() every 250 ms until true; fails early when the process dies, naming `what` and
 * why (exited, or not ready in time) with the last lines of its log.
 */
export async function waitUntilReady(
  what: string,
  proc: Tracked,
  check: () => Promise<boolean>,
  timeoutMs: number
): Promise<void> {
  const end = Date.now() + timeoutMs;
  let exit: string | undefined;
  void proc.exited.then((e) => (exit = e));
  for (;;) {
    if (await check()) return;
    if (exit !== undefined || Date.now() > end) {
      const why = exit !== undefined ? `exited (${exit})` : `not ready after ${timeoutMs / 1000} s`;
      throw new Error(`${what} ${why}; last lines of ${proc.logFile}:\n${await tailFile(proc.logFile, 25)}`);
    }
    await sleep(250);
  }
}
