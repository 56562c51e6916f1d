// The secured artifact sources with the real clients: an HTTPS chart repository with basic auth
// (node:https, test CA) and distribution's OCI registry with TLS + htpasswd, filled by helm push
// and crane. Checks what a client observes: exit codes and error text.
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  MISSING_IMAGE,
  startOciRegistry,
  startSecureChartRepo,
  VERSION_WITH_MISSING_IMAGE,
  type OciRegistry,
  type SecureChartRepo,
} from '../../sandbox/secure-registry';
import { createTestCa } from '../../sandbox/test-ca';
import { ensureTools, type ToolPaths } from '../../sandbox/tools';

const USER = 'skoala-ci';
const PASSWORD = 'pw-0f9c2e-not-a-real-secret';
// 0.19.2 for the happy path; 0.27.2 is the version whose hive image is left out.
const IMAGE_VERSIONS = ['0.19.2', VERSION_WITH_MISSING_IMAGE];

let tools: ToolPaths;
let dir: string;
let repo: SecureChartRepo;
let reg: OciRegistry;
let caFile: string;
let clients = 0;

interface Run {
  exitCode: number | undefined;
  stdout: string;
  stderr: string;
  command: string;
}

async function run(file: string, args: string[], env: NodeJS.ProcessEnv, input?: string): Promise<Run> {
  const r = await execa(file, args, { env, input, reject: false, timeout: 60_000 });
  return { exitCode: r.exitCode, stdout: String(r.stdout), stderr: String(r.stderr), command: r.command };
}

/** A fresh, isolated helm (own config/cache/data): no state leaks between tests. */
function newHelm(): (args: string[], input?: string) => Promise<Run> {
  const home = join(dir, 'clients', `helm-${++clients}`);
  const env = {
    HELM_CONFIG_HOME: join(home, 'config'),
    HELM_CACHE_HOME: join(home, 'cache'),
    HELM_DATA_HOME: join(home, 'data'),
  };
  return (args, input) => run(tools.helm, args, env, input);
}

/** A fresh crane with its own docker config; trusts the test CA through SSL_CERT_FILE. */
function newCrane(): (args: string[], input?: string) => Promise<Run> {
  const env = { DOCKER_CONFIG: join(dir, 'clients', `docker-${++clients}`), SSL_CERT_FILE: caFile };
  return (args, input) => run(tools.crane, args, env, input);
}

beforeAll(async () => {
  // A cold Go build cache makes the first crane + registry build take minutes.
  tools = await ensureTools({ only: ['helm', 'crane', 'registry'], log: () => undefined });
  dir = await mkdtemp(join(tmpdir(), 'skoala-secure-registry-test-'));
  const ca = await createTestCa(join(dir, 'ca'));
  caFile = ca.caCert;
  const common = { ca, username: USER, password: PASSWORD };
  [repo, reg] = await Promise.all([
    startSecureChartRepo({ ...common, dir: join(dir, 'chart-repo'), helm: tools.helm }),
    startOciRegistry({ ...common, dir: join(dir, 'oci'), tools, imageVersions: IMAGE_VERSIONS }),
  ]);
}, 900_000);

afterAll(async () => {
  await Promise.all([repo?.stop(), reg?.stop()]);
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('secure chart repository (HTTPS + basic auth)', () => {
  it('answers 401 with a Basic challenge without credentials', async () => {
    const u = new URL('/index.yaml', repo.url);
    const ca = await readFile(caFile);
    const { status, challenge } = await new Promise<{ status: number; challenge: string }>((res, rej) => {
      const req = request({ host: u.hostname, port: Number(u.port), path: u.pathname, ca }, (r) => {
        r.resume();
        res({ status: r.statusCode ?? 0, challenge: String(r.headers['www-authenticate'] ?? '') });
      });
      req.on('error', rej);
      req.end();
    });
    expect(status).toBe(401);
    expect(challenge).toMatch(/^Basic realm="/);
  });

  it('helm with the right credentials and CA adds the repo and shows a chart', async () => {
    const helm = newHelm();
    const add = await helm(
      ['repo', 'add', 'secure', repo.url, '--username', USER, '--password-stdin', '--ca-file', caFile],
      PASSWORD
    );
    expect(add.stderr).toBe('');
    expect(add.exitCode).toBe(0);
    const show = await helm(['show', 'chart', 'secure/skoala', '--version', '0.19.2']);
    expect(show.exitCode).toBe(0);
    expect(show.stdout).toMatch(/^name: skoala$/m);
    expect(show.stdout).toMatch(/^version: 0\.19\.2$/m);
    // The password went through stdin: it is in helm's repositories.yaml, never in argv.
    expect(add.command).not.toContain(PASSWORD);
  });

  it('a wrong password fails with 401', async () => {
    const helm = newHelm();
    const add = await helm(
      ['repo', 'add', 'secure', repo.url, '--username', USER, '--password-stdin', '--ca-file', caFile],
      'wrong-password'
    );
    expect(add.exitCode).not.toBe(0);
    expect(add.stderr).toContain('401');
  });

  it('without the CA, TLS verification fails', async () => {
    const helm = newHelm();
    const add = await helm(['repo', 'add', 'secure', repo.url, '--username', USER, '--password-stdin'], PASSWORD);
    expect(add.exitCode).not.toBe(0);
    expect(add.stderr).toMatch(/x509: certificate signed by unknown authority/);
  });
});

describe('OCI registry (distribution, TLS + htpasswd)', () => {
  it('serves the charts to a logged-in helm that is given the CA', async () => {
    expect(reg.host).toMatch(/^127\.0\.0\.1:\d+$/);
    expect(reg.chartUrl).toBe(`oci://${reg.host}/charts`);
    const helm = newHelm();
    const login = await helm(
      ['registry', 'login', reg.host, '--username', USER, '--password-stdin', '--ca-file', caFile],
      PASSWORD
    );
    expect(login.exitCode).toBe(0);
    for (const chart of ['skoala', 'skoala-init']) {
      const show = await helm([
        'show',
        'chart',
        `${reg.chartUrl}/${chart}`,
        '--version',
        '0.19.2',
        '--ca-file',
        caFile,
      ]);
      expect(show.exitCode).toBe(0);
      expect(show.stdout).toMatch(new RegExp(`^name: ${chart}$`, 'm'));
      expect(show.stdout).toMatch(/^version: 0\.19\.2$/m);
    }
    // Every fixture version was pushed, not only the image versions.
    const other = await helm(['show', 'chart', `${reg.chartUrl}/skoala`, '--version', '0.53.0', '--ca-file', caFile]);
    expect(other.exitCode).toBe(0);
  });

  it('refuses a wrong password at login, and anonymous pulls', async () => {
    const helm = newHelm();
    const login = await helm(
      ['registry', 'login', reg.host, '--username', USER, '--password-stdin', '--ca-file', caFile],
      'wrong-password'
    );
    expect(login.exitCode).not.toBe(0);
    expect(login.stderr).toMatch(/401|unauthorized/i);
    const show = await helm(['show', 'chart', `${reg.chartUrl}/skoala`, '--version', '0.19.2', '--ca-file', caFile]);
    expect(show.exitCode).not.toBe(0);
    // helm answers the registry's 401 challenge only with stored credentials, and has none.
    expect(show.stderr).toContain('basic credential not found');
  });

  it('without the CA, helm cannot reach it', async () => {
    const helm = newHelm();
    const login = await helm(['registry', 'login', reg.host, '--username', USER, '--password-stdin'], PASSWORD);
    expect(login.exitCode).not.toBe(0);
    expect(login.stderr).toMatch(/x509: certificate signed by unknown authority/);
  });

  it('holds every image the charts render, except MISSING_IMAGE', async () => {
    const crane = newCrane();
    const anon = await crane(['digest', `${reg.host}/skoala/hive:v0.19.2`]);
    expect(anon.exitCode).not.toBe(0);
    expect(anon.stderr).toMatch(/UNAUTHORIZED|401/);

    expect((await crane(['auth', 'login', reg.host, '-u', USER, '--password-stdin'], PASSWORD)).exitCode).toBe(0);
    const found = await crane(['digest', `${reg.host}/skoala/hive:v0.19.2`]);
    expect(found.exitCode).toBe(0);
    expect(found.stdout).toMatch(/^sha256:[0-9a-f]{64}$/);

    expect(MISSING_IMAGE).toBe('skoala/hive:v0.27.2');
    expect(reg.missingImage).toBe(MISSING_IMAGE);
    const missing = await crane(['digest', `${reg.host}/${MISSING_IMAGE}`]);
    expect(missing.exitCode).not.toBe(0);
    expect(missing.stderr).toContain('MANIFEST_UNKNOWN');
    const tags = await crane(['ls', `${reg.host}/skoala/hive`]);
    expect(tags.stdout.trim().split('\n').sort()).toEqual(['v0.19.2']);

    // The rest of 0.27.2 is there, including tags that are not the chart version.
    for (const ref of ['skoala/sesame:v0.27.2', 'skoala/ui:v0.8.0', 'skoala/gateway-api-admission:v0.27.2']) {
      expect(reg.images).toContain(ref);
      expect((await crane(['digest', `${reg.host}/${ref}`])).exitCode).toBe(0);
    }
    expect(reg.images).not.toContain(MISSING_IMAGE);
    expect(reg.images).toEqual([
      'skoala/gateway-api-admission:v0.27.2',
      'skoala/hive:v0.19.2',
      'skoala/nacos-operator:v0.19.2',
      'skoala/nacos-operator:v0.27.2',
      'skoala/sentinel-operator:v0.19.2',
      'skoala/sentinel-operator:v0.27.2',
      'skoala/sesame:v0.19.2',
      'skoala/sesame:v0.27.2',
      'skoala/skoala-agent:v0.19.2',
      'skoala/skoala-agent:v0.27.2',
      'skoala/ui:v0.8.0',
    ]);
  });
});
