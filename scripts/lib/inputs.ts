/** Validation of command-line input: one clear line naming the problem, before anything starts. */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { FleetError, parseFleet } from '../../runbook/fleet';
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

/** Reads and validates the fleet file; checks that every file it names exists, before anything starts. */
export async function loadFleet(file: string): Promise<Fleet> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new ExitError(`${file}: cannot read the fleet file (${(err as NodeJS.ErrnoException).code ?? String(err)})`);
  }
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
  for (const [field, p] of files) {
    if (p === undefined) continue;
    try {
      await readFile(p);
    } catch {
      throw new ExitError(`${file}: ${field}: file ${p} does not exist or cannot be read`);
    }
  }
  return fleet;
}

export interface UpgradeFlags {
  version?: string;
  fleet: string;
  maxParallel?: string;
  allowDowngrade?: boolean;
  dbMigration?: string;
  uiVersion?: string;
  forceCrdReapply?: boolean;
}

export function upgradeOptions(flags: UpgradeFlags): UpgradeOptions {
  return {
    targetVersion: versionOption('--version', flags.version),
    maxParallel: intOption('--max-parallel', flags.maxParallel, 5, 1, 200),
    allowDowngrade: flags.allowDowngrade ?? false,
    dbMigration: dbMigrationOption(flags.dbMigration),
    uiVersion: flags.uiVersion === undefined ? undefined : versionOption('--ui-version', flags.uiVersion),
    forceCrdReapply: flags.forceCrdReapply ?? false,
  };
}
