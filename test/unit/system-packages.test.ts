/** npm test's setup step and the Debian packages it needs: present, installed when root, or one line. */
import { describe, expect, it } from 'vitest';
import { ensureSystemPackages, missingPackages, SYSTEM_PACKAGES } from '../../scripts/lib/system-packages';

describe('system packages', () => {
  it('names chromium, docker-compose and postgresql, and finds them installed (the setup step ran)', () => {
    expect(SYSTEM_PACKAGES.map((p) => p.name)).toEqual([
      'chromium',
      'docker-compose',
      'postgresql',
      'containerd',
      'runc',
      'containernetworking-plugins',
      'gcc',
      'libc6-dev',
      'mmdebstrap',
      'podman',
    ]);
    expect(missingPackages()).toEqual([]);
  });

  it('not root, a package missing: one line naming it and the command, nothing installed', async () => {
    const lines: string[] = [];
    const absent = [{ name: 'no-such-package', present: () => false }];
    await expect(ensureSystemPackages((l) => lines.push(l), absent, 1000)).rejects.toThrow(
      /^missing Debian package\(s\) no-such-package: install them first \(as root: apt-get install -y --no-install-recommends no-such-package\)$/
    );
    expect(lines).toEqual([]);
  });

  it('nothing missing: nothing run, whoever runs it', async () => {
    const lines: string[] = [];
    await ensureSystemPackages((l) => lines.push(l), [{ name: 'x', present: () => true }], 1000);
    expect(lines).toEqual([]);
  });
});
