/**
 * Debian packages the tests use that no package registry of ours ships: chromium (UI tests),
 * docker-compose (v1: validates docker-compose.yml without a Docker engine), postgresql (the
 * production-shaped Temporal server), and for real nodes (sandbox/node.ts, images.ts): containerd,
 * runc, the CNI plugins, and gcc with libc6-dev (the fixture images are static binaries); for the
 * worker's image: mmdebstrap and podman. `npm test` installs the missing ones when it runs as root,
 * as on CI; elsewhere it stops at once with one line naming them.
 */
import { execa } from 'execa';
import { existsSync, readdirSync } from 'node:fs';

export interface SystemPackage {
  name: string;
  /** True when it is installed. */
  present(): boolean;
}

const onPath = (bin: string) => (process.env.PATH ?? '').split(':').some((dir) => dir && existsSync(`${dir}/${bin}`));

export const SYSTEM_PACKAGES: SystemPackage[] = [
  { name: 'chromium', present: () => existsSync('/usr/bin/chromium') },
  { name: 'docker-compose', present: () => onPath('docker-compose') },
  {
    name: 'postgresql',
    present: () =>
      (existsSync('/usr/lib/postgresql') &&
        readdirSync('/usr/lib/postgresql').some((v) => existsSync(`/usr/lib/postgresql/${v}/bin/initdb`))) ||
      existsSync('/usr/local/bin/initdb'),
  },
  { name: 'containerd', present: () => onPath('containerd') },
  { name: 'runc', present: () => onPath('runc') || existsSync('/usr/sbin/runc') },
  { name: 'containernetworking-plugins', present: () => existsSync('/usr/lib/cni/bridge') },
  { name: 'gcc', present: () => onPath('gcc') },
  // libc.a: gcc -static links the fixture images' binaries against it.
  {
    name: 'libc6-dev',
    present: () => existsSync(`/usr/lib/${process.arch === 'arm64' ? 'aarch64' : 'x86_64'}-linux-gnu/libc.a`),
  },
  // The worker's container image (sandbox/worker-image.ts): a Debian rootfs, then podman build.
  { name: 'mmdebstrap', present: () => onPath('mmdebstrap') },
  { name: 'podman', present: () => onPath('podman') },
];

export const missingPackages = (packages = SYSTEM_PACKAGES): string[] =>
  packages.filter((p) => !p.present()).map((p) => p.name);

/** Installs what is missing (root only; the package lists are fetched only if the first try fails). */
export async function ensureSystemPackages(
  log: (line: string) => void,
  packages = SYSTEM_PACKAGES,
  uid = process.getuid?.()
): Promise<void> {
  const missing = missingPackages(packages);
  if (missing.length === 0) return;
  const command = `apt-get install -y --no-install-recommends ${missing.join(' ')}`;
  if (uid !== 0)
    throw new Error(`missing Debian package(s) ${missing.join(', ')}: install them first (as root: ${command})`);
  log(`[tools] Debian packages ${missing.join(', ')}: installing`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const install = ['install', '-y', '--no-install-recommends', ...missing];
  const first = await execa('apt-get', install, { env, reject: false, stdin: 'ignore' });
  if (first.exitCode !== 0) {
    await execa('apt-get', ['update'], { env, stdin: 'ignore' });
    await execa('apt-get', install, { env, stdin: 'ignore' });
  }
  const still = missingPackages(packages);
  if (still.length > 0) throw new Error(`${command} left ${still.join(', ')} missing`);
}
