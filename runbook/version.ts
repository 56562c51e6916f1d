import semver from 'semver';

/** A strict `MAJOR.MINOR.PATCH[-pre]` engine version, without a leading `v`. */
export type Version = string;

/** Returns the normalised version, or undefined when `text` is not a strict semver (no `v`, no spaces, no flags). */
export function parseVersion(text: string): Version | undefined {
  // semver.valid() is strict by default but tolerates a leading "v" and "=": the engine's chart versions have neither.
  if (!/^\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$/.test(text)) return undefined;
  return semver.valid(text) ?? undefined;
}

export const compareVersions = (a: Version, b: Version): number => semver.compare(a, b);
export const isBelow = (a: Version, b: Version): boolean => semver.lt(a, b);
export const isAtLeast = (a: Version, b: Version): boolean => semver.gte(a, b);

/** Kubernetes server versions come as `v1.33.13` or `v1.24.17-gke.100`: keep major.minor.patch. */
export function parseKubeVersion(gitVersion: string): Version | undefined {
  const m = /^v?(\d+)\.(\d+)\.(\d+)/.exec(gitVersion.trim());
  return m ? `${m[1]}.${m[2]}.${m[3]}` : undefined;
}
