/**
 * The demo's stand-in for a site's Harbor: the sandbox's OCI registry (TLS from a test CA,
 * htpasswd, the fixture charts pushed with helm, tiny images with crane), and the fleet-file
 * fields that point the upgrade at it, credentials by reference as at a real site.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Sandbox } from '../../sandbox';
import { startOciRegistry, type OciRegistry } from '../../sandbox/secure-registry';
import { createTestCa } from '../../sandbox/test-ca';

/** The worker reads the robot account's name from this variable (set in the worker's environment). */
export const SITE_REGISTRY_USER_VAR = 'SKOALA_SITE_REGISTRY_USER';
const USER = 'robot$skoala-demo';

export interface SiteRegistry {
  registry: OciRegistry;
  /** Fleet-file fields: chartRepo (oci://), imageRegistry, registries, checkImages. */
  fleet: Record<string, unknown>;
  /** What the worker's environment needs (the username variable). */
  env: Record<string, string>;
  stop(): Promise<void>;
}

export async function startSiteRegistry(sb: Sandbox, versions: string[]): Promise<SiteRegistry> {
  const dir = path.join(sb.dir, 'site-registry');
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const ca = await createTestCa(path.join(dir, 'ca'), 'demo site CA');
  const password = randomBytes(18).toString('base64url');
  const passwordFile = path.join(dir, 'robot-password');
  await writeFile(passwordFile, `${password}\n`, { mode: 0o600 });
  const registry = await startOciRegistry({
    dir: path.join(dir, 'registry'),
    tools: sb.tools,
    ca,
    username: USER,
    password,
    versions,
    imageVersions: versions,
  });
  const access = {
    username: { env: SITE_REGISTRY_USER_VAR },
    password: { file: passwordFile },
    caFile: ca.caCert,
  };
  return {
    registry,
    fleet: {
      chartRepo: { name: 'site-harbor', url: registry.chartUrl, ...access },
      imageRegistry: registry.host,
      registries: [{ host: registry.host, ...access }],
      checkImages: true,
    },
    env: { [SITE_REGISTRY_USER_VAR]: USER },
    stop: () => registry.stop(),
  };
}
