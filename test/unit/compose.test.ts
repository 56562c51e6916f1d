/** docker-compose.yml: the four services, pinned Temporal images, a worker running `npm run worker`. */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { describe, expect, it } from 'vitest';

interface Service {
  image?: string;
  command?: string | string[];
  working_dir?: string;
  environment?: Record<string, string> | string[];
  volumes?: string[];
  ports?: string[];
  depends_on?: string[];
}
interface ComposeFile {
  version?: string;
  name?: string;
  services: Record<string, Service>;
  volumes?: Record<string, unknown>;
}

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const compose = parse(readFileSync(path.join(ROOT, 'docker-compose.yml'), 'utf8')) as ComposeFile;

/** `environment` as a map, whichever form the file uses. */
function envOf(s: Service): Record<string, string> {
  const e = s.environment ?? {};
  if (!Array.isArray(e)) return e;
  return Object.fromEntries(e.map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]));
}

const service = (name: string): Service => {
  const s = compose.services[name];
  if (!s) throw new Error(`no service ${name}`);
  return s;
};

describe('docker-compose.yml', () => {
  it('is v1-compatible: no top-level name', () => {
    expect(compose.name).toBeUndefined();
  });

  it('has PostgreSQL, the Temporal server, its UI and the worker', () => {
    expect(Object.keys(compose.services).sort()).toEqual(['postgresql', 'temporal', 'temporal-ui', 'worker']);
    expect(service('postgresql').image).toBe('postgres:16');
    expect(service('temporal').image).toMatch(/^temporalio\/auto-setup:1\.28(\.\d+)?$/);
    expect(service('temporal-ui').image).toMatch(/^temporalio\/ui:2\.\d+\.\d+$/);
    expect(service('worker').image).toBe('node:20-bookworm');
  });

  it('pins every image, Temporal ones included (no latest, no bare name)', () => {
    const images = Object.values(compose.services).map((s) => s.image ?? '');
    expect(images.filter((i) => i.startsWith('temporalio/'))).toHaveLength(2);
    for (const image of images) {
      const tag = image.split(':')[1];
      expect(tag, image).toBeTruthy();
      expect(tag, image).not.toBe('latest');
    }
  });

  it('the server stores its state in PostgreSQL', () => {
    expect(envOf(service('temporal'))).toMatchObject({
      DB: 'postgres12',
      DB_PORT: '5432',
      POSTGRES_SEEDS: 'postgresql',
      POSTGRES_USER: envOf(service('postgresql')).POSTGRES_USER,
      POSTGRES_PWD: envOf(service('postgresql')).POSTGRES_PASSWORD,
    });
  });

  it('the UI talks to the server and listens on 8080', () => {
    expect(envOf(service('temporal-ui')).TEMPORAL_ADDRESS).toBe('temporal:7233');
    expect(service('temporal-ui').ports).toContain('8080:8080');
  });

  it('the worker runs `npm run worker` from the mounted checkout', () => {
    const worker = service('worker');
    expect(worker.command).toBe('npm run worker');
    expect(worker.working_dir).toBe('/app');
    expect(worker.volumes).toContain('.:/app');
    expect(worker.depends_on).toContain('temporal');
  });

  it('the worker finds the server, helm, kubectl and its backup volume', () => {
    const worker = service('worker');
    const env = envOf(worker);
    expect(env.TEMPORAL_ADDRESS).toBe('temporal:7233');
    // host:target[:mode], where the host part may hold `${VAR:-default}`
    const mounts = (worker.volumes ?? []).map((v) => /^(.*?):(\/[^:]*)(?::(?:ro|rw))?$/.exec(v)?.slice(1) ?? []);
    const mountedAt = (p: string) => mounts.find(([, target]) => target !== undefined && p.startsWith(`${target}/`));
    for (const bin of [env.SKOALA_HELM, env.SKOALA_KUBECTL]) {
      expect(bin, 'helm/kubectl path').toMatch(/^\//);
      expect(mountedAt(bin as string), `${bin} is on a mounted volume`).toBeDefined();
    }
    const backups = mounts.find(([, target]) => target === env.SKOALA_BACKUP_DIR);
    expect(backups?.[0], 'backup dir on a named volume').toBeDefined();
    expect(Object.keys(compose.volumes ?? {})).toContain(backups?.[0]);
  });

  it('kubeconfigs are mounted read-only', () => {
    const kube = (service('worker').volumes ?? []).find((v) => v.startsWith('./kubeconfigs:'));
    expect(kube).toMatch(/:ro$/);
  });
});
