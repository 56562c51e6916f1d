/**
 * deploy/chart rendered by the real helm: what a site relies on without running it (the e2e test
 * test/e2e/worker-image.test.ts installs it in a real-node cluster and drives an upgrade).
 */
import { execa } from 'execa';
import path from 'node:path';
import { parseAllDocuments } from 'yaml';
import { describe, expect, it } from 'vitest';
import { toolPaths } from '../../sandbox/tools';
import { ROOT } from '../helpers/worker-process';

const CHART = path.join(ROOT, 'deploy', 'chart');
const helm = toolPaths().helm;

interface Manifest {
  kind: string;
  metadata: { name: string; annotations?: Record<string, string> };
  spec: Record<string, unknown>;
}

async function render(...sets: string[]): Promise<Manifest[]> {
  const { stdout } = await execa(helm, ['template', 'w', CHART, ...sets.flatMap((s) => ['--set', s])]);
  return parseAllDocuments(stdout)
    .map((d) => d.toJS() as Manifest | null)
    .filter((m): m is Manifest => m !== null);
}

async function refusal(...sets: string[]): Promise<string> {
  const r = await execa(helm, ['template', 'w', CHART, ...sets.flatMap((s) => ['--set', s])], { reject: false });
  expect(r.exitCode).not.toBe(0);
  return r.stderr;
}

interface PodSpec {
  hostNetwork: boolean;
  automountServiceAccountToken: boolean;
  securityContext: { runAsNonRoot: boolean; runAsUser: number };
  containers: {
    image: string;
    env: { name: string; value?: string; valueFrom?: { secretKeyRef: { name: string; key: string } } }[];
    securityContext: { readOnlyRootFilesystem: boolean; allowPrivilegeEscalation: boolean };
    livenessProbe: { httpGet: { path: string } };
    readinessProbe: { httpGet: { path: string } };
    volumeMounts: { name: string; mountPath: string; readOnly?: boolean }[];
  }[];
  volumes: ({ name: string } & Record<string, unknown>)[];
}
const podSpec = (ms: Manifest[]): PodSpec => {
  const d = ms.find((m) => m.kind === 'Deployment');
  if (!d) throw new Error('no Deployment');
  return (d.spec as { template: { spec: PodSpec } }).template.spec;
};
const env = (p: PodSpec) =>
  Object.fromEntries((p.containers[0]?.env ?? []).map((e) => [e.name, e.value ?? e.valueFrom]));

describe('deploy/chart', () => {
  it('passes helm lint', async () => {
    const r = await execa(helm, ['lint', CHART, '--set', 'image.tag=t'], { reject: false });
    expect(r.stdout).toContain('0 chart(s) failed');
  });

  it('refuses to render without an image tag, or with credentials but no Secret', async () => {
    expect(await refusal()).toContain("image.tag: name the worker image's tag");
    expect(await refusal('image.tag=t', 'temporal.credentials.apiKey=true')).toContain(
      'temporal.credentials.secretName: name the Secret'
    );
  });

  it('runs non-root on a read-only root, probes /livez and /readyz, the site read-only at /site', async () => {
    const p = podSpec(await render('image.tag=t'));
    const c = p.containers[0];
    expect(c?.image).toBe('skoala-upgrade-worker:t');
    expect(p.securityContext).toMatchObject({ runAsNonRoot: true, runAsUser: 1000 });
    expect(c?.securityContext).toMatchObject({ readOnlyRootFilesystem: true, allowPrivilegeEscalation: false });
    expect(p.automountServiceAccountToken).toBe(false);
    expect(p.hostNetwork).toBe(false);
    expect([c?.livenessProbe.httpGet.path, c?.readinessProbe.httpGet.path]).toEqual(['/livez', '/readyz']);
    expect(c?.volumeMounts).toContainEqual({ name: 'site', mountPath: '/site', readOnly: true });
    expect(env(p)).toMatchObject({ SKOALA_TASK_QUEUE: 'skoala-upgrade', SKOALA_HEALTH_PORT: '8089', HOME: '/tmp' });
  });

  it('keeps backups on a PersistentVolumeClaim that outlives the release, unless a claim or a host path is named', async () => {
    const own = await render('image.tag=t');
    const pvc = own.find((m) => m.kind === 'PersistentVolumeClaim');
    expect(pvc?.metadata).toMatchObject({ name: 'w-backups', annotations: { 'helm.sh/resource-policy': 'keep' } });
    expect(podSpec(own).volumes).toContainEqual({ name: 'backups', persistentVolumeClaim: { claimName: 'w-backups' } });
    const named = await render('image.tag=t', 'backups.existingClaim=site-backups');
    expect(named.some((m) => m.kind === 'PersistentVolumeClaim')).toBe(false);
    expect(podSpec(named).volumes).toContainEqual({
      name: 'backups',
      persistentVolumeClaim: { claimName: 'site-backups' },
    });
    const host = await render('image.tag=t', 'backups.hostPath=/srv/b');
    expect(podSpec(host).volumes).toContainEqual({ name: 'backups', hostPath: { path: '/srv/b', type: 'Directory' } });
  });

  it('takes the Temporal API key and TLS files from the site Secret, never from values', async () => {
    const p = podSpec(
      await render(
        'image.tag=t',
        'temporal.credentials.secretName=temporal-creds',
        'temporal.credentials.apiKey=true',
        'temporal.credentials.clientCert=true',
        'temporal.credentials.serverCA=true',
        'temporal.tlsServerName=temporal.site'
      )
    );
    expect(env(p)).toMatchObject({
      TEMPORAL_API_KEY: { secretKeyRef: { name: 'temporal-creds', key: 'api-key' } },
      TEMPORAL_TLS_CLIENT_CERT_PATH: '/etc/skoala-upgrade/temporal/tls.crt',
      TEMPORAL_TLS_CLIENT_KEY_PATH: '/etc/skoala-upgrade/temporal/tls.key',
      TEMPORAL_TLS_SERVER_CA_CERT_PATH: '/etc/skoala-upgrade/temporal/ca.crt',
      TEMPORAL_TLS_SERVER_NAME: 'temporal.site',
    });
    expect(p.volumes).toContainEqual({
      name: 'temporal-credentials',
      secret: { secretName: 'temporal-creds', defaultMode: 0o440 },
    });
  });
});
