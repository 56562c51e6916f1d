/** Validation of command-line input: one clear line naming the problem, before anything starts. */
import { constants } from 'node:fs';
import { access, open, stat } from 'node:fs/promises';
import path from 'node:path';
import pLimit from 'p-limit';
import { FleetError, MAX_FLEET_FILE_BYTES, parseFleet } from '../../runbook/fleet';
import type { DbMigrationMode, Fleet, UpgradeOptions } from '../../runbook/types';
import { parseVersion } from '../../runbook/version';
import { EXIT, ExitError } from './errors';

export function versionOption(flag: string, value: string | undefined): string {
  if (value === undefined) throw new ExitError(`${flag} is required, e.g. ${flag} 0.19.2`);
  const v = parseVersion(value);
  if (!v) throw new ExitError(`${flag} "${value}" is not a version: expected MAJOR.MINOR.PATCH such as 0.19.2`);
  return v;
}

export function intOption(flag: string, value: string | undefined, fallback: number, min: number, max: number): number {
  if (value === undefined) return fallback;
  if (!/^\d+$/.test(value) || Number(value) < min || Number(value) > max) {
    throw new ExitError(`${flag} "${value}" must be a whole number from ${min} to ${max}`);
  }
  return Number(value);
}

export function dbMigrationOption(value: string | undefined): DbMigrationMode {
  const v = value ?? 'auto';
  if (v !== 'auto' && v !== 'always' && v !== 'never')
    throw new ExitError(`--db-migration "${v}" must be auto, always or never`);
  return v;
}

/** Files named by the fleet checked at once: enough to keep the disk busy, few enough for the fd limit. */
const FILE_CHECKS_AT_ONCE = 32;

const mib = (bytes: number) => `${Number((bytes / 1024 / 1024).toFixed(1))} MiB`;
const errCode = (err: unknown) => (err as NodeJS.ErrnoException).code ?? String(err);

/** At most `max` bytes of `file`, or undefined if it has more (a FIFO or device has no size to stat). */
async function readAtMost(file: string, max: number): Promise<Buffer | undefined> {
  const fh = await open(file, 'r');
  try {
    const buf = Buffer.alloc(max + 1);
    let n = 0;
    while (n < buf.length) {
      const { bytesRead } = await fh.read(buf, n, buf.length - n);
      if (bytesRead === 0) break;
      n += bytesRead;
    }
    return n > max ? undefined : buf.subarray(0, n);
  } finally {
    await fh.close();
  }
}

/** Why `p` cannot be used as a file, or undefined if it can. */
async function fileProblem(p: string): Promise<string | undefined> {
  try {
    await access(p, constants.R_OK);
    if ((await stat(p)).isDirectory()) return `${p} is a directory, not a file`;
    return undefined;
  } catch {
    return `file ${p} does not exist or cannot be read`;
  }
}

/** Reads and validates the fleet file; checks that every file it names exists, before anything starts. */
export async function loadFleet(file: string): Promise<Fleet> {
  const tooBig = (size?: number) => {
    const is = size === undefined ? 'more than' : `${mib(size)} (${size} bytes), more than`;
    return new ExitError(
      `${file}: the fleet file is ${is} the ${mib(MAX_FLEET_FILE_BYTES)} limit; split the fleet file`
    );
  };
  let data: Buffer | undefined;
  try {
    // By size first: reading and parsing a huge file would take a minute before saying anything.
    const { size } = await stat(file);
    if (size > MAX_FLEET_FILE_BYTES) throw tooBig(size);
    data = await readAtMost(file, MAX_FLEET_FILE_BYTES);
  } catch (err) {
    if (err instanceof ExitError) throw err;
    throw new ExitError(`${file}: cannot read the fleet file (${errCode(err)})`);
  }
  if (data === undefined) throw tooBig();
  const text = data.toString('utf8');
  const dir = path.dirname(path.resolve(file));
  let fleet: Fleet;
  try {
    fleet = parseFleet(text, file, (p) => path.resolve(dir, p));
  } catch (err) {
    if (err instanceof FleetError) throw new ExitError(err.message, EXIT.badInput);
    throw err;
  }
  const files: [string, string | undefined][] = [
    ['controlPlane.kubeconfig', fleet.controlPlane.kubeconfig],
    ...fleet.workers.map((w, i): [string, string | undefined] => [`workers[${i}].kubeconfig`, w.kubeconfig]),
    ['dbMigrationJob', fleet.dbMigrationJob],
    ...fleet.extraCrds.map((f, i): [string, string] => [`extraCrds[${i}]`, f]),
    ...fleet.valuesFiles.skoala.map((f, i): [string, string] => [`valuesFiles.skoala[${i}]`, f]),
    ...fleet.valuesFiles.skoalaInit.map((f, i): [string, string] => [`valuesFiles.skoalaInit[${i}]`, f]),
  ];
  // Checked, not read (thousands of kubeconfigs), each path once (workers often share one).
  const limit = pLimit(FILE_CHECKS_AT_ONCE);
  const checked = new Map<string, Promise<string | undefined>>();
  const check = (p: string) => {
    let c = checked.get(p);
    if (!c) checked.set(p, (c = limit(() => fileProblem(p))));
    return c;
  };
  const problems = await Promise.all(files.map(([, p]) => (p === undefined ? undefined : check(p))));
  const first = problems.findIndex((p) => p !== undefined);
  if (first >= 0) throw new ExitError(`${file}: ${files[first]?.[0]}: ${problems[first]}`);
  return fleet;
}

export interface UpgradeFlags {
  version?: string;
  fleet: string;
  maxParallel?: string;
  allowDowngrade?: boolean;
  allowInstall?: boolean;
  dbMigration?: string;
  uiVersion?: string;
  forceCrdReapply?: boolean;
  retryFailed?: boolean;
}

export function upgradeOptions(flags: UpgradeFlags): UpgradeOptions {
  return {
    targetVersion: versionOption('--version', flags.version),
    maxParallel: intOption('--max-parallel', flags.maxParallel, 5, 1, 200),
    allowDowngrade: flags.allowDowngrade ?? false,
    allowInstall: flags.allowInstall ?? false,
    dbMigration: dbMigrationOption(flags.dbMigration),
    uiVersion: flags.uiVersion === undefined ? undefined : versionOption('--ui-version', flags.uiVersion),
    forceCrdReapply: flags.forceCrdReapply ?? false,
    ...(flags.retryFailed ? { retryFailed: true } : {}),
  };
}
