/** The only error that becomes an exit code, at the CLI's one top-level catch. */
export class ExitError extends Error {
  constructor(
    message: string,
    readonly exitCode: number = 2
  ) {
    super(message);
    this.name = 'ExitError';
  }
}

/** Exit codes: 0 done, 1 the upgrade failed or some cluster did not upgrade, 2 bad input, 3 Temporal unreachable. */
export const EXIT = { ok: 0, upgradeFailed: 1, badInput: 2, unreachable: 3 } as const;
