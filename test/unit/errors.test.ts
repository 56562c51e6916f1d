/**
 * activities/errors.ts on real helm/kubectl stderr, and activities/exec.ts against a real (tiny)
 * process: node stands in for helm.
 */
import { ApplicationFailure, CancelledFailure } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import { execa } from 'execa';
import path from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  classifyStderr,
  commandFailure,
  MAX_LINE_CHARS,
  MAX_STDERR_CHARS,
  redactArgv,
  scrubSecrets,
  tellingLines,
} from '../../activities/errors';
import { createRunner, helmEnv, processTimeout } from '../../activities/exec';
import type { Context } from '@temporalio/activity';
import * as cmd from '../../runbook/commands';
import type { ClusterRef, Step } from '../../runbook/types';

// A webhook that does not answer: the line also says "connection refused" and "InternalError".
const WEBHOOK_DOWN =
  'Error from server (InternalError): error when creating "gateway.yaml": Internal error occurred: failed calling webhook "validate.gateway.networking.k8s.io": failed to call webhook: Post "https://gateway-api-admission-server.skoala-system.svc:443/validate?timeout=10s": dial tcp 10.96.0.12:443: connect: connection refused';

const cluster: ClusterRef = { name: 'w1', kubeconfig: '/kc/w1.yaml', context: 'w1-admin', namespace: 'skoala-system' };

describe('classifyStderr', () => {
  it.each([
    ['Error: UPGRADE FAILED: another operation (install/upgrade/rollback) is in progress', 'ReleaseLocked', false],
    [
      'Error: chart "skoala-init" version "0.99.0" not found in https://release.daocloud.io/chartrepo/skoala repository',
      'ChartVersionNotFound',
      true,
    ],
    [
      'Error: Kubernetes cluster unreachable: Get "https://127.0.0.1:1/version": dial tcp 127.0.0.1:1: connect: connection refused',
      'ClusterUnreachable',
      false,
    ],
    ['error: context "nope" does not exist', 'BadKubeconfig', true],
    ['Error: Kubernetes cluster unreachable: context "nope" does not exist', 'BadKubeconfig', true],
    [
      'Error from server (Forbidden): jobs.batch "gateway-api-admission" is forbidden: User "system:serviceaccount:ops:upgrader" cannot delete resource "jobs" in API group "batch" in the namespace "skoala-system"',
      'AccessDenied',
      true,
    ],
    [
      'Error: UPGRADE FAILED: cannot patch "gateway-api-admission" with kind Job: Job.batch "gateway-api-admission" is invalid: spec.template: Invalid value: core.PodTemplateSpec{ObjectMeta:v1.ObjectMeta{Name:"", Labels:map[string]string{"app":"gateway-api-admission"}}}: field is immutable',
      'ImmutableField',
      true,
    ],
    [
      'Error: Kubernetes cluster unreachable: Get "https://10.6.0.1:6443/version": net/http: TLS handshake timeout',
      'ClusterUnreachable',
      false,
    ],
    [
      'Error: UPGRADE FAILED: YAML parse error on skoala/templates/hive.yaml: error converting YAML to JSON',
      'InvalidValues',
      true,
    ],
    [
      'The connection to the server 127.0.0.1:43121 was refused - did you specify the right host or port?',
      'ClusterUnreachable',
      false,
    ],
    [WEBHOOK_DOWN, 'AdmissionWebhookUnavailable', false],
    [
      'Error: UPGRADE FAILED: failed to create resource: Internal error occurred: failed calling webhook "validate.nginx.ingress.kubernetes.io": failed to call webhook: Post "https://ingress-nginx-controller-admission.ingress-nginx.svc:443/networking/v1/ingresses?timeout=10s": context deadline exceeded',
      'AdmissionWebhookUnavailable',
      false,
    ],
    ['something nobody has seen before', 'CommandFailed', false],
  ] as const)('%s -> %s', (stderr, type, nonRetryable) => {
    expect(classifyStderr(stderr)).toMatchObject({ type, nonRetryable });
  });

  it('finds the cause among helm debug lines', () => {
    const stderr = [
      'history.go:56: [debug] getting history for release skoala-init',
      'upgrade.go:164: [debug] preparing upgrade for skoala-init',
      'Error: UPGRADE FAILED: another operation (install/upgrade/rollback) is in progress',
    ].join('\n');
    expect(classifyStderr(stderr).type).toBe('ReleaseLocked');
  });

  it('an unanswering admission webhook wins over the words in its own error, with a hint', () => {
    expect(classifyStderr(`${WEBHOOK_DOWN}: Invalid value: "x"`)).toEqual({
      type: 'AdmissionWebhookUnavailable',
      nonRetryable: false,
      hint: "the cluster's admission webhook is not answering; the step will be retried",
    });
  });
});

describe('redactArgv', () => {
  it('masks a --set value whose key looks secret', () => {
    expect(redactArgv(['upgrade', 'skoala', '--set', 'hive.configMap.data.database.password=x'])).toEqual([
      'upgrade',
      'skoala',
      '--set',
      'hive.configMap.data.database.password=***',
    ]);
  });

  it('masks only the secret pairs of a comma list', () => {
    expect(redactArgv(['--set-string', 'a.token=abc,hive.image.tag=v0.19.2'])).toEqual([
      '--set-string',
      'a.token=***,hive.image.tag=v0.19.2',
    ]);
  });

  it('leaves image tags, the registry and paths alone', () => {
    const argv = cmd.helmUpgrade(
      cluster,
      {
        kind: 'upgradeRelease',
        release: 'skoala',
        chart: 'skoala',
        repo: { name: 'skoala', url: 'https://release.daocloud.io/chartrepo/skoala' },
        version: '0.28.1',
        set: [
          ['hive.image.tag', 'v0.28.1'],
          ['sesame.image.tag', 'v0.28.1'],
          ['global.imageRegistry', 'harbor.local/dce'],
        ],
        useBackup: true,
        valuesFiles: [],
      },
      '/backups/u/global/skoala.yaml'
    );
    expect(redactArgv(argv)).toEqual(argv);
  });

  it('masks --password and --token values in both spellings', () => {
    expect(redactArgv(['repo', 'add', 'h', 'u', '--password', 'hunter2', '--token=abc'])).toEqual([
      'repo',
      'add',
      'h',
      'u',
      '--password',
      '***',
      '--token=***',
    ]);
  });
});

describe('scrubSecrets', () => {
  // Each case: the line, then a non-secret part of the same line that must survive (the positive control).
  it.each([
    [
      'YAML key: value',
      'database:\n  host: mysql.skoala-system\n  password: hunter2 and more',
      'host: mysql.skoala-system',
    ],
    ['YAML list item', '- db_password: hunter2', '- db_password: ***'],
    ['flow YAML', 'error: values differ: {host: mysql, password: hunter2, port: 3306}', 'port: 3306'],
    ['Go %+v struct', 'config: {Host:mysql Password:hunter2 Port:3306}', 'Host:mysql'],
    ['key=value', 'bad values: hive.image.tag=v0.28.1,db.password=hunter2', 'hive.image.tag=v0.28.1'],
    ['env-style key=value', 'DB_PASSWORD=hunter2 DB_HOST=mysql', 'DB_HOST=mysql'],
    ['query string', 'GET https://10.6.0.1:6443/x?token=hunter2&watch=true', 'watch=true'],
    ['JSON', '{"kind":"Secret","password":"hunter2","metadata":{"name":"db"}}', '"metadata":{"name":"db"}'],
    ['JSON number', '{"apiToken": 12345678, "name": "db"}', '"name": "db"'],
    [
      'JSON escaped in a string',
      '{"last-applied":"{\\"clientSecret\\":\\"hunter2\\",\\"name\\":\\"db\\"}"}',
      '\\"name\\":\\"db\\"',
    ],
    [
      'Go struct value',
      'spec.template.spec.containers[0].env[0]: Invalid value: core.EnvVar{Name:"DB_PASSWORD", Value:"hunter2", ValueFrom:(*core.EnvVarSource)(nil)}: field is immutable',
      'Name:"DB_PASSWORD"',
    ],
    [
      'API-server Invalid value',
      'spec.x.value: Invalid value: "hunter2 \\"quoted\\"": must be no more than 63 characters',
      'must be no more than 63',
    ],
    ['JSON env var', '{"name":"DB_PASSWORD","value":"hunter2"}', '"name":"DB_PASSWORD"'],
    [
      'Authorization: Bearer',
      'curl -H "Authorization: Bearer hunter2.abc-def" https://10.6.0.1:6443/api',
      'https://10.6.0.1:6443/api',
    ],
    ['Authorization: Basic', 'Authorization: Basic aHVudGVyMg== sent to charts.example', 'sent to charts.example'],
    ['bare bearer token', 'retrying with bearer hunter2 for charts.example', 'for charts.example'],
    ['--password=', 'helm repo add skoala https://charts.example --password=hunter2 --username ops', '--username ops'],
    ['--token value', 'kubectl get pods --token hunter2 --namespace skoala-system', '--namespace skoala-system'],
    ['--password "two words"', 'helm registry login --password "hunter2 x" harbor.local', 'harbor.local'],
    [
      'URL credentials',
      'Error: looks like "https://ops:hunter2@charts.example/skoala" is not a valid chart repository',
      'ops:***@charts.example/skoala',
    ],
    ['an unterminated quote (a cut line)', 'Invalid value: core.EnvVar{Name:"X", Value:"hunter2', 'Name:"X"'],
  ])('%s', (_, line, kept) => {
    const out = scrubSecrets(line);
    expect(out).not.toContain('hunter2');
    expect(out).not.toContain('aHVudGVyMg');
    expect(out).toContain(kept);
    expect(out).toContain('***');
  });

  it('leaves ordinary errors alone', () => {
    for (const line of [
      'Error: UPGRADE FAILED: another operation (install/upgrade/rollback) is in progress',
      'Error from server (NotFound): secrets "skoala-tls" not found',
      'Error: chart "skoala-init" version "0.99.0" not found in https://release.daocloud.io/chartrepo/skoala repository',
      WEBHOOK_DOWN,
    ])
      expect(scrubSecrets(line)).toBe(line);
  });
});

describe('tellingLines', () => {
  it("keeps helm's Error lines", () => {
    expect(tellingLines('[debug] a\nError: one\n[debug] b\n')).toEqual(['Error: one']);
  });

  it('or the last lines when there is none', () => {
    expect(tellingLines('1\n2\n3\n4\n5\n6\n7\n', 3)).toEqual(['5', '6', '7']);
  });
});

describe('commandFailure', () => {
  const step: Step & { kind: 'upgradeRelease' } = {
    kind: 'upgradeRelease',
    release: 'skoala-init',
    chart: 'skoala-init',
    repo: { name: 'skoala', url: 'https://release.daocloud.io/chartrepo/skoala' },
    version: '0.28.1',
    set: [
      ['skoala-agent.image.tag', 'v0.28.1'],
      ['hive.configMap.data.database.password', 'hunter2'],
    ],
    useBackup: false,
    valuesFiles: [],
  };
  const stderr = [
    'upgrade.go:164: [debug] preparing upgrade for skoala-init',
    'Error: UPGRADE FAILED: another operation (install/upgrade/rollback) is in progress',
  ].join('\n');

  it('classifies, keeps the exit code and the telling lines', () => {
    const f = commandFailure({ tool: 'helm', argv: cmd.helmUpgrade(cluster, step), exitCode: 1, stderr });
    expect(f).toBeInstanceOf(ApplicationFailure);
    expect(f.type).toBe('ReleaseLocked');
    expect(f.nonRetryable).toBe(false);
    expect(f.message).toContain(
      'exited 1: Error: UPGRADE FAILED: another operation (install/upgrade/rollback) is in progress'
    );
    expect(f.details).toEqual([
      {
        tool: 'helm',
        command: expect.stringMatching(/^helm --kubeconfig \/kc\/w1\.yaml --kube-context w1-admin upgrade --install /),
        commandKind: 'helm upgrade',
        exitCode: 1,
        stderr: ['Error: UPGRADE FAILED: another operation (install/upgrade/rollback) is in progress'],
      },
    ]);
  });

  it('names the subcommand and the release, not the namespace', () => {
    const f = commandFailure({ tool: 'helm', argv: cmd.helmUpgrade(cluster, step), exitCode: 1, stderr });
    expect(f.message).toBe(
      'helm upgrade skoala-init exited 1: Error: UPGRADE FAILED: another operation (install/upgrade/rollback) is in progress'
    );
  });

  it('names the subcommand of a kubectl command', () => {
    const f = commandFailure({
      tool: 'kubectl',
      argv: cmd.kubectlDeleteJobs(cluster, ['gateway-api-admission']),
      exitCode: 1,
      stderr:
        'Error from server (Forbidden): jobs.batch "gateway-api-admission" is forbidden: User "x" cannot delete resource "jobs"',
    });
    expect(f.message).toBe(
      'kubectl delete jobs exited 1: Error from server (Forbidden): jobs.batch "gateway-api-admission" is forbidden: User "x" cannot delete resource "jobs" (check the kubeconfig credentials and RBAC)'
    );
    expect(f.type).toBe('AccessDenied');
    expect(f.nonRetryable).toBe(true);
  });

  it('adds the hint of a permanent failure', () => {
    const f = commandFailure({
      tool: 'helm',
      argv: cmd.helmShowChart(step.repo, 'skoala-init', '0.99.0'),
      exitCode: 1,
      stderr:
        'Error: chart "skoala-init" version "0.99.0" not found in https://release.daocloud.io/chartrepo/skoala repository',
    });
    expect(f.message).toBe(
      'helm show chart exited 1: Error: chart "skoala-init" version "0.99.0" not found in https://release.daocloud.io/chartrepo/skoala repository (check --version and the fleet chartRepo)'
    );
    expect(f.nonRetryable).toBe(true);
  });

  it('never carries a secret from the argv', () => {
    const f = commandFailure({ tool: 'helm', argv: cmd.helmUpgrade(cluster, step), exitCode: 1, stderr });
    expect(JSON.stringify(f.details)).not.toContain('hunter2');
    expect(f.message).not.toContain('hunter2');
    expect(JSON.stringify(f.details)).toContain('hive.configMap.data.database.password=***');
  });

  // What an API server prints when a Job carrying a secret env var cannot be changed, and a values dump.
  const secretStderr = [
    'I0509 10:00:00.000000 4242 request.go:1212] Response Body: {"kind":"Status","apiVersion":"v1","status":"Failure"}',
    'Error from server (Invalid): Job.batch "gateway-api-admission" is invalid: spec.template.spec.containers[0].env[0]: Invalid value: core.EnvVar{Name:"DB_PASSWORD", Value:"hunter2", ValueFrom:nil}: field is immutable',
    'Error: rendered values differ: database: {host: mysql.skoala-system, password: hunter2}',
  ].join('\n');

  it('never carries a secret from stderr, in the message or the details', () => {
    const f = commandFailure({ tool: 'helm', argv: cmd.helmUpgrade(cluster, step), exitCode: 1, stderr: secretStderr });
    expect(f.message).not.toContain('hunter2');
    expect(JSON.stringify(f.details)).not.toContain('hunter2');
    // Positive controls: the scrubbed lines are there, with what an operator needs.
    expect(f.message).toContain(
      'exited 1: Error: rendered values differ: database: {host: mysql.skoala-system, password: ***}'
    );
    expect(JSON.stringify(f.details)).toContain('Name:\\"DB_PASSWORD\\", Value:\\"***\\"');
    expect(f.type).toBe('ImmutableField');
  });

  it('details are one typed object: tool, redacted command, kind, exit code, cluster, scrubbed stderr', () => {
    const f = commandFailure({
      tool: 'kubectl',
      argv: cmd.kubectlDeleteJobs(cluster, ['gateway-api-admission']),
      exitCode: 1,
      stderr: secretStderr,
      cluster: 'worker-2',
    });
    expect(f.details).toEqual([
      {
        tool: 'kubectl',
        command:
          'kubectl --kubeconfig /kc/w1.yaml --context w1-admin delete jobs -n skoala-system gateway-api-admission --ignore-not-found',
        commandKind: 'kubectl delete',
        exitCode: 1,
        cluster: 'worker-2',
        stderr: [
          'Error from server (Invalid): Job.batch "gateway-api-admission" is invalid: spec.template.spec.containers[0].env[0]: Invalid value: core.EnvVar{Name:"DB_PASSWORD", Value:"***", ValueFrom:nil}: field is immutable',
          'Error: rendered values differ: database: {host: mysql.skoala-system, password: ***}',
        ],
      },
    ]);
  });

  it('names the cluster in the message when given', () => {
    const f = commandFailure({
      tool: 'helm',
      argv: cmd.helmUpgrade(cluster, step),
      exitCode: 1,
      stderr,
      cluster: 'worker-2',
    });
    expect(f.message).toBe(
      'helm upgrade skoala-init on worker-2 exited 1: Error: UPGRADE FAILED: another operation (install/upgrade/rollback) is in progress'
    );
  });

  it('an unanswering admission webhook is retryable, with its hint', () => {
    const f = commandFailure({
      tool: 'kubectl',
      argv: cmd.kubectlApplyCrd(cluster, '/tmp/gateway-api.yaml'),
      exitCode: 1,
      stderr: WEBHOOK_DOWN,
      cluster: 'worker-1',
    });
    expect(f).toMatchObject({ type: 'AdmissionWebhookUnavailable', nonRetryable: false });
    expect(f.message).toMatch(
      /^kubectl apply on worker-1 exited 1: Error from server \(InternalError\): .*connection refused \(the cluster's admission webhook is not answering; the step will be retried\)$/
    );
  });

  it('truncates each line and the total, scrubbing first', () => {
    const long = `Error: ${'x'.repeat(5_000)}`;
    const lines = [1, 2, 3, 4, 5].map((i) => `Error: ${i} password: hunter2 ${'y'.repeat(400)}`).join('\n');
    for (const text of [long, lines]) {
      const f = commandFailure({ tool: 'helm', argv: ['list'], exitCode: 1, stderr: text });
      const shown = (f.details?.[0] as { stderr: string[] }).stderr;
      expect(shown.length).toBeGreaterThan(0);
      for (const l of shown) expect(l.length).toBeLessThanOrEqual(MAX_LINE_CHARS);
      expect(shown.join('\n').length).toBeLessThanOrEqual(MAX_STDERR_CHARS);
      expect(f.message.length).toBeLessThan(MAX_LINE_CHARS + 50);
      expect(JSON.stringify(f.details)).not.toContain('hunter2');
    }
    // The last lines are kept: they tell most.
    const f = commandFailure({ tool: 'helm', argv: ['list'], exitCode: 1, stderr: lines });
    expect((f.details?.[0] as { stderr: string[] }).stderr.at(-1)).toMatch(/^Error: 5 password: \*\*\* y+…y+$/);
  });

  it('a timeout is retryable whatever stderr says', () => {
    const f = commandFailure({ tool: 'helm', argv: ['list'], stderr: 'Error: forbidden', timedOut: true });
    expect(f).toMatchObject({ type: 'CommandTimedOut', nonRetryable: false });
    expect(f.message).toBe('helm list timed out: Error: forbidden');
  });

  it('no output at all', () => {
    expect(commandFailure({ tool: 'kubectl', argv: ['version'], exitCode: 2, stderr: '' }).message).toBe(
      'kubectl version exited 2: (no output)'
    );
  });
});

describe('createRunner against a real process', () => {
  const node = process.execPath;
  const run = createRunner({ helm: node, kubectl: node });

  async function failureOf(p: Promise<unknown>): Promise<unknown> {
    try {
      await p;
    } catch (err) {
      return err;
    }
    throw new Error('the command succeeded');
  }

  it('helm dies with the worker process (setpriv --pdeathsig KILL): no orphan goes on changing a release', async () => {
    const mark = `${300 + Math.floor(Math.random() * 1000)}.${Date.now() % 1000}`;
    const orphans = async () =>
      (await execa('ps', ['-eo', 'args'])).stdout.split('\n').filter((l) => l.trim() === `/bin/sleep ${mark}`);
    // A worker process whose "helm" is a long sleep.
    const worker = execa(
      process.execPath,
      [
        '--import',
        'tsx',
        '--input-type=module',
        '-e',
        `import { createRunner } from './activities/exec.ts'; await createRunner({ helm: '/bin/sleep', kubectl: '/bin/true' })('helm', ['${mark}']);`,
      ],
      { cwd: path.resolve(__dirname, '../..'), reject: false }
    );
    for (let i = 0; i < 100 && (await orphans()).length === 0; i++) await new Promise((r) => setTimeout(r, 100));
    expect(await orphans()).toHaveLength(1);
    worker.kill('SIGKILL');
    await worker;
    for (let i = 0; i < 30 && (await orphans()).length > 0; i++) await new Promise((r) => setTimeout(r, 100));
    expect(await orphans()).toEqual([]);
  });

  it('returns stdout and stderr', async () => {
    await expect(run('helm', ['-e', 'process.stdout.write("[]"); process.stderr.write("warn")'])).resolves.toEqual({
      stdout: '[]',
      stderr: 'warn',
      exitCode: 0,
    });
  });

  it('allowFailure: a non-zero exit comes back with the whole stderr; a timeout still throws', async () => {
    const lines = Array.from({ length: 8 }, (_, i) => `conflict ${i}`).join('\\n');
    await expect(
      run('kubectl', ['-e', `process.stderr.write("${lines}"); process.exit(1)`], { allowFailure: true })
    ).resolves.toEqual({ stdout: '', stderr: lines.replaceAll('\\n', '\n'), exitCode: 1 });
    const err = await failureOf(
      run('kubectl', ['-e', 'setTimeout(() => {}, 30000)'], { timeoutMs: 300, allowFailure: true })
    );
    expect(err).toMatchObject({ type: 'CommandTimedOut' });
  });

  it('a non-zero exit becomes a classified ApplicationFailure with the exit code', async () => {
    const err = await failureOf(run('helm', ['-e', 'process.stderr.write("Error: boom\\n"); process.exit(3)']));
    expect(err).toBeInstanceOf(ApplicationFailure);
    const f = err as ApplicationFailure;
    expect(f.type).toBe('CommandFailed');
    expect(f.nonRetryable).toBe(false);
    expect(f.message).toMatch(/^helm .* exited 3: Error: boom$/);
    expect(f.details?.[0]).toMatchObject({ exitCode: 3, stderr: ['Error: boom'] });
  });

  it('a known failure keeps its class through a real process', async () => {
    const err = await failureOf(
      run('kubectl', ['-e', 'console.error("error: context \\"nope\\" does not exist"); process.exit(1)'])
    );
    expect(err).toMatchObject({ type: 'BadKubeconfig', nonRetryable: true });
    expect((err as ApplicationFailure).message).toMatch(
      /^kubectl .* exited 1: error: context "nope" does not exist \(check kubeconfig and context in the fleet file\)$/
    );
  });

  it('names the cluster given in the run options', async () => {
    const err = await failureOf(
      run('kubectl', ['-e', 'console.error("Error: boom"); process.exit(1)'], { cluster: 'worker-3' })
    );
    expect((err as ApplicationFailure).message).toMatch(/^kubectl .* on worker-3 exited 1: Error: boom$/);
    expect((err as ApplicationFailure).details?.[0]).toMatchObject({ cluster: 'worker-3' });
  });

  it('recordedAs: a value read from a secret reference (a username) is recorded as its reference, in argv and stderr', async () => {
    const err = await failureOf(
      run(
        'helm',
        ['-e', 'console.error("Error: login as robot-7f3a denied"); process.exit(1)', '--username', 'robot-7f3a'],
        { recordedAs: { 'robot-7f3a': '<env SKOALA_REPO_USER>' } }
      )
    );
    const text = JSON.stringify({
      message: (err as ApplicationFailure).message,
      details: (err as ApplicationFailure).details,
    });
    expect(text).not.toContain('robot-7f3a');
    expect(text).toContain('--username <env SKOALA_REPO_USER>');
    expect((err as ApplicationFailure).message).toContain('Error: login as <env SKOALA_REPO_USER> denied');
  });

  it('a secret on stderr of a real process stays out of the failure', async () => {
    const err = await failureOf(
      run('helm', ['-e', 'console.error("Error: bad values: password: hunter2, host: mysql"); process.exit(1)'])
    );
    expect(
      JSON.stringify({ m: (err as ApplicationFailure).message, d: (err as ApplicationFailure).details })
    ).not.toContain('hunter2');
    expect((err as ApplicationFailure).message).toMatch(/Error: bad values: password: \*\*\*, host: mysql$/);
  });

  it('passes the given environment', async () => {
    const withEnv = createRunner({ helm: node, kubectl: node, env: { HELM_CONFIG_HOME: '/tmp/helm-x' } });
    await expect(
      withEnv('helm', ['-e', 'process.stdout.write(process.env.HELM_CONFIG_HOME ?? "")'])
    ).resolves.toMatchObject({
      stdout: '/tmp/helm-x',
    });
  });

  describe("helm's client rate limits", () => {
    const limits = [
      '-e',
      'process.stdout.write(`${process.env.HELM_QPS ?? "-"} ${process.env.HELM_BURST_LIMIT ?? "-"}`)',
    ];
    afterEach(() => {
      vi.unstubAllEnvs();
    });

    it('helm processes get HELM_QPS and HELM_BURST_LIMIT defaults; kubectl processes do not', async () => {
      vi.stubEnv('HELM_QPS', undefined);
      vi.stubEnv('HELM_BURST_LIMIT', undefined);
      const runner = createRunner({ helm: node, kubectl: node });
      await expect(runner('helm', limits)).resolves.toMatchObject({ stdout: '50 300' });
      await expect(runner('kubectl', limits)).resolves.toMatchObject({ stdout: '- -' });
    });

    it("the operator's own values win, from the worker's environment or the configured one", async () => {
      vi.stubEnv('HELM_QPS', '7');
      vi.stubEnv('HELM_BURST_LIMIT', undefined);
      const runner = createRunner({ helm: node, kubectl: node, env: { HELM_BURST_LIMIT: '9' } });
      await expect(runner('helm', limits)).resolves.toMatchObject({ stdout: '7 9' });
      expect(helmEnv({ HELM_QPS: '1' }, { HELM_BURST_LIMIT: '2' })).toEqual({ HELM_QPS: '1' });
      expect(helmEnv(undefined, {})).toEqual({ HELM_QPS: '50', HELM_BURST_LIMIT: '300' });
    });
  });

  it('a command over its timeout is killed and fails retryably', async () => {
    const started = Date.now();
    const err = await failureOf(run('helm', ['-e', 'setTimeout(() => {}, 30000)'], { timeoutMs: 300 }));
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(err).toBeInstanceOf(ApplicationFailure);
    expect(err).toMatchObject({ type: 'CommandTimedOut', nonRetryable: false });
    expect((err as ApplicationFailure).message).toMatch(/^helm .* timed out: /);
  });

  it('a missing binary fails with the path in the message', async () => {
    const missing = createRunner({ helm: '/nonexistent/helm', kubectl: node });
    const err = await failureOf(missing('helm', ['version']));
    expect(err).toBeInstanceOf(ApplicationFailure);
    expect((err as ApplicationFailure).message).toMatch(/^helm version exited \?: .*\/nonexistent\/helm/);
    expect(err).toMatchObject({ type: 'ToolMissing', nonRetryable: true });
  });

  it("a missing binary's failure does not quote the raw argv (execa's shortMessage does)", async () => {
    const missing = createRunner({ helm: '/nonexistent/helm', kubectl: node });
    const argv = ['repo', 'add', 'skoala', 'https://charts.example', '--set', 'a=1,db.password=hunter2,x'];
    const err = (await failureOf(missing('helm', argv))) as ApplicationFailure;
    expect(JSON.stringify({ m: err.message, d: err.details })).not.toContain('hunter2');
    expect(err.details?.[0]).toMatchObject({ command: expect.stringContaining('db.password=***') });
  });

  it('heartbeats while the process runs inside an activity', async () => {
    const env = new MockActivityEnvironment();
    const beats: unknown[] = [];
    env.on('heartbeat', (d: unknown) => beats.push(d));
    const beating = createRunner({ helm: node, kubectl: node, heartbeatMs: 50 });
    await env.run(() => beating('helm', ['-e', 'setTimeout(() => {}, 400)']));
    expect(beats.length).toBeGreaterThanOrEqual(2);
    expect(beats[0]).toEqual({ running: expect.stringMatching(/^helm /) });
  });

  it('kills the process when the activity is cancelled', async () => {
    const env = new MockActivityEnvironment();
    const started = Date.now();
    const running = env.run(() => run('helm', ['-e', 'setTimeout(() => {}, 30000)']));
    setTimeout(() => env.cancel(), 300);
    const err = await failureOf(running);
    expect(err).toBeInstanceOf(CancelledFailure);
    expect(Date.now() - started).toBeLessThan(10_000);
  });

  it("never outlives its activity attempt: the process timeout is cut to the attempt's start-to-close", async () => {
    // 17 s attempt, scheduled now: 15 s are kept for the kill and the report, so the process gets ~2 s
    // although its own timeout asks for 10 minutes.
    const env = new MockActivityEnvironment({
      startToCloseTimeoutMs: 17_000,
      currentAttemptScheduledTimestampMs: Date.now(),
    });
    const err = await failureOf(
      env.run(() => run('helm', ['-e', 'setTimeout(() => {}, 60000)'], { timeoutMs: 600_000 }))
    );
    expect(err).toMatchObject({ type: 'CommandTimedOut', nonRetryable: false });
    expect((err as Error).message).toMatch(/timed out/);
  });

  it('processTimeout: the wanted timeout when the attempt leaves room, what is left otherwise', () => {
    const now = Date.now();
    const ctx = (startToCloseTimeoutMs: number) =>
      ({ info: { startToCloseTimeoutMs, currentAttemptScheduledTimestampMs: now } }) as unknown as Context;
    expect(processTimeout(ctx(15 * 60_000), 11 * 60_000)).toBe(11 * 60_000); // helm: 10 min --timeout + 1 min
    expect(processTimeout(ctx(3 * 60_000), 10 * 60_000)).toBeLessThanOrEqual(3 * 60_000 - 15_000);
    expect(processTimeout(undefined, 5_000)).toBe(5_000); // outside an activity (plan)
  });
});
