/**
 * The plan's manifest diff: splitting helm's manifests, redacting credentials (Secret data, values
 * under credential-looking keys, their copies elsewhere) before anything is compared, the compact
 * summary and the full diff, and the activity's helm calls with a recorded runner.
 */
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { stringify } from 'yaml';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { chartRepoSession } from '../../activities/chart-repo';
import { commandFailure } from '../../activities/errors';
import type { CommandRunner } from '../../activities/exec';
import { previewManifestDiff } from '../../activities/manifest-diff';
import * as cmd from '../../runbook/commands';
import {
  COMPACT_LINES,
  diffRelease,
  effectiveValues,
  flattenValues,
  manifestDiffLines,
  splitManifest,
  type ManifestDiff,
} from '../../runbook/manifest-diff';
import { collectCredentials, REDACTED, REDACTED_CHANGED } from '../../runbook/redact';
import type { ClusterRef, Step } from '../../runbook/types';

const PASSWORD = 'hunter2-fixture-pw';
const TOKEN = 'tok-7f3a9c1e55';
const b64 = (s: string) => Buffer.from(s).toString('base64');

const deployment = (name: string, tag: string, env: { name: string; value: string }[] = []) => `---
# Source: skoala-init/templates/deployments.yaml
apiVersion: apps/v1
kind: Deployment
metadata: { name: ${name}, namespace: skoala-system }
spec:
  replicas: 1
  template:
    spec:
      containers:
        - name: ${name}
          image: "release.daocloud.io/skoala/${name}:${tag}"
${env.length ? `          env:\n${env.map((e) => `            - { name: ${e.name}, value: "${e.value}" }`).join('\n')}\n` : ''}`;

const secret = (pw: string) => `---
# Source: skoala/templates/database.yaml
apiVersion: v1
kind: Secret
metadata: { name: skoala-db, namespace: skoala-system }
data:
  password: ${b64(pw)}
stringData:
  dsn: "mysql://skoala:${pw}@skoala-mysql:3306/skoala"
  apiKey: "${TOKEN}"
`;

const configMap = (pw: string) => `---
# Source: skoala/templates/database.yaml
apiVersion: v1
kind: ConfigMap
metadata: { name: skoala-db-config, namespace: skoala-system }
data:
  user: skoala
  copied-password: "${pw}"
`;

const values = (tag: string, pw = PASSWORD) => ({
  image: { tag },
  hive: { configMap: { data: { database: { user: 'skoala', password: pw } } } },
  auth: { oidc: { clientSecret: 'oidc-client-secret-1', issuer: 'https://idp.example' }, tokens: [TOKEN] },
  tls: { private_key: '-----BEGIN KEY-----' },
});

/** Every text the diff can print: summaries, patches, value lines, and the rendered plan lines. */
function printed(d: Omit<ManifestDiff, 'cluster' | 'release' | 'to'>): string {
  const full: ManifestDiff = { cluster: 'w1', release: 'skoala', to: '0.19.2', ...d };
  return [JSON.stringify(d), ...manifestDiffLines(full), ...manifestDiffLines(full, { full: true })].join('\n');
}

describe('splitManifest', () => {
  it('keys documents by kind, namespace and name, and skips empty ones', () => {
    const text = `${deployment('hive', 'v1')}---\n# Source: empty.yaml\n${configMap('x')}---\napiVersion: v1\nkind: Service\nmetadata: { name: api, namespace: other }\n`;
    expect(splitManifest(text, 'skoala-system').map((r) => [r.key, r.label])).toEqual([
      ['Deployment/skoala-system/hive', 'deployment/hive'],
      ['ConfigMap/skoala-system/skoala-db-config', 'configmap/skoala-db-config'],
      ['Service/other/api', 'service/other/api'],
    ]);
  });
});

describe('redaction', () => {
  const current = {
    manifest:
      secret(PASSWORD) +
      configMap(PASSWORD) +
      deployment('hive', 'v0.18.0', [
        { name: 'DB_PASSWORD', value: 'env-only-credential' },
        { name: 'LOG', value: 'info' },
      ]),
    values: values('v0.18.0'),
  };
  const target = { ...current, manifest: current.manifest.replaceAll('v0.18.0', 'v0.19.2'), values: values('v0.19.2') };

  it('finds credentials in Secret data (decoded too), stringData, env vars and values at any depth', () => {
    const found = collectCredentials({
      objects: splitManifest(current.manifest).map((r) => r.object),
      values: [current.values],
    });
    for (const c of [
      PASSWORD,
      b64(PASSWORD),
      TOKEN,
      'env-only-credential',
      'oidc-client-secret-1',
      '-----BEGIN KEY-----',
    ])
      expect(found).toContain(c);
    expect(found).not.toContain('skoala');
    expect(found).not.toContain('https://idp.example');
  });

  it('prints none of them: not in Secrets, not copied into a ConfigMap, an env var or a DSN', () => {
    // Positive control: the inputs hold every credential the search below looks for.
    const input = current.manifest + JSON.stringify(current.values);
    const secrets = [PASSWORD, b64(PASSWORD), TOKEN, 'env-only-credential', 'oidc-client-secret-1', 'BEGIN KEY'];
    for (const s of secrets) expect(input).toContain(s);
    // A changed resource next to the secrets, so patches hold their neighbours as context.
    const d = diffRelease(current, { ...target, manifest: target.manifest.replace('user: skoala', 'user: skoala2') });
    const out = printed(d);
    for (const s of secrets) expect(out).not.toContain(s);
    expect(out).toContain('copied-password: <redacted>');
    expect(out).toContain('user: skoala2');
    expect(d.redacted).toBeGreaterThanOrEqual(6);
  });

  it('keeps the keys of Secret data and stringData, and every value of other kinds', () => {
    const d = diffRelease({ manifest: '', values: {} }, current);
    const patch = d.resources.map((r) => r.patch).join('\n');
    expect(patch).toContain(
      `+data:\n+  password: ${REDACTED}\n+stringData:\n+  dsn: ${REDACTED}\n+  apiKey: ${REDACTED}`
    );
    expect(patch).toContain(`+            - name: DB_PASSWORD\n+              value: ${REDACTED}\n`);
    expect(patch).toContain('+            - name: LOG\n+              value: info\n');
    expect(d.values).toContainEqual({ path: 'hive.configMap.data.database.password', change: 'added', to: REDACTED });
    expect(d.values).toContainEqual({ path: 'auth.tokens', change: 'added', to: REDACTED });
    expect(d.values).toContainEqual({ path: 'auth.oidc.issuer', change: 'added', to: 'https://idp.example' });
    expect(d.values).toContainEqual({ path: 'tls.private_key', change: 'added', to: REDACTED });
  });

  it('says that a credential changes, never to what', () => {
    const changed = { manifest: secret('new-pw-0042'), values: values('v0.18.0', 'new-pw-0042') };
    const d = diffRelease({ manifest: secret(PASSWORD), values: values('v0.18.0') }, changed);
    expect(d.values).toEqual([
      { path: 'hive.configMap.data.database.password', change: 'changed', from: REDACTED, to: REDACTED_CHANGED },
    ]);
    expect(d.resources).toHaveLength(1);
    expect(d.resources[0]?.summary).toBe('~ secret/skoala-db: +2 -2 lines');
    expect(d.resources[0]?.patch).toContain(`-  password: ${REDACTED}\n+  password: ${REDACTED_CHANGED}`);
    const out = printed(d);
    for (const s of [PASSWORD, 'new-pw-0042', b64('new-pw-0042')]) expect(out).not.toContain(s);
  });
});

describe('diffRelease', () => {
  const before = deployment('skoala-agent', 'v0.18.0') + deployment('nacos-operator', 'v0.18.0') + configMap('x1');
  const after =
    deployment('skoala-agent', 'v0.19.2') +
    deployment('seata-operator', 'v0.19.2') +
    configMap('x1').replace('user: skoala\n', 'user: admin\n  port: "3306"\n');

  it('lists added, removed and changed resources, with one line for an image change', () => {
    const d = diffRelease(
      { manifest: before, values: {} },
      { manifest: after, values: {} },
      { namespace: 'skoala-system' }
    );
    expect(d.unchanged).toBe(0);
    expect(d.resources.map((r) => r.summary)).toEqual([
      '~ configmap/skoala-db-config: +2 -1 lines',
      '- deployment/nacos-operator (12 lines)',
      '+ deployment/seata-operator (12 lines)',
      '~ deployment/skoala-agent: image: release.daocloud.io/skoala/skoala-agent:v0.18.0 -> ...:v0.19.2',
    ]);
    const agent = d.resources.find((r) => r.resource === 'deployment/skoala-agent')?.patch ?? '';
    expect(agent).toContain('--- a/deployment/skoala-agent');
    expect(agent).toContain('-          image: release.daocloud.io/skoala/skoala-agent:v0.18.0');
    expect(agent).toContain('+          image: release.daocloud.io/skoala/skoala-agent:v0.19.2');
  });

  it('counts what stays as it is, whatever the YAML style', () => {
    const flow = 'apiVersion: v1\nkind: ConfigMap\nmetadata: { name: a, namespace: n }\ndata: { k: v }\n';
    const block = 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n  namespace: n\ndata:\n  k: "v"\n';
    expect(diffRelease({ manifest: flow, values: {} }, { manifest: block, values: {} })).toMatchObject({
      resources: [],
      unchanged: 1,
    });
  });

  it('diffs effective values by flattened key path', () => {
    const d = diffRelease(
      { manifest: '', values: { a: { b: { c: 'v0.18.0' } }, gone: 1, list: [{ name: 'x' }] } },
      { manifest: '', values: { a: { b: { c: 'v0.19.2' } }, list: [{ name: 'y' }], added: '' } }
    );
    expect(d.values).toEqual([
      { path: 'a.b.c', change: 'changed', from: 'v0.18.0', to: 'v0.19.2' },
      { path: 'added', change: 'added', to: '""' },
      { path: 'gone', change: 'removed', from: '1' },
      { path: 'list[0].name', change: 'changed', from: 'x', to: 'y' },
    ]);
    expect(flattenValues({ 'a.b': { e: {} }, l: [] })).toEqual(
      new Map([
        ['["a.b"].e', '{}'],
        ['l', '[]'],
      ])
    );
  });

  it("merges chart defaults with the user's values as helm does: maps merge, null deletes", () => {
    expect(effectiveValues({ a: { b: 1, c: 2 }, d: 3, e: [1] }, { a: { c: 9 }, d: null, e: [2] })).toEqual({
      a: { b: 1, c: 9 },
      e: [2],
    });
  });
});

describe('manifestDiffLines', () => {
  const d: ManifestDiff = {
    cluster: 'w1',
    release: 'skoala-init',
    from: '0.18.0',
    to: '0.19.2',
    ...diffRelease(
      { manifest: deployment('skoala-agent', 'v0.18.0'), values: { t: 'v0.18.0' } },
      { manifest: deployment('skoala-agent', 'v0.19.2'), values: { t: 'v0.19.2' } }
    ),
  };

  it('prints a compact summary, or every unified diff with full', () => {
    expect(manifestDiffLines(d)).toEqual([
      'manifest diff (skoala-init 0.18.0 -> 0.19.2, server-side dry run): 1 changed, 0 added, 0 removed, 0 unchanged',
      '  ~ deployment/skoala-agent: image: release.daocloud.io/skoala/skoala-agent:v0.18.0 -> ...:v0.19.2',
      'values: 1 changed',
      '  ~ t: v0.18.0 -> v0.19.2',
    ]);
    const full = manifestDiffLines(d, { full: true });
    expect(full).toContain('+          image: release.daocloud.io/skoala/skoala-agent:v0.19.2');
    expect(full.every((l) => l !== '')).toBe(true); // a blank line would end the cluster's section of the plan
  });

  it('caps a long summary and names the flag that shows the rest', () => {
    const many = Array.from({ length: COMPACT_LINES + 5 }, (_, i) => deployment(`d${i}`, 'v1')).join('');
    const big = { ...d, ...diffRelease({ manifest: '', values: {} }, { manifest: many, values: {} }) };
    const lines = manifestDiffLines(big);
    expect(lines).toContain('  ... and 5 more (plan --diff shows all)');
    expect(lines.filter((l) => l.startsWith('  + deployment/'))).toHaveLength(COMPACT_LINES);
  });

  it('says when the dry run failed', () => {
    expect(manifestDiffLines({ ...d, error: 'boom' })).toEqual([
      'manifest diff (skoala-init 0.18.0 -> 0.19.2) FAILED, the upgrade may fail the same way: boom',
    ]);
  });
});

describe('previewManifestDiff (activity)', () => {
  const cluster: ClusterRef = { name: 'w1', kubeconfig: '/kc/w1', context: 'w1', namespace: 'skoala-system' };
  const step: Step & { kind: 'upgradeRelease' } = {
    kind: 'upgradeRelease',
    release: 'skoala',
    chart: 'skoala',
    repo: { name: 'skoala', url: 'http://charts.example' },
    version: '0.19.2',
    set: [['hive.image.tag', 'v0.19.2']],
    useBackup: true,
    valuesFiles: ['/site/values.yaml'],
    fromRevision: 3,
  };
  let workDir: string;
  beforeEach(async () => {
    workDir = await mkdtemp(path.join(tmpdir(), 'manifest-diff-'));
  });
  afterEach(async () => {
    await rm(workDir, { recursive: true, force: true });
  });

  function recorder(dryRun: () => string) {
    const calls: string[][] = [];
    const files: Record<string, string> = {};
    const run: CommandRunner = async (_tool, argv) => {
      calls.push(argv);
      const f = argv[argv.indexOf('-f') + 1];
      if (argv.includes('--dry-run=server') && f) files[f] = await readFile(f, 'utf8');
      if (argv.includes('manifest')) return { stdout: secret(PASSWORD) + deployment('hive', 'v0.18.0'), stderr: '' };
      if (argv.includes('-a')) return { stdout: JSON.stringify(values('v0.18.0')), stderr: '' };
      if (argv.includes('values')) return { stdout: stringify({ hive: values('').hive }), stderr: '' };
      if (argv.includes('--dry-run=server')) return { stdout: dryRun(), stderr: '' };
      return { stdout: '', stderr: '' };
    };
    return { run, calls, files };
  }

  it("runs the upgrade's own argv as a server-side dry run, with the revision's values as the backup", async () => {
    const r = recorder(() =>
      JSON.stringify({
        manifest: secret(PASSWORD) + deployment('hive', 'v0.19.2'),
        config: { hive: values('').hive, image: { tag: 'v0.19.2' } },
        chart: { values: { ...values('v0.19.2'), hive: { image: {} } } },
      })
    );
    const d = await previewManifestDiff(
      { run: r.run, repos: chartRepoSession(r.run), workDir },
      { cluster, step, from: '0.18.0' }
    );
    expect(r.calls).toContainEqual(cmd.helmGetManifest(cluster, 'skoala', 3));
    expect(r.calls).toContainEqual(cmd.helmGetComputedValues(cluster, 'skoala', 3));
    expect(r.calls).toContainEqual(cmd.helmGetValues(cluster, 'skoala', 3));
    const dry = r.calls.find((a) => a.includes('--dry-run=server')) ?? [];
    const file = dry[dry.indexOf('-f') + 1] ?? '';
    expect(dry).toEqual([...cmd.helmUpgrade(cluster, step, file), '--dry-run=server', '-o', 'json']);
    expect(r.files[file]).toContain(`password: ${PASSWORD}`); // what the real backup holds
    expect(existsSync(file)).toBe(false);
    expect(d.resources.map((x) => x.summary)).toEqual([
      '~ deployment/hive: image: release.daocloud.io/skoala/hive:v0.18.0 -> ...:v0.19.2',
    ]);
    expect(d).toMatchObject({ cluster: 'w1', release: 'skoala', from: '0.18.0', to: '0.19.2' });
    expect(JSON.stringify(d)).not.toContain(PASSWORD);
  });

  it('fails with a message that quotes no credential', async () => {
    const r = recorder(() => {
      throw commandFailure({
        tool: 'helm',
        argv: ['upgrade'],
        exitCode: 1,
        stderr: `Error: bad value "${PASSWORD}"`,
        cluster: 'w1',
      });
    });
    const err = await previewManifestDiff(
      { run: r.run, repos: chartRepoSession(r.run), workDir },
      { cluster, step }
    ).catch((e: unknown) => e);
    if (!(err instanceof Error)) throw new Error('the dry run did not fail');
    expect(err.message).toContain('server-side dry run of the skoala upgrade on w1');
    expect(err.message).toContain('bad value');
    expect(err.message).not.toContain(PASSWORD);
  });
});
