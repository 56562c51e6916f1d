/** A scripted CommandRunner for unit tests: records every call, answers from a script, in order. */
import { ApplicationFailure } from '@temporalio/common';
import type { CommandRunner, RunOptions, Tool } from '../../activities/exec';

export type Reply = string | Error | ((argv: string[]) => string | Promise<string>);

export interface Call {
  tool: Tool;
  argv: string[];
  opts?: RunOptions;
}

export function recorder(...replies: Reply[]): { run: CommandRunner; calls: Call[]; argvs: () => string[][] } {
  const calls: Call[] = [];
  const run: CommandRunner = async (tool, argv, opts) => {
    calls.push({ tool, argv: [...argv], ...(opts ? { opts } : {}) });
    const reply = replies.shift();
    if (reply === undefined) throw new Error(`unexpected command: ${tool} ${argv.join(' ')}`);
    if (reply instanceof Error) throw reply;
    return { stdout: typeof reply === 'function' ? await reply(argv) : reply, stderr: '' };
  };
  return { run, calls, argvs: () => calls.map((c) => [c.tool, ...c.argv]) };
}

/** The ApplicationFailure a promise rejects with; fails the test if it resolves or rejects otherwise. */
export async function failureOf(p: Promise<unknown>): Promise<ApplicationFailure> {
  try {
    await p;
  } catch (err) {
    if (err instanceof ApplicationFailure) return err;
    throw err;
  }
  throw new Error('it succeeded');
}
