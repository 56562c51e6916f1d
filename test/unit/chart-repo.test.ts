/**
 * Chart sources with credentials and TLS: the helm argument arrays (runbook/chart-repo.ts), the
 * fleet fields that name them (runbook/fleet.ts), the per-host session that adds the repository or
 * logs into the registry with the password on stdin (activities/chart-repo.ts), and failures that
 * tell the chart source's TLS and 401 errors apart from the cluster's (activities/errors.ts).
 */
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { chartRepoSession, chartSource, pullChart, readSecret } from '../../activities/chart-repo';
import { classifyChartSourceFailure, commandFailure, type ChartSource } from '../../activities/errors';
import type { CommandRunner, RunOptions, Tool } from '../../activities/exec';
import {
  chartRef,
  chartRepoNotes,
  chartTlsFlags,
  helmPullChart,
  helmRegistryLogin,
  helmRepoAdd,
  helmShowChart,
  helmTemplate,
  helmTlsFlags,
  repoHost,
  repoSetupCommands,
} from '../../runbook/chart-repo';
import { FleetError, parseFleet } from '../../runbook/fleet';
import { chartArchive, pullInto, sha256Hex } from '../helpers/chart-archive';
import { failureOf } from '../helpers/recorder';
import type { ChartRepo } from '../../runbook/types';

const SECRET = 'hunter2-Very-Secret';

const HTTP_REPO: ChartRepo = { name: 'skoala', url: 'https://release.daocloud.io/chartrepo/skoala' };
const HARBOR: ChartRepo = {
  name: 'harbor',
  url: 'https://harbor.local/chartrepo/skoala',
  username: { env: 'HARBOR_USER' },
  password: { env: 'HARBOR_PASSWORD' },
  caFile: '/etc/ssl/harbor-ca.pem',
};
const OCI: ChartRepo = {
  name: 'oci',
  url: 'oci://harbor.local:8443/charts/',
  username: { file: '/run/secrets/harbor-user' },
  password: { file: '/run/secrets/harbor-password' },
  caFile: '/etc/ssl/harbor-ca.pem',
};
const OCI_ANON: ChartRepo = { name: 'oci', url: 'oci://harbor.local:8443/charts' };

describe('chartRef', () => {
  it('names an HTTP(S) repository chart <repo>/<chart>', () => {
    expect(chartRef(HTTP_REPO, 'skoala-init')).toBe('skoala/skoala-init');
    expect(chartRef({ name: 'plain', url: 'http://charts.local/x/' }, 'skoala')).toBe('plain/skoala');
  });

  it.each([
    ['oci://harbor.local:8443/charts', 'oci://harbor.local:8443/charts/skoala-init'],
    ['oci://harbor.local:8443/charts/', 'oci://harbor.local:8443/charts/skoala-init'],
    ['oci://harbor.local:8443/charts//', 'oci://harbor.local:8443/charts/skoala-init'],
    ['OCI://harbor.local/a/b', 'OCI://harbor.local/a/b/skoala-init'],
  ])('names an OCI chart by its full reference: %s', (url, ref) => {
    expect(chartRef({ name: 'any', url }, 'skoala-init')).toBe(ref);
  });
});

describe('repoHost', () => {
  it.each([
    ['https://harbor.local/chartrepo/skoala', 'harbor.local'],
    ['oci://harbor.local:8443/charts', 'harbor.local:8443'],
    ['http://127.0.0.1:40001', '127.0.0.1:40001'],
    ['https://h.example?x=1', 'h.example'],
    ['https://h.example#frag', 'h.example'],
  ])('%s -> %s', (url, host) => {
    expect(repoHost(url)).toBe(host);
  });
});

describe('TLS flags', () => {
  it('helmTlsFlags: each file and the opt-out, nothing when none is set', () => {
    expect(helmTlsFlags({})).toEqual([]);
    expect(
      helmTlsFlags({ caFile: '/ca.pem', certFile: '/c.pem', keyFile: '/k.pem', insecureSkipTlsVerify: true })
    ).toEqual(['--ca-file', '/ca.pem', '--cert-file', '/c.pem', '--key-file', '/k.pem', '--insecure-skip-tls-verify']);
    expect(helmTlsFlags({ insecureSkipTlsVerify: false })).toEqual([]);
  });

  it('chartTlsFlags: only an OCI chart carries them (helm stored them for an HTTP repo at repo add)', () => {
    expect(chartTlsFlags(HARBOR)).toEqual([]);
    expect(chartTlsFlags(OCI)).toEqual(['--ca-file', '/etc/ssl/harbor-ca.pem']);
    expect(chartTlsFlags({ ...OCI_ANON, insecureSkipTlsVerify: true })).toEqual(['--insecure-skip-tls-verify']);
  });
});

describe('helmRepoAdd', () => {
  it('anonymous: no username, no stdin', () => {
    expect(helmRepoAdd(HTTP_REPO)).toEqual([
      'repo',
      'add',
      'skoala',
      'https://release.daocloud.io/chartrepo/skoala',
      '--force-update',
    ]);
  });

  it('with a username: the password is read from stdin, never an argument', () => {
    const argv = helmRepoAdd(HARBOR, 'ops');
    expect(argv).toEqual([
      'repo',
      'add',
      'harbor',
      'https://harbor.local/chartrepo/skoala',
      '--force-update',
      '--username',
      'ops',
      '--password-stdin',
      '--ca-file',
      '/etc/ssl/harbor-ca.pem',
    ]);
    expect(argv.some((a) => a === '--password' || a.startsWith('--password='))).toBe(false);
  });

  it('carries the client certificate and the opt-out', () => {
    expect(
      helmRepoAdd({ ...HTTP_REPO, certFile: '/c.pem', keyFile: '/k.pem', insecureSkipTlsVerify: true }).slice(5)
    ).toEqual(['--cert-file', '/c.pem', '--key-file', '/k.pem', '--insecure-skip-tls-verify']);
  });
});

describe('helmRegistryLogin', () => {
  it('logs into the host (no scheme, no path) with the password on stdin', () => {
    expect(helmRegistryLogin(OCI, 'ops')).toEqual([
      'registry',
      'login',
      'harbor.local:8443',
      '--username',
      'ops',
      '--password-stdin',
      '--ca-file',
      '/etc/ssl/harbor-ca.pem',
    ]);
  });

  it('calls the TLS opt-out --insecure, and passes the client certificate', () => {
    const argv = helmRegistryLogin(
      { ...OCI_ANON, certFile: '/c.pem', keyFile: '/k.pem', insecureSkipTlsVerify: true },
      'u'
    );
    expect(argv.slice(6)).toEqual(['--cert-file', '/c.pem', '--key-file', '/k.pem', '--insecure']);
    expect(argv).not.toContain('--insecure-skip-tls-verify');
  });
});

describe('repoSetupCommands', () => {
  it('HTTP repository with credentials: repo add with the username as a placeholder naming its source', () => {
    expect(repoSetupCommands(HARBOR)).toEqual([
      [
        'repo',
        'add',
        'harbor',
        'https://harbor.local/chartrepo/skoala',
        '--force-update',
        '--username',
        '<env HARBOR_USER>',
        '--password-stdin',
        '--ca-file',
        '/etc/ssl/harbor-ca.pem',
      ],
    ]);
  });

  it('anonymous HTTP repository: a plain repo add', () => {
    expect(repoSetupCommands(HTTP_REPO)).toEqual([
      ['repo', 'add', 'skoala', 'https://release.daocloud.io/chartrepo/skoala', '--force-update'],
    ]);
  });

  it('OCI registry with credentials: registry login, username from its file', () => {
    expect(repoSetupCommands(OCI)).toEqual([
      [
        'registry',
        'login',
        'harbor.local:8443',
        '--username',
        '<file /run/secrets/harbor-user>',
        '--password-stdin',
        '--ca-file',
        '/etc/ssl/harbor-ca.pem',
      ],
    ]);
  });

  it('anonymous OCI registry: nothing to set up', () => {
    expect(repoSetupCommands(OCI_ANON)).toEqual([]);
    expect(repoSetupCommands({ ...OCI_ANON, caFile: '/ca.pem' })).toEqual([]);
  });
});

describe('chart commands', () => {
  it('helmShowChart: HTTP repo without TLS flags, OCI with them', () => {
    expect(helmShowChart(HARBOR, 'skoala', '0.28.1')).toEqual([
      'show',
      'chart',
      'harbor/skoala',
      '--version',
      '0.28.1',
    ]);
    expect(helmShowChart(OCI, 'skoala', '0.28.1')).toEqual([
      'show',
      'chart',
      'oci://harbor.local:8443/charts/skoala',
      '--version',
      '0.28.1',
      '--ca-file',
      '/etc/ssl/harbor-ca.pem',
    ]);
  });

  it('helmPullChart: untars into the directory', () => {
    expect(helmPullChart(HTTP_REPO, 'skoala-init', '0.28.1', '/tmp/w')).toEqual([
      'pull',
      'skoala/skoala-init',
      '--version',
      '0.28.1',
      '--untar',
      '--untardir',
      '/tmp/w',
    ]);
    expect(helmPullChart({ ...OCI_ANON, insecureSkipTlsVerify: true }, 'skoala-init', '0.28.1', '/tmp/w')).toEqual([
      'pull',
      'oci://harbor.local:8443/charts/skoala-init',
      '--version',
      '0.28.1',
      '--insecure-skip-tls-verify',
      '--untar',
      '--untardir',
      '/tmp/w',
    ]);
  });

  it('helmTemplate: release, chart, version, namespace, kube version, TLS, values files in order, --set pairs', () => {
    const step = {
      release: 'skoala' as const,
      chart: 'skoala' as const,
      repo: OCI,
      version: '0.28.1',
      set: [
        ['hive.image.tag', 'v0.28.1'],
        ['global.imageRegistry', 'harbor.local:8443'],
      ] as [string, string][],
    };
    expect(helmTemplate(step, 'skoala-system', '1.29.3', ['/backup.yaml', '/ops/extra.yaml'])).toEqual([
      'template',
      'skoala',
      'oci://harbor.local:8443/charts/skoala',
      '--version',
      '0.28.1',
      '-n',
      'skoala-system',
      '--kube-version',
      '1.29.3',
      '--ca-file',
      '/etc/ssl/harbor-ca.pem',
      '-f',
      '/backup.yaml',
      '-f',
      '/ops/extra.yaml',
      '--set',
      'hive.image.tag=v0.28.1',
      '--set',
      'global.imageRegistry=harbor.local:8443',
    ]);
    expect(helmTemplate({ ...step, repo: HTTP_REPO, set: [] }, 'ns', '1.30.0', [])).toEqual([
      'template',
      'skoala',
      'skoala/skoala',
      '--version',
      '0.28.1',
      '-n',
      'ns',
      '--kube-version',
      '1.30.0',
    ]);
  });

  it("helmTemplate of the host's chart archive: the file, no version or TLS flags (nothing to fetch)", () => {
    const step = { release: 'skoala' as const, chart: 'skoala' as const, repo: OCI, version: '0.28.1', set: [] };
    expect(helmTemplate(step, 'ns', '1.30.0', ['/b.yaml'], '/work/charts/skoala-0.28.1-ab.tgz')).toEqual([
      'template',
      'skoala',
      '/work/charts/skoala-0.28.1-ab.tgz',
      '-n',
      'ns',
      '--kube-version',
      '1.30.0',
      '-f',
      '/b.yaml',
    ]);
  });
});

describe('chartRepoNotes', () => {
  it('says how the source is reached and where each credential comes from', () => {
    const notes = chartRepoNotes({ ...HARBOR, password: { file: '/run/secrets/harbor-password' } });
    expect(notes).toHaveLength(1);
    expect(notes[0]).toContain('https://harbor.local/chartrepo/skoala');
    expect(notes[0]).toContain('helm repo add');
    expect(notes[0]).toContain('env HARBOR_USER');
    expect(notes[0]).toContain('file /run/secrets/harbor-password');
    expect(notes[0]).toContain('CA /etc/ssl/harbor-ca.pem');
  });

  it('an OCI registry is logged into; an anonymous source says so', () => {
    const [line] = chartRepoNotes(OCI_ANON);
    expect(line).toContain('helm registry login');
    expect(line).toContain('no credentials');
  });

  it('warns when certificate verification is off, pointing at caFile', () => {
    const notes = chartRepoNotes({ ...HTTP_REPO, insecureSkipTlsVerify: true });
    expect(notes).toHaveLength(2);
    expect(notes[1]).toMatch(/^WARNING: /);
    expect(notes[1]).toContain('insecureSkipTlsVerify');
    expect(notes[1]).toContain('caFile');
  });

  it('warns about credentials over plain HTTP, not about an anonymous plain HTTP repository', () => {
    const url = 'http://charts.local/skoala';
    const withCreds = chartRepoNotes({ ...HARBOR, url, caFile: undefined });
    expect(withCreds).toHaveLength(2);
    expect(withCreds[1]).toMatch(/^WARNING: .*plain HTTP/);
    expect(chartRepoNotes({ name: 'p', url })).toHaveLength(1);
  });

  it('never contains a secret value, even when the worker host has it', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'skoala-notes-'));
    const file = path.join(dir, 'pw');
    await writeFile(file, SECRET);
    const before = process.env.HARBOR_PASSWORD;
    process.env.HARBOR_PASSWORD = SECRET;
    try {
      const text = [
        ...chartRepoNotes({ ...HARBOR, insecureSkipTlsVerify: true, url: 'https://harbor.local' }),
        ...chartRepoNotes({ ...HARBOR, caFile: undefined, password: { file }, url: 'http://harbor.local' }),
      ].join('\n');
      expect(text).toContain('env HARBOR_PASSWORD');
      expect(text).toContain(`file ${file}`);
      expect(text).not.toContain(SECRET);
    } finally {
      if (before === undefined) delete process.env.HARBOR_PASSWORD;
      else process.env.HARBOR_PASSWORD = before;
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('parseFleet: chart repository credentials and TLS', () => {
  const fleetWith = (extra: string) => `name: prod
controlPlane: { name: global, context: g }
workers: [{ name: w1, context: a }]
${extra}
`;
  function fleetError(text: string): FleetError {
    try {
      parseFleet(text, 'fleet.yaml');
    } catch (err) {
      if (err instanceof FleetError) return err;
      throw err;
    }
    throw new Error('the fleet file was accepted');
  }

  it('takes username and password by env or file; file paths and TLS files are resolved like other paths', () => {
    const fleet = parseFleet(
      fleetWith(`chartRepo:
  name: harbor
  url: https://harbor.local/chartrepo/skoala
  username: { env: HARBOR_USER }
  password: { file: secrets/harbor-password }
  caFile: tls/ca.pem
  certFile: /etc/tls/client.pem
  keyFile: tls/client.key`),
      '/ops/fleet.yaml',
      (p) => path.posix.resolve('/ops', p)
    );
    expect(fleet.chartRepo).toEqual({
      name: 'harbor',
      url: 'https://harbor.local/chartrepo/skoala',
      username: { env: 'HARBOR_USER' },
      password: { file: '/ops/secrets/harbor-password' },
      caFile: '/ops/tls/ca.pem',
      certFile: '/etc/tls/client.pem',
      keyFile: '/ops/tls/client.key',
    });
  });

  it('an OCI registry takes them too, with the TLS opt-out', () => {
    const fleet = parseFleet(
      fleetWith(`chartRepo:
  name: oci
  url: oci://harbor.local:8443/charts
  username: { file: u }
  password: { env: HARBOR_PASSWORD }
  insecureSkipTlsVerify: true`),
      'fleet.yaml',
      (p) => `/abs/${p}`
    );
    expect(fleet.chartRepo).toEqual({
      name: 'oci',
      url: 'oci://harbor.local:8443/charts',
      username: { file: '/abs/u' },
      password: { env: 'HARBOR_PASSWORD' },
      insecureSkipTlsVerify: true,
    });
  });

  it.each([
    ['a plain string', `password: ${SECRET}`],
    ['a quoted string', `password: "${SECRET}"`],
    ['a value key', `password: { value: ${SECRET} }`],
    ['env and a stray key', `password: { env: HARBOR_PASSWORD, value: ${SECRET} }`],
    ['a number', 'password: 12345678'],
  ])('refuses a password given as %s, in one line naming the field and without the value', (_, line) => {
    const err = fleetError(
      fleetWith(`chartRepo:
  name: harbor
  url: https://harbor.local/chartrepo/skoala
  username: { env: HARBOR_USER }
  ${line}`)
    );
    expect(err.fieldPath).toBe('chartRepo.password');
    expect(err.message).toMatch(/^fleet\.yaml: chartRepo\.password: .*\{env: VARIABLE\} or \{file: PATH\}/);
    expect(err.message).not.toContain('\n');
    expect(err.message).not.toContain(SECRET);
    expect(err.message).not.toContain('12345678');
  });

  it.each([
    ['an env name that is not a variable name', 'password: { env: "HARBOR-PASSWORD" }'],
    ['an empty file path', 'password: { file: "" }'],
  ])('refuses %s', (_, line) => {
    const err = fleetError(
      fleetWith(`chartRepo:
  name: harbor
  url: https://harbor.local/chartrepo/skoala
  username: { env: HARBOR_USER }
  ${line}`)
    );
    expect(err.fieldPath).toBe('chartRepo.password');
  });

  it('refuses a plain-string username the same way', () => {
    const err = fleetError(
      fleetWith(`chartRepo:
  name: harbor
  url: https://harbor.local/chartrepo/skoala
  username: admin
  password: { env: HARBOR_PASSWORD }`)
    );
    expect(err.fieldPath).toBe('chartRepo.username');
    expect(err.message).not.toContain('admin');
  });

  it('refuses a username without a password', () => {
    const err = fleetError(
      fleetWith(`chartRepo:
  name: harbor
  url: https://harbor.local/chartrepo/skoala
  username: { env: HARBOR_USER }`)
    );
    expect(err.message).toBe('fleet.yaml: chartRepo: username and password go together: give both or neither');
  });

  it('refuses a password without a username', () => {
    const err = fleetError(
      fleetWith(`chartRepo:
  name: harbor
  url: https://harbor.local/chartrepo/skoala
  password: { env: HARBOR_PASSWORD }`)
    );
    expect(err.problem).toMatch(/username and password go together/);
  });

  it('refuses a certFile without a keyFile', () => {
    const err = fleetError(
      fleetWith(`chartRepo:
  name: harbor
  url: https://harbor.local/chartrepo/skoala
  certFile: client.pem`)
    );
    expect(err.message).toBe('fleet.yaml: chartRepo: certFile and keyFile go together: give both or neither');
  });

  it.each([['caFile: ca.pem'], ['insecureSkipTlsVerify: true'], ['certFile: c.pem\n  keyFile: k.pem']])(
    'refuses TLS settings on an http:// URL (%s)',
    (line) => {
      const err = fleetError(
        fleetWith(`chartRepo:
  name: plain
  url: http://charts.local/skoala
  ${line}`)
      );
      expect(err.fieldPath).toBe('chartRepo');
      expect(err.problem).toMatch(/need an https:\/\/ or oci:\/\/ URL/);
    }
  );

  it('backupStore: dir by default, cluster accepted, anything else refused', () => {
    expect(parseFleet(fleetWith(''), 'fleet.yaml').backupStore).toBe('dir');
    expect(parseFleet(fleetWith('backupStore: cluster'), 'fleet.yaml').backupStore).toBe('cluster');
    expect(parseFleet(fleetWith('backupStore: dir'), 'fleet.yaml').backupStore).toBe('dir');
    const err = fleetError(fleetWith('backupStore: s3'));
    expect(err.fieldPath).toBe('backupStore');
    expect(err.message).toMatch(/^fleet\.yaml: backupStore: .*'dir' \| 'cluster'/);
  });
});

interface Call {
  tool: Tool;
  argv: string[];
  opts?: RunOptions;
}

/** A CommandRunner that records each call; `fail` decides which calls fail (the error is thrown). */
function recorder(fail: (argv: string[], n: number) => Error | undefined = () => undefined) {
  const calls: Call[] = [];
  const run: CommandRunner = async (tool, argv, opts) => {
    calls.push({ tool, argv: [...argv], ...(opts ? { opts } : {}) });
    await Promise.resolve();
    const err = fail(argv, calls.length);
    if (err) throw err;
    return { stdout: '', stderr: '' };
  };
  return { run, calls };
}

describe('readSecret', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'skoala-secret-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('reads an environment variable as is', async () => {
    await expect(readSecret({ env: 'PW' }, 'chartRepo.password', { PW: ` ${SECRET} ` })).resolves.toBe(` ${SECRET} `);
  });

  it.each([
    ['missing', {}],
    ['empty', { HARBOR_PASSWORD: '' }],
  ])('an environment variable %s: SecretNotFound, non-retryable, naming field and variable', async (_, env) => {
    const f = await failureOf(readSecret({ env: 'HARBOR_PASSWORD' }, 'chartRepo.password', env));
    expect(f.type).toBe('SecretNotFound');
    expect(f.nonRetryable).toBe(true);
    expect(f.message).toContain('chartRepo.password');
    expect(f.message).toContain('HARBOR_PASSWORD');
  });

  it('a file: its trailing newline is not part of the secret', async () => {
    const lf = path.join(dir, 'lf');
    const crlf = path.join(dir, 'crlf');
    const inner = path.join(dir, 'inner');
    await writeFile(lf, `${SECRET}\n`);
    await writeFile(crlf, `${SECRET}\r\n`);
    await writeFile(inner, `a\nb`);
    await expect(readSecret({ file: lf }, 'chartRepo.password', {})).resolves.toBe(SECRET);
    await expect(readSecret({ file: crlf }, 'chartRepo.password', {})).resolves.toBe(SECRET);
    await expect(readSecret({ file: inner }, 'chartRepo.password', {})).resolves.toBe('a\nb');
  });

  it('a file that is not there: SecretNotFound naming field, path and the error code', async () => {
    const missing = path.join(dir, 'nope');
    const f = await failureOf(readSecret({ file: missing }, 'chartRepo.username', {}));
    expect(f.type).toBe('SecretNotFound');
    expect(f.nonRetryable).toBe(true);
    expect(f.message).toContain('chartRepo.username');
    expect(f.message).toContain(missing);
    expect(f.message).toContain('ENOENT');
  });

  it('a path that cannot be read as a file (a directory): SecretNotFound', async () => {
    const f = await failureOf(readSecret({ file: dir }, 'chartRepo.password', {}));
    expect(f.type).toBe('SecretNotFound');
    expect(f.message).toContain('EISDIR');
  });
});

describe('chartRepoSession', () => {
  const env = { HARBOR_USER: 'ops', HARBOR_PASSWORD: SECRET };
  const ADD_HARBOR = [
    'repo',
    'add',
    'harbor',
    'https://harbor.local/chartrepo/skoala',
    '--force-update',
    '--username',
    'ops',
    '--password-stdin',
    '--ca-file',
    '/etc/ssl/harbor-ca.pem',
  ];

  it('ensure adds the repository once for two calls, the password on stdin only', async () => {
    const r = recorder();
    const session = chartRepoSession(r.run, env);
    await session.ensure(HARBOR, { cluster: 'w1' });
    await session.ensure(HARBOR, { cluster: 'w2' });
    expect(r.calls).toHaveLength(1);
    expect(r.calls[0]?.tool).toBe('helm');
    expect(r.calls[0]?.argv).toEqual(ADD_HARBOR);
    expect(r.calls[0]?.opts).toEqual({
      cluster: 'w1',
      input: SECRET,
      chartRepo: { name: 'harbor', url: 'https://harbor.local/chartrepo/skoala', passwordFrom: 'env HARBOR_PASSWORD' },
      // The username read from {env: HARBOR_USER}: a failure records the reference, never the value.
      recordedAs: { ops: '<env HARBOR_USER>' },
    });
    expect(r.calls[0]?.argv.join(' ')).not.toContain(SECRET);
  });

  it('two concurrent ensures share one repo add', async () => {
    const r = recorder();
    const session = chartRepoSession(r.run, env);
    await Promise.all([session.ensure(HARBOR), session.ensure(HARBOR), session.ensure(HARBOR)]);
    expect(r.calls).toHaveLength(1);
  });

  it('an anonymous HTTP repository is added without stdin', async () => {
    const r = recorder();
    await chartRepoSession(r.run, {}).ensure(HTTP_REPO);
    expect(r.calls).toEqual([
      {
        tool: 'helm',
        argv: ['repo', 'add', 'skoala', 'https://release.daocloud.io/chartrepo/skoala', '--force-update'],
        opts: { chartRepo: { name: 'skoala', url: 'https://release.daocloud.io/chartrepo/skoala' } },
      },
    ]);
  });

  it('a failed add is not remembered: the next ensure runs it again', async () => {
    const r = recorder((_, n) => (n === 1 ? new Error('helm repo add exited 1') : undefined));
    const session = chartRepoSession(r.run, env);
    await expect(session.ensure(HARBOR)).rejects.toThrow('helm repo add exited 1');
    await session.ensure(HARBOR);
    await session.ensure(HARBOR);
    expect(r.calls.map((c) => c.argv)).toEqual([ADD_HARBOR, ADD_HARBOR]);
  });

  it('a missing secret fails ensure with SecretNotFound and runs nothing; once set, the next ensure adds', async () => {
    const r = recorder();
    const hostEnv: NodeJS.ProcessEnv = { HARBOR_USER: 'ops' };
    const session = chartRepoSession(r.run, hostEnv);
    const f = await failureOf(session.ensure(HARBOR));
    expect(f.type).toBe('SecretNotFound');
    expect(f.message).toContain('chartRepo.password');
    expect(r.calls).toHaveLength(0);
    hostEnv.HARBOR_PASSWORD = SECRET;
    await session.ensure(HARBOR);
    expect(r.calls).toHaveLength(1);
  });

  it('a changed fleet setting (another CA) adds again', async () => {
    const r = recorder();
    const session = chartRepoSession(r.run, env);
    await session.ensure(HARBOR);
    await session.ensure({ ...HARBOR, caFile: '/etc/ssl/new-ca.pem' });
    expect(r.calls).toHaveLength(2);
    expect(r.calls[1]?.argv.slice(-2)).toEqual(['--ca-file', '/etc/ssl/new-ca.pem']);
  });

  it('a repository name another URL took over on this host is added again before use', async () => {
    // helm keeps one entry per repository name: after `repo add skoala B`, `skoala/<chart>` is B's chart.
    const a: ChartRepo = { name: 'skoala', url: 'https://a.example/charts' };
    const b: ChartRepo = { name: 'skoala', url: 'https://b.example/charts' };
    const r = recorder();
    const session = chartRepoSession(r.run, {});
    await session.ensure(a);
    await session.ensure(b);
    await session.ensure(a);
    expect(r.calls.map((c) => c.argv[3])).toEqual([a.url, b.url, a.url]);
  });

  it('two OCI repositories on one registry host share its login: switching between them logs in again', async () => {
    // helm keeps one login per registry host, whatever the path.
    const a: ChartRepo = {
      ...OCI_ANON,
      url: 'oci://harbor.local:8443/a',
      username: { env: 'U1' },
      password: { env: 'P1' },
    };
    const b: ChartRepo = {
      ...OCI_ANON,
      url: 'oci://harbor.local:8443/b',
      username: { env: 'U2' },
      password: { env: 'P2' },
    };
    const r = recorder();
    const session = chartRepoSession(r.run, { U1: 'alice', P1: 'pw-a', U2: 'bob', P2: 'pw-b' });
    await session.ensure(a);
    await session.ensure(a);
    await session.ensure(b);
    await session.ensure(a);
    expect(r.calls.map((c) => [c.argv[2], c.argv[4], c.opts?.input])).toEqual([
      ['harbor.local:8443', 'alice', 'pw-a'],
      ['harbor.local:8443', 'bob', 'pw-b'],
      ['harbor.local:8443', 'alice', 'pw-a'],
    ]);
  });

  it('add after ensure runs again (the plan step), and ensure after add runs nothing', async () => {
    const r = recorder();
    const session = chartRepoSession(r.run, env);
    await session.add(HARBOR);
    await session.ensure(HARBOR);
    expect(r.calls).toHaveLength(1);
    await session.add(HARBOR);
    expect(r.calls).toHaveLength(2);
  });

  it("with an upgrade ID, add and update run once per upgrade; ensure is not an upgrade's add", async () => {
    const r = recorder();
    const session = chartRepoSession(r.run, env);
    await session.ensure(HARBOR);
    await session.add(HARBOR, {}, 'u-1');
    await session.update(HARBOR, {}, 'u-1');
    await session.add(HARBOR, {}, 'u-1');
    await session.update(HARBOR, {}, 'u-1');
    await session.ensure(HARBOR);
    expect(r.calls.map((c) => c.argv.slice(0, 2).join(' '))).toEqual(['repo add', 'repo add', 'repo update']);
    // Another upgrade adds and updates again; the first one's steps still run nothing.
    await session.add(HARBOR, {}, 'u-2');
    await session.update(HARBOR, {}, 'u-2');
    await session.add(HARBOR, {}, 'u-1');
    await session.update(HARBOR, {}, 'u-1');
    expect(r.calls).toHaveLength(5);
    expect(r.calls[3]?.opts?.input).toBe(SECRET);
  });

  it('with an upgrade ID, an OCI registry is logged into once per upgrade (update: nothing)', async () => {
    const r = recorder();
    const session = chartRepoSession(r.run, { U: 'robot', P: SECRET });
    const repo: ChartRepo = { ...OCI, username: { env: 'U' }, password: { env: 'P' } };
    for (let i = 0; i < 3; i++) {
      await session.add(repo, {}, 'u-1');
      await session.update(repo, {}, 'u-1');
    }
    expect(r.calls.map((c) => c.argv.slice(0, 2).join(' '))).toEqual(['registry login']);
  });

  it('an OCI registry with credentials: helm registry login HOST, the password on stdin', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'skoala-oci-'));
    try {
      await writeFile(path.join(dir, 'user'), 'robot$ops\n');
      await writeFile(path.join(dir, 'pw'), `${SECRET}\n`);
      const repo: ChartRepo = {
        ...OCI,
        username: { file: path.join(dir, 'user') },
        password: { file: path.join(dir, 'pw') },
      };
      const r = recorder();
      const session = chartRepoSession(r.run, {});
      await session.ensure(repo);
      await session.ensure(repo);
      expect(r.calls).toHaveLength(1);
      expect(r.calls[0]?.argv).toEqual([
        'registry',
        'login',
        'harbor.local:8443',
        '--username',
        'robot$ops',
        '--password-stdin',
        '--ca-file',
        '/etc/ssl/harbor-ca.pem',
      ]);
      expect(r.calls[0]?.opts?.input).toBe(SECRET);
      expect(r.calls[0]?.opts?.chartRepo).toEqual({
        name: 'oci',
        url: 'oci://harbor.local:8443/charts/',
        passwordFrom: `file ${path.join(dir, 'pw')}`,
      });
      expect(JSON.stringify(r.calls.map((c) => c.argv))).not.toContain(SECRET);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('an OCI registry without credentials: nothing to run', async () => {
    const r = recorder();
    const session = chartRepoSession(r.run, {});
    await session.ensure(OCI_ANON);
    await session.add({ ...OCI_ANON, caFile: '/ca.pem' });
    expect(r.calls).toHaveLength(0);
  });

  it('update: helm repo update NAME for HTTP, nothing for OCI', async () => {
    const r = recorder();
    const session = chartRepoSession(r.run, env);
    await session.update(OCI);
    await session.update(OCI_ANON);
    expect(r.calls).toHaveLength(0);
    await session.update(HARBOR, { cluster: 'w1', timeoutMs: 60_000 });
    expect(r.calls).toEqual([
      {
        tool: 'helm',
        argv: ['repo', 'update', 'harbor'],
        opts: {
          cluster: 'w1',
          timeoutMs: 60_000,
          chartRepo: {
            name: 'harbor',
            url: 'https://harbor.local/chartrepo/skoala',
            passwordFrom: 'env HARBOR_PASSWORD',
          },
        },
      },
    ]);
    expect(r.calls[0]?.opts?.input).toBeUndefined();
  });

  it('runOptions keeps the caller options and names the source, never the password', () => {
    const session = chartRepoSession(recorder().run, env);
    expect(session.runOptions(HARBOR, { cluster: 'w1', timeoutMs: 5 })).toEqual({
      cluster: 'w1',
      timeoutMs: 5,
      chartRepo: { name: 'harbor', url: 'https://harbor.local/chartrepo/skoala', passwordFrom: 'env HARBOR_PASSWORD' },
    });
    expect(session.runOptions(HTTP_REPO)).toEqual({ chartRepo: { name: 'skoala', url: HTTP_REPO.url } });
    expect(JSON.stringify(session.runOptions(HARBOR))).not.toContain(SECRET);
    expect(chartSource(OCI)).toEqual({
      name: 'oci',
      url: 'oci://harbor.local:8443/charts/',
      passwordFrom: 'file /run/secrets/harbor-password',
    });
  });

  it('pullChart sets the source up first, then pulls naming the source (no stdin)', async () => {
    const r = recorder();
    const session = chartRepoSession(r.run, env);
    await pullChart(r.run, session, { repo: HARBOR, chart: 'skoala-init', version: '0.28.1' }, '/tmp/x', {
      cluster: 'w1',
    });
    expect(r.calls.map((c) => c.argv)).toEqual([
      ADD_HARBOR,
      ['pull', 'harbor/skoala-init', '--version', '0.28.1', '--untar', '--untardir', '/tmp/x'],
    ]);
    expect(r.calls[1]?.opts).toEqual({
      cluster: 'w1',
      chartRepo: { name: 'harbor', url: 'https://harbor.local/chartrepo/skoala', passwordFrom: 'env HARBOR_PASSWORD' },
    });
  });
});

describe("the host's chart cache (pullChart with a session made with a chart dir)", () => {
  const want = { repo: HTTP_REPO, chart: 'skoala-init' as const, version: '0.28.1' };
  let work: string;
  let archive: Buffer;
  beforeAll(async () => {
    archive = await chartArchive('skoala-init', '0.28.1', { 'crds/a.yaml': 'kind: CustomResourceDefinition\n' });
  });
  beforeEach(async () => {
    work = await mkdtemp(path.join(tmpdir(), 'skoala-chart-cache-'));
  });
  afterEach(async () => {
    await rm(work, { recursive: true, force: true });
  });

  /** A runner whose `helm pull` serves `serve()` (or fails with it); every other command succeeds. */
  function host(serve: () => Buffer | Error = () => archive) {
    const calls: Call[] = [];
    const run: CommandRunner = async (tool, argv, opts) => {
      calls.push({ tool, argv: [...argv], ...(opts ? { opts } : {}) });
      await new Promise((resolve) => setTimeout(resolve, 5)); // a pull takes a while: callers overlap
      if (argv[0] !== 'pull') return { stdout: '', stderr: '' };
      const served = serve();
      if (served instanceof Error) throw served;
      return { stdout: await pullInto(served)(argv), stderr: '' };
    };
    const session = chartRepoSession(run, {}, path.join(work, 'charts'));
    const pulls = () => calls.filter((c) => c.argv[0] === 'pull');
    return { run, session, calls, pulls };
  }
  const cachedFile = (data = archive) => path.join(work, 'charts', `skoala-init-0.28.1-${sha256Hex(data)}.tgz`);
  const unpacked = async (dir: string) => readFile(path.join(dir, 'skoala-init', 'crds', 'a.yaml'), 'utf8');

  it('one helm pull (the archive, into a temp dir) for every caller; each gets the chart unpacked in its dir', async () => {
    const h = host();
    const [da, db] = await Promise.all([mkdtemp(path.join(work, 'a-')), mkdtemp(path.join(work, 'b-'))]);
    await pullChart(h.run, h.session, want, da, { cluster: 'w1' });
    await pullChart(h.run, h.session, want, db, { cluster: 'w2' });
    expect(h.calls.map((c) => c.argv.slice(0, 2).join(' '))).toEqual(['repo add', 'pull skoala/skoala-init']);
    expect(h.pulls()[0]?.argv).toEqual([
      'pull',
      'skoala/skoala-init',
      '--version',
      '0.28.1',
      '--destination',
      expect.stringMatching(new RegExp(`^${path.join(work, 'charts')}/\\.pull-[^/]+$`)),
    ]);
    expect(h.pulls()[0]?.opts).toEqual({ cluster: 'w1', chartRepo: { name: 'skoala', url: HTTP_REPO.url } });
    expect(await unpacked(da)).toBe('kind: CustomResourceDefinition\n');
    expect(await unpacked(db)).toBe('kind: CustomResourceDefinition\n');
    // Named by content; the pull's temp dir is gone.
    expect(await readdir(path.join(work, 'charts'))).toEqual([path.basename(cachedFile())]);
    expect(await readFile(cachedFile())).toEqual(archive);
  });

  it('callers at the same time share one pull', async () => {
    const h = host();
    const dirs = await Promise.all([1, 2, 3, 4].map((i) => mkdtemp(path.join(work, `d${i}-`))));
    await Promise.all(dirs.map((d) => pullChart(h.run, h.session, want, d)));
    expect(h.pulls()).toHaveLength(1);
    for (const d of dirs) expect(await unpacked(d)).toContain('CustomResourceDefinition');
  });

  it('a failed pull is forgotten: the next caller (a retry) pulls again', async () => {
    let n = 0;
    const h = host(() => (++n === 1 ? new Error('connection reset') : archive));
    const dir = await mkdtemp(path.join(work, 'd-'));
    await expect(pullChart(h.run, h.session, want, dir)).rejects.toThrow('connection reset');
    expect(await readdir(path.join(work, 'charts'))).toEqual([]);
    await pullChart(h.run, h.session, want, dir);
    expect(h.pulls()).toHaveLength(2);
    expect(await unpacked(dir)).toContain('CustomResourceDefinition');
  });

  it('a cached copy deleted or damaged since is pulled again before use', async () => {
    const h = host();
    await h.session.charts.get(want);
    await writeFile(cachedFile(), 'not a chart');
    const again = await h.session.charts.get(want);
    expect(h.pulls()).toHaveLength(2);
    expect(await readFile(again.file)).toEqual(archive);
    await rm(again.file);
    await h.session.charts.get(want);
    expect(h.pulls()).toHaveLength(3);
  });

  it('pinned: the archive this host holds is checked, and used without a pull in a new process', async () => {
    const first = host();
    const { sha256 } = await first.session.charts.pull(want);
    expect(sha256).toBe(sha256Hex(archive));
    const next = host(() => new Error('no network'));
    const dir = await mkdtemp(path.join(work, 'd-'));
    await pullChart(next.run, next.session, { ...want, chartSha256: sha256 }, dir);
    expect(next.calls).toEqual([]);
    expect(await unpacked(dir)).toContain('CustomResourceDefinition');
  });

  it('pinned to another archive than the repository serves: one more pull, then refused naming both digests', async () => {
    const h = host();
    const pinned = 'f'.repeat(64);
    const err = await failureOf(pullChart(h.run, h.session, { ...want, chartSha256: pinned }, work));
    expect(err).toMatchObject({ type: 'ChartDigestMismatch', nonRetryable: true });
    expect(err.message).toBe(
      `chart skoala-init 0.28.1 from ${HTTP_REPO.url} is not the archive the plan pinned: expected sha256 ${pinned}, got ${sha256Hex(archive)}; refusing to use it (re-run plan if the repository changed it)`
    );
    expect(h.pulls()).toHaveLength(2);
    expect(existsSync(path.join(work, 'skoala-init'))).toBe(false);
  });

  it('OCI: the registry is logged into first, then the archive pulled by its oci:// reference with the TLS files', async () => {
    const h = host();
    const env = { U: 'robot', P: SECRET };
    const session = chartRepoSession(h.run, env, path.join(work, 'charts'));
    const repo: ChartRepo = { ...OCI, username: { env: 'U' }, password: { env: 'P' } };
    const dir = await mkdtemp(path.join(work, 'd-'));
    await pullChart(h.run, session, { ...want, repo }, dir);
    expect(h.calls.map((c) => c.argv.slice(0, 2).join(' '))).toEqual([
      'registry login',
      'pull oci://harbor.local:8443/charts/skoala-init',
    ]);
    expect(h.pulls()[0]?.argv.slice(2, 6)).toEqual(['--version', '0.28.1', '--ca-file', '/etc/ssl/harbor-ca.pem']);
    expect(await unpacked(dir)).toContain('CustomResourceDefinition');
  });

  it('an archive tar cannot read: ChartUnpackFailed, retryable', async () => {
    const h = host(() => Buffer.from('not gzip'));
    const err = await failureOf(pullChart(h.run, h.session, want, work));
    expect(err).toMatchObject({ type: 'ChartUnpackFailed', nonRetryable: false });
    expect(err.message).toMatch(
      /^cannot unpack chart skoala-init 0\.28\.1 \(skoala-init-0\.28\.1-[0-9a-f]{64}\.tgz\): /
    );
  });
});

describe('chart source failures (helm 3.18 stderr)', () => {
  const REPO: ChartSource = { name: 'harbor', url: 'https://127.0.0.1:40001', passwordFrom: 'env HARBOR_PASSWORD' };
  const OCI_SOURCE: ChartSource = {
    name: 'oci',
    url: 'oci://127.0.0.1:40002/charts',
    passwordFrom: 'env HARBOR_PASSWORD',
  };
  const TLS =
    'Error: looks like "https://127.0.0.1:40001" is not a valid chart repository or cannot be reached: Get "https://127.0.0.1:40001/index.yaml": tls: failed to verify certificate: x509: certificate signed by unknown authority';
  const UNAUTHORIZED =
    'Error: looks like "https://127.0.0.1:40001" is not a valid chart repository or cannot be reached: failed to fetch https://127.0.0.1:40001/index.yaml : 401 Unauthorized';
  const LOGIN_401 = 'Error: login attempt to https://127.0.0.1:40002/v2/ failed with status: 401 Unauthorized';
  const PULL_401 =
    'Error: failed to perform "FetchReference" on source: GET "https://127.0.0.1:40002/v2/charts/skoala/manifests/0.28.1": response status code 401: unauthorized: authentication required';
  const KUBE_TLS =
    'Error: Kubernetes cluster unreachable: Get "https://127.0.0.1:6443/version": x509: certificate signed by unknown authority';

  it('an untrusted repository certificate: ChartRepoTlsFailed, naming the repository and caFile', () => {
    const kind = classifyChartSourceFailure(TLS, REPO);
    expect(kind).toMatchObject({ type: 'ChartRepoTlsFailed', nonRetryable: true });
    expect(kind?.hint).toContain('harbor');
    expect(kind?.hint).toContain('https://127.0.0.1:40001');
    expect(kind?.hint).toContain('caFile');
  });

  it('commandFailure on it: the message names the repository, its URL and caFile', () => {
    const f = commandFailure({
      tool: 'helm',
      argv: ['repo', 'add', 'harbor', 'https://127.0.0.1:40001', '--force-update'],
      exitCode: 1,
      stderr: `${TLS}\n`,
      cluster: 'w1',
      chartRepo: REPO,
    });
    expect(f.type).toBe('ChartRepoTlsFailed');
    expect(f.nonRetryable).toBe(true);
    expect(f.message).toMatch(/^helm repo add on w1 exited 1: /);
    expect(f.message).toContain('chart repository harbor (https://127.0.0.1:40001)');
    expect(f.message).toContain('chartRepo.caFile');
  });

  it('401 from the repository: ChartRepoUnauthorized, naming where the password comes from', () => {
    const f = commandFailure({
      tool: 'helm',
      argv: ['repo', 'add', 'harbor', 'https://127.0.0.1:40001', '--username', 'ops', '--password-stdin'],
      exitCode: 1,
      stderr: UNAUTHORIZED,
      chartRepo: REPO,
    });
    expect(f.type).toBe('ChartRepoUnauthorized');
    expect(f.nonRetryable).toBe(true);
    expect(f.message).toContain('env HARBOR_PASSWORD');
    expect(f.message).toContain('chart repository harbor (https://127.0.0.1:40001)');
  });

  it('401 without passwordFrom: the hint names no source', () => {
    const kind = classifyChartSourceFailure(UNAUTHORIZED, { name: 'harbor', url: 'https://127.0.0.1:40001' });
    expect(kind?.type).toBe('ChartRepoUnauthorized');
    expect(kind?.hint).not.toContain('env ');
  });

  it.each([
    ['helm registry login', LOGIN_401],
    ['an OCI pull', PULL_401],
  ])('401 from an OCI registry (%s): ChartRepoUnauthorized', (_, stderr) => {
    const kind = classifyChartSourceFailure(stderr, OCI_SOURCE);
    expect(kind).toMatchObject({ type: 'ChartRepoUnauthorized', nonRetryable: true });
    expect(kind?.hint).toContain('env HARBOR_PASSWORD');
    expect(
      commandFailure({ tool: 'helm', argv: ['registry', 'login'], exitCode: 1, stderr, chartRepo: OCI_SOURCE }).type
    ).toBe('ChartRepoUnauthorized');
  });

  it('the kube API server on another port with an untrusted certificate stays BadKubeconfig', () => {
    expect(classifyChartSourceFailure(KUBE_TLS, REPO)).toBeUndefined();
    const f = commandFailure({
      tool: 'helm',
      argv: ['--kubeconfig', '/kc/w1.yaml', 'upgrade', 'skoala', 'harbor/skoala'],
      exitCode: 1,
      stderr: KUBE_TLS,
      cluster: 'w1',
      chartRepo: REPO,
    });
    expect(f.type).toBe('BadKubeconfig');
    expect(f.message).not.toContain('chart repository');
  });

  it('the same TLS text without a chartRepo is the cluster certificate (BadKubeconfig)', () => {
    expect(commandFailure({ tool: 'helm', argv: ['repo', 'add'], exitCode: 1, stderr: TLS }).type).toBe(
      'BadKubeconfig'
    );
  });

  it.each([
    ['an address that only starts like the repository host', 'https://10.0.0.5/chartrepo/skoala', '10.0.0.50:6443'],
    [
      'the repository host (default port) with the API server port',
      'https://10.0.0.5/chartrepo/skoala',
      '10.0.0.5:6443',
    ],
    [
      'a repository port that is a prefix of the API server port',
      'https://10.0.0.5:644/chartrepo/skoala',
      '10.0.0.5:6443',
    ],
  ])('the kube API server is not taken for the repository: %s', (_, url, apiserver) => {
    const stderr = `Error: Kubernetes cluster unreachable: Get "https://${apiserver}/version": tls: failed to verify certificate: x509: certificate signed by unknown authority`;
    expect(classifyChartSourceFailure(stderr, { name: 'harbor', url })).toBeUndefined();
  });

  it('an unreachable repository is retryable: ChartRepoUnreachable', () => {
    const stderr =
      'Error: looks like "https://127.0.0.1:40001" is not a valid chart repository or cannot be reached: Get "https://127.0.0.1:40001/index.yaml": dial tcp 127.0.0.1:40001: connect: connection refused';
    expect(classifyChartSourceFailure(stderr, REPO)).toMatchObject({
      type: 'ChartRepoUnreachable',
      nonRetryable: false,
    });
  });

  it('a chart version missing from the repository is left to the general kinds', () => {
    const stderr = 'Error: chart "skoala" version "0.99.0" not found in https://127.0.0.1:40001 repository';
    expect(classifyChartSourceFailure(stderr, REPO)).toBeUndefined();
    expect(commandFailure({ tool: 'helm', argv: ['pull'], exitCode: 1, stderr, chartRepo: REPO }).type).toBe(
      'ChartVersionNotFound'
    );
  });
});
