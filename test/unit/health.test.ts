/**
 * verifyWorkloads (activities/health.ts) in a MockActivityEnvironment, with a recording
 * CommandRunner answering `helm get manifest`, the workloads' `kubectl get` (one answer per poll)
 * and `kubectl get pods`: when a release counts as rolled out, what a heartbeat shows while it
 * waits, and what the failure at the deadline says.
 */
import { CancelledFailure } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import { stringify } from 'yaml';
import { beforeEach, describe, expect, it, vi } from 'vitest';
import { failureOf } from '../helpers/recorder';
import { createActivities } from '../../activities';
import { commandFailure } from '../../activities/errors';
import type { CommandRunner, Tool } from '../../activities/exec';
import {
  duration,
  healthActivities,
  imageTagOf,
  manifestWorkloads,
  podProblems,
  workloadProblems,
  type VerifyWorkloadsInput,
  type WorkloadObject,
} from '../../activities/health';
import { retaggedContainers } from '../../runbook/rules';
import type { ClusterRef } from '../../runbook/types';
import { RecordingLogger } from '../helpers/recording-logger';

const global: ClusterRef = {
  name: 'global',
  kubeconfig: '/kc/global.yaml',
  context: 'admin',
  namespace: 'skoala-system',
};
const w1: ClusterRef = { name: 'w1', kubeconfig: '/kc/w1.yaml', namespace: 'skoala-system' };
const GLOBAL = ['--kubeconfig', '/kc/global.yaml', '--context', 'admin'];
const VERSION = '0.19.3';
const TAG = 'v0.19.3';

const MANIFEST_ARGV = [
  'helm',
  '--kubeconfig',
  '/kc/global.yaml',
  '--kube-context',
  'admin',
  'get',
  'manifest',
  'skoala',
  '-n',
  'skoala-system',
];
const getArgv = (refs: string[], ns = 'skoala-system', target = GLOBAL) => [
  'kubectl',
  ...target,
  'get',
  ...refs,
  '-n',
  ns,
  '--ignore-not-found',
  '-o',
  'json',
];
const podsArgv = (selector: string, ns = 'skoala-system') => [
  'kubectl',
  ...GLOBAL,
  'get',
  'pods',
  '-n',
  ns,
  '-l',
  selector,
  '-o',
  'json',
];

/** What `helm get manifest` prints: one document per object, the chart's source comments. */
const manifest = (...objs: object[]): string =>
  objs.map((o) => `---\n# Source: skoala/templates/x.yaml\n${stringify(o)}`).join('');
const doc = (kind: string, name: string, namespace?: string) => ({
  apiVersion: kind === 'Service' || kind === 'ConfigMap' ? 'v1' : 'apps/v1',
  kind,
  metadata: { name, ...(namespace ? { namespace } : {}) },
});

interface Shape {
  replicas?: number;
  ready?: number;
  updated?: number;
  available?: number;
  /** status.replicas: old and new pods. */
  total?: number;
  generation?: number;
  observed?: number;
  conditions?: object[];
  /** Container name -> image. */
  images?: Record<string, string>;
}

const imagesOf = (name: string, images?: Record<string, string>) =>
  Object.entries(images ?? { [name]: `release.daocloud.io/skoala/${name}:${TAG}` }).map(([n, image]) => ({
    name: n,
    image,
  }));

/** A live Deployment; rolled out at TAG unless `s` says otherwise. */
function deployment(name: string, s: Shape = {}): WorkloadObject {
  const replicas = s.replicas ?? 1;
  return {
    kind: 'Deployment',
    metadata: { name, namespace: 'skoala-system', generation: s.generation ?? 2 },
    spec: {
      replicas,
      selector: { matchLabels: { app: name } },
      template: { spec: { containers: imagesOf(name, s.images) } },
    },
    status: {
      observedGeneration: s.observed ?? s.generation ?? 2,
      replicas: s.total ?? replicas,
      updatedReplicas: s.updated ?? replicas,
      readyReplicas: s.ready ?? replicas,
      availableReplicas: s.available ?? s.ready ?? replicas,
      conditions: s.conditions ?? [
        { type: 'Available', status: 'True', reason: 'MinimumReplicasAvailable' },
        { type: 'Progressing', status: 'True', reason: 'NewReplicaSetAvailable' },
      ],
    },
  };
}

function statefulSet(name: string, s: Shape & { current?: string; update?: string } = {}): WorkloadObject {
  const replicas = s.replicas ?? 1;
  return {
    kind: 'StatefulSet',
    metadata: { name, namespace: 'skoala-system', generation: 1 },
    spec: { replicas, template: { spec: { containers: imagesOf(name, s.images) } } },
    status: {
      observedGeneration: 1,
      replicas,
      readyReplicas: s.ready ?? replicas,
      updatedReplicas: s.updated ?? replicas,
      currentRevision: s.current ?? `${name}-abc`,
      updateRevision: s.update ?? `${name}-abc`,
    },
  };
}

function daemonSet(name: string, s: { desired?: number; updated?: number; available?: number } = {}): WorkloadObject {
  const desired = s.desired ?? 3;
  return {
    kind: 'DaemonSet',
    metadata: { name, namespace: 'skoala-system', generation: 1 },
    spec: { template: { spec: { containers: imagesOf(name) } } },
    status: {
      observedGeneration: 1,
      desiredNumberScheduled: desired,
      updatedNumberScheduled: s.updated ?? desired,
      numberAvailable: s.available ?? desired,
    },
  };
}

/** `kubectl get a b -o json`: a List; one name prints the object itself. */
const list = (...items: WorkloadObject[]): string =>
  items.length === 1 ? JSON.stringify(items[0]) : JSON.stringify({ apiVersion: 'v1', kind: 'List', items });

const pod = (name: string, waiting?: string) => ({
  metadata: { name },
  status: {
    phase: waiting ? 'Pending' : 'Running',
    containerStatuses: [{ name: 'hive', state: waiting ? { waiting: { reason: waiting } } : { running: {} } }],
  },
});
const pods = (...items: object[]): string => JSON.stringify({ kind: 'PodList', items });

const PROGRESS_DEADLINE = {
  type: 'Progressing',
  status: 'False',
  reason: 'ProgressDeadlineExceeded',
  message: 'ReplicaSet "hive-7d9f" has timed out progressing.',
};

type Reply = string | Error;
interface Call {
  tool: Tool;
  argv: string[];
}

/** Answers in order from a script. */
function recorder(...replies: Reply[]): { run: CommandRunner; calls: Call[]; argvs: () => string[][] } {
  const calls: Call[] = [];
  const run: CommandRunner = async (tool, argv) => {
    calls.push({ tool, argv: [...argv] });
    const reply = replies.shift();
    if (reply === undefined) throw new Error(`unexpected command: ${tool} ${argv.join(' ')}`);
    if (reply instanceof Error) throw reply;
    return { stdout: reply, stderr: '' };
  };
  return { run, calls, argvs: () => calls.map((c) => [c.tool, ...c.argv]) };
}

/** Answers by command, however many polls fit before the deadline: the same workloads every time. */
function byCommand(answers: { manifest: string; workloads: string; pods?: (selector: string) => string | Error }) {
  const calls: Call[] = [];
  const run: CommandRunner = async (tool, argv) => {
    calls.push({ tool, argv: [...argv] });
    if (tool === 'helm') return { stdout: answers.manifest, stderr: '' };
    if (argv.includes('pods')) {
      const reply = answers.pods?.(argv[argv.indexOf('-l') + 1] as string) ?? pods();
      if (reply instanceof Error) throw reply;
      return { stdout: reply, stderr: '' };
    }
    return { stdout: answers.workloads, stderr: '' };
  };
  return { run, calls, argvs: () => calls.map((c) => [c.tool, ...c.argv]) };
}

let env: MockActivityEnvironment;
let logger: RecordingLogger;
let beats: unknown[];
beforeEach(() => {
  logger = new RecordingLogger();
  env = new MockActivityEnvironment(undefined, { logger });
  beats = [];
  env.on('heartbeat', (d: unknown) => beats.push(d));
});

const input = (over: Partial<VerifyWorkloadsInput> = {}): VerifyWorkloadsInput => ({
  cluster: global,
  release: 'skoala',
  version: VERSION,
  containers: retaggedContainers('skoala'),
  timeoutMs: 200,
  ...over,
});
const verify = (run: CommandRunner, i: VerifyWorkloadsInput, pollMs = 20): Promise<{ workloads: string[] }> =>
  env.run(healthActivities({ run, pollMs }).verifyWorkloads, i);

const SKOALA = manifest(
  doc('ConfigMap', 'hive-config'),
  doc('Service', 'hive'),
  doc('Deployment', 'hive'),
  doc('Deployment', 'sesame'),
  doc('StatefulSet', 'skoala-db')
);
const SKOALA_REFS = ['deployment.apps/hive', 'deployment.apps/sesame', 'statefulset.apps/skoala-db'];

describe('verifyWorkloads', () => {
  it('all rolled out on the first read: returns at once, no heartbeat, no sleep; the exact commands', async () => {
    const r = recorder(SKOALA, list(deployment('hive'), deployment('sesame'), statefulSet('skoala-db')));
    const sleep = vi.spyOn(env.context, 'sleep');
    // A poll of a minute: a sleep would time the test out.
    const out = await verify(r.run, input(), 60_000);
    expect(out).toEqual({ workloads: ['deployment/hive', 'deployment/sesame', 'statefulset/skoala-db'] });
    expect(r.argvs()).toEqual([MANIFEST_ARGV, getArgv(SKOALA_REFS)]);
    expect(sleep).not.toHaveBeenCalled();
    expect(beats).toEqual([]);
  });

  it('a release without workloads passes at once: only the manifest is read', async () => {
    const r = recorder(manifest(doc('ConfigMap', 'x'), doc('Service', 'y')));
    expect(await verify(r.run, input())).toEqual({ workloads: [] });
    expect(r.argvs()).toEqual([MANIFEST_ARGV]);
  });

  it('rolls out after two polls: each poll heartbeats what it waits for, then it returns', async () => {
    const r = recorder(
      SKOALA,
      list(
        deployment('hive', { ready: 0, updated: 0, available: 0, generation: 3, observed: 2 }),
        deployment('sesame'),
        statefulSet('skoala-db')
      ),
      list(
        deployment('hive', { ready: 0, total: 2, available: 1 }),
        deployment('sesame'),
        statefulSet('skoala-db', { ready: 0 })
      ),
      list(deployment('hive'), deployment('sesame'), statefulSet('skoala-db'))
    );
    const out = await verify(r.run, input({ timeoutMs: 5_000 }));
    expect(out.workloads).toHaveLength(3);
    expect(r.argvs()).toEqual([MANIFEST_ARGV, getArgv(SKOALA_REFS), getArgv(SKOALA_REFS), getArgv(SKOALA_REFS)]);
    expect(beats).toEqual([
      { waitingFor: ['deployment/hive: generation 3 not observed yet, 0/1 ready, 0/1 updated, 0/1 available'] },
      {
        waitingFor: ['deployment/hive: 0/1 ready, 1 old replica(s) still running', 'statefulset/skoala-db: 0/1 ready'],
      },
    ]);
  });

  it('reads again soon after the first look (250 ms, then doubling), not a whole poll later', async () => {
    const r = recorder(
      SKOALA,
      list(deployment('hive', { ready: 0 }), deployment('sesame'), statefulSet('skoala-db')),
      list(deployment('hive'), deployment('sesame'), statefulSet('skoala-db'))
    );
    // With a one-minute poll, a second read a whole poll later would outlast this test's 5 s timeout.
    const out = await verify(r.run, input({ timeoutMs: 5 * 60_000 }), 60_000);
    expect(out.workloads).toHaveLength(3);
    expect(r.argvs()).toEqual([MANIFEST_ARGV, getArgv(SKOALA_REFS), getArgv(SKOALA_REFS)]);
  }, 5_000);

  it('a rollout past its progress deadline fails at once: WorkloadsNotReady, non-retryable, naming the workload, its counts and the reason', async () => {
    const hive = deployment('hive', { ready: 0, available: 0, conditions: [PROGRESS_DEADLINE] });
    const r = byCommand({ manifest: SKOALA, workloads: list(hive, deployment('sesame'), statefulSet('skoala-db')) });
    const err = await failureOf(verify(r.run, input()));
    expect(err).toMatchObject({ type: 'WorkloadsNotReady', nonRetryable: true });
    expect(err.message).toBe(
      'skoala on global: 1 of 3 workload(s) not rolled out at 0.19.3 (a rollout exceeded its progress deadline): deployment/hive: 0/1 ready, 0/1 available, Progressing=False ProgressDeadlineExceeded (ReplicaSet "hive-7d9f" has timed out progressing.)'
    );
    expect(err.details).toEqual([
      {
        notReady: [
          'deployment/hive: 0/1 ready, 0/1 available, Progressing=False ProgressDeadlineExceeded (ReplicaSet "hive-7d9f" has timed out progressing.)',
        ],
      },
    ]);
    // Kubernetes' verdict ends the wait: one read, no poll to the deadline.
    expect(beats).toEqual([]);
    expect(r.argvs().filter((a) => a.includes('deployments') || a.includes('get')).length).toBeGreaterThan(0);
    // The pods of the workload were asked for, by its selector, once: for the message.
    expect(r.argvs().filter((a) => a.includes('pods'))).toEqual([podsArgv('app=hive')]);
  });

  it('a progress deadline the controller has not re-evaluated for the new spec is waited out, not taken as the verdict', async () => {
    // generation 3 not observed yet: the condition describes the previous rollout.
    const hive = deployment('hive', {
      ready: 0,
      available: 0,
      generation: 3,
      observed: 2,
      conditions: [PROGRESS_DEADLINE],
    });
    const r = byCommand({ manifest: SKOALA, workloads: list(hive, deployment('sesame'), statefulSet('skoala-db')) });
    const err = await failureOf(verify(r.run, input()));
    expect(err.message).toMatch(
      /^skoala on global: 1 of 3 workload\(s\) not rolled out at 0\.19\.3 within 200 ms: deployment\/hive: generation 3 not observed yet/
    );
    expect(beats.length).toBeGreaterThanOrEqual(1); // it polled until the deadline
  });

  it('a container on the wrong image tag is named; a digest after the tag is ignored', async () => {
    const hive = deployment('hive', { images: { hive: `release.daocloud.io/skoala/hive:v0.19.2` } });
    const sesame = deployment('sesame', {
      images: { sesame: `registry.local:5000/skoala/sesame:${TAG}@sha256:${'a'.repeat(64)}` },
    });
    const r = byCommand({ manifest: SKOALA, workloads: list(hive, sesame, statefulSet('skoala-db')) });
    const err = await failureOf(verify(r.run, input()));
    expect(err.message).toBe(
      'skoala on global: 1 of 3 workload(s) not rolled out at 0.19.3 within 200 ms: deployment/hive: hive runs v0.19.2, expected v0.19.3'
    );
  });

  it('containers not in the list are not tag-checked, and a listed container the release lacks is skipped', async () => {
    const init = manifest(doc('Deployment', 'skoala-agent'), doc('Deployment', 'nacos-operator'));
    const agent = deployment('skoala-agent', {
      images: {
        'skoala-agent': `release.daocloud.io/skoala/skoala-agent:${TAG}`,
        // sidecars ship on their own version lines
        'istio-proxy': 'docker.io/istio/proxyv2:1.16.1',
      },
    });
    const r = recorder(init, list(agent, deployment('nacos-operator')));
    // seata-operator is in the list but not in this (pre-0.28) release: nothing waits for it.
    const out = await verify(
      r.run,
      input({ cluster: w1, release: 'skoala-init', containers: retaggedContainers('skoala-init') })
    );
    expect(out).toEqual({ workloads: ['deployment/skoala-agent', 'deployment/nacos-operator'] });
    expect(r.argvs()[1]).toEqual(
      getArgv(['deployment.apps/skoala-agent', 'deployment.apps/nacos-operator'], 'skoala-system', [
        '--kubeconfig',
        '/kc/w1.yaml',
      ])
    );
  });

  it('StatefulSet: ready, updated and the update revision; DaemonSet: updated and available of desired', async () => {
    const m = manifest(doc('StatefulSet', 'skoala-db'), doc('DaemonSet', 'node-agent'));
    const r = byCommand({
      manifest: m,
      workloads: list(
        statefulSet('skoala-db', {
          replicas: 3,
          ready: 3,
          updated: 1,
          current: 'skoala-db-old',
          update: 'skoala-db-new',
        }),
        daemonSet('node-agent', { desired: 3, updated: 2, available: 1 })
      ),
    });
    const err = await failureOf(verify(r.run, input()));
    expect(err.message).toBe(
      'skoala on global: 2 of 2 workload(s) not rolled out at 0.19.3 within 200 ms: statefulset/skoala-db: 1/3 updated, revision skoala-db-new not rolled out (current skoala-db-old); daemonset/node-agent: 2/3 updated, 1/3 available'
    );
  });

  it("pods' waiting reasons are added where pods exist", async () => {
    const hive = deployment('hive', { ready: 0, available: 0, total: 2 });
    const r = byCommand({
      manifest: SKOALA,
      workloads: list(hive, deployment('sesame'), statefulSet('skoala-db')),
      pods: () => pods(pod('hive-5c6b-old'), pod('hive-7d9f-abc', 'ImagePullBackOff')),
    });
    const err = await failureOf(verify(r.run, input()));
    expect(err.message).toBe(
      'skoala on global: 1 of 3 workload(s) not rolled out at 0.19.3 within 200 ms: deployment/hive: 0/1 ready, 0/1 available, 1 old replica(s) still running, pod hive-7d9f-abc: ImagePullBackOff'
    );
  });

  it('pods that cannot be read cost only their reasons: the failure is still WorkloadsNotReady', async () => {
    const r = byCommand({
      manifest: SKOALA,
      workloads: list(deployment('hive', { ready: 0 }), deployment('sesame'), statefulSet('skoala-db')),
      pods: () =>
        commandFailure({
          tool: 'kubectl',
          argv: ['get', 'pods'],
          exitCode: 1,
          stderr: 'Error from server (Forbidden): pods is forbidden',
        }),
    });
    const err = await failureOf(verify(r.run, input()));
    expect(err.type).toBe('WorkloadsNotReady');
    expect(err.message).toMatch(/: deployment\/hive: 0\/1 ready, 0\/1 available$/);
    expect(logger.entries.map((e) => e.message)).toContain('cannot read the pods of a workload that is not ready');
  });

  it('a workload of the manifest that is gone is "not found"', async () => {
    const r = byCommand({ manifest: SKOALA, workloads: list(deployment('sesame'), statefulSet('skoala-db')) });
    const err = await failureOf(verify(r.run, input()));
    expect(err.message).toMatch(
      /: 1 of 3 workload\(s\) not rolled out at 0\.19\.3 within 200 ms: deployment\/hive: not found$/
    );
    expect(r.argvs().filter((a) => a.includes('pods'))).toEqual([]);
  });

  it('many workloads: the message names five, counts the rest and stays under 1,000 characters', async () => {
    const names = Array.from({ length: 12 }, (_, i) => `worker-${i}`);
    const long = {
      ...PROGRESS_DEADLINE,
      message: `ReplicaSet "x" has timed out progressing: ${'quota exceeded '.repeat(40)}`,
    };
    const r = byCommand({
      manifest: manifest(...names.map((n) => doc('Deployment', n))),
      workloads: list(...names.map((n) => deployment(n, { ready: 0, available: 0, conditions: [long] }))),
      pods: (selector) => pods(pod(`${selector.slice(4)}-7d9f-abc`, 'CrashLoopBackOff')),
    });
    const err = await failureOf(verify(r.run, input()));
    expect(err.message.length).toBeLessThanOrEqual(1_000);
    expect(err.message).toMatch(
      /^skoala on global: 12 of 12 workload\(s\) not rolled out at 0\.19\.3 \(a rollout exceeded its progress deadline\): deployment\/worker-0: /
    );
    for (const n of names.slice(0, 5)) expect(err.message).toContain(`deployment/${n}: 0/1 ready`);
    expect(err.message).not.toContain('deployment/worker-5');
    expect(err.message).toMatch(/; and 7 more$/);
    // Pods are read only for the workloads the message names.
    expect(r.argvs().filter((a) => a.includes('pods'))).toHaveLength(5);
    const { notReady } = err.details?.[0] as { notReady: string[] };
    expect(notReady).toHaveLength(12);
    expect(JSON.stringify(notReady).length).toBeLessThan(12 * 400);
  });

  it('workloads in another namespace are read with their own -n', async () => {
    const other = { ...deployment('gateway'), metadata: { name: 'gateway', namespace: 'skoala-gw', generation: 2 } };
    const r = recorder(
      manifest(doc('Deployment', 'hive'), doc('Deployment', 'gateway', 'skoala-gw')),
      list(deployment('hive')),
      list(other)
    );
    expect(await verify(r.run, input())).toEqual({ workloads: ['deployment/hive', 'deployment/gateway in skoala-gw'] });
    expect(r.argvs().slice(1)).toEqual([
      getArgv(['deployment.apps/hive']),
      getArgv(['deployment.apps/gateway'], 'skoala-gw'),
    ]);
  });

  it('a cancellation stops the wait', async () => {
    const r = byCommand({
      manifest: SKOALA,
      workloads: list(deployment('hive', { ready: 0 }), deployment('sesame'), statefulSet('skoala-db')),
    });
    env.once('heartbeat', () => env.cancel());
    await expect(verify(r.run, input({ timeoutMs: 60_000 }), 10_000)).rejects.toBeInstanceOf(CancelledFailure);
  });

  it('createActivities exposes it', () => {
    const acts = createActivities({
      helm: 'helm',
      kubectl: 'kubectl',
      backupDir: '/nonexistent',
      workDir: '/nonexistent',
      run: recorder().run,
      healthPollMs: 5,
    });
    expect(typeof acts.verifyWorkloads).toBe('function');
  });
});

describe('pure helpers', () => {
  const expected = { containers: ['hive'], tag: TAG };

  it('manifestWorkloads: the three workload kinds, in order, with their namespace', () => {
    const m = `${manifest(doc('Deployment', 'hive'), doc('Job', 'migrate'), doc('DaemonSet', 'agent', 'kube-system'))}---\n# empty\n`;
    expect(manifestWorkloads(m, 'skoala-system')).toEqual([
      { kind: 'Deployment', name: 'hive', namespace: 'skoala-system' },
      { kind: 'DaemonSet', name: 'agent', namespace: 'kube-system' },
    ]);
    expect(manifestWorkloads('', 'ns')).toEqual([]);
    expect(() => manifestWorkloads('kind: Deployment\nmetadata: {name: [\n', 'ns')).toThrow(/not valid YAML/);
  });

  it('imageTagOf: after the last colon of the name; a registry port is no tag; a digest is ignored', () => {
    expect(imageTagOf('release.daocloud.io/skoala/hive:v0.19.3')).toBe('v0.19.3');
    expect(imageTagOf('reg:5000/skoala/hive:v0.19.3@sha256:abc')).toBe('v0.19.3');
    expect(imageTagOf('reg:5000/skoala/hive')).toBeUndefined();
    expect(imageTagOf('hive@sha256:abc')).toBeUndefined();
  });

  it('workloadProblems: a Deployment is rolled out only when every count matches and the generation is observed', () => {
    expect(workloadProblems(deployment('hive'), expected)).toEqual([]);
    expect(workloadProblems(deployment('hive', { replicas: 0 }), expected)).toEqual([]);
    // spec.replicas absent means 1
    const noReplicas = deployment('hive');
    delete noReplicas.spec?.replicas;
    expect(workloadProblems(noReplicas, expected)).toEqual([]);
    expect(workloadProblems(deployment('hive', { generation: 4, observed: 3 }), expected)).toEqual([
      'generation 4 not observed yet',
    ]);
    expect(
      workloadProblems(
        deployment('hive', {
          conditions: [{ type: 'ReplicaFailure', status: 'True', reason: 'FailedCreate', message: 'exceeded quota' }],
        }),
        expected,
        true
      )
    ).toEqual(['ReplicaFailure=True FailedCreate (exceeded quota)']);
    expect(workloadProblems(deployment('hive', { images: { hive: 'hive' } }), expected)).toEqual([
      'hive runs hive (no tag), expected v0.19.3',
    ]);
  });

  it('workloadProblems: StatefulSet and DaemonSet', () => {
    expect(workloadProblems(statefulSet('db', { replicas: 2 }), expected)).toEqual([]);
    expect(workloadProblems(statefulSet('db', { replicas: 2, ready: 1 }), expected)).toEqual(['1/2 ready']);
    // revisions only compared when both are set
    expect(workloadProblems(statefulSet('db', { update: '' }), expected)).toEqual([]);
    expect(workloadProblems(daemonSet('agent'), expected)).toEqual([]);
    expect(workloadProblems(daemonSet('agent', { desired: 0 }), expected)).toEqual([]);
    expect(workloadProblems(daemonSet('agent', { available: 2 }), expected)).toEqual(['2/3 available']);
  });

  it('podProblems: waiting containers and unschedulable pods, at most three', () => {
    const unschedulable = {
      metadata: { name: 'hive-x' },
      status: { conditions: [{ type: 'PodScheduled', status: 'False', reason: 'Unschedulable' }] },
    };
    expect(podProblems(JSON.parse(pods(pod('a'), pod('b', 'ErrImagePull'), unschedulable)) as { items: [] })).toEqual([
      'pod b: ErrImagePull',
      'pod hive-x: Unschedulable',
    ]);
    const many = JSON.parse(pods(...['a', 'b', 'c', 'd', 'e'].map((n) => pod(n, 'CrashLoopBackOff')))) as { items: [] };
    expect(podProblems(many)).toEqual([
      'pod a: CrashLoopBackOff',
      'pod b: CrashLoopBackOff',
      'pod c: CrashLoopBackOff',
      '2 more pod(s) not ready',
    ]);
  });

  it('podProblems: what a real kubelet reports for a crash, an exit, and a pod that never gets ready', () => {
    // As seen on a real node (test/e2e/real-nodes.test.ts): between two restarts the crashing
    // container is either waiting in CrashLoopBackOff or just terminated; both say so.
    const status = (s: object) => ({ items: [{ metadata: { name: 'hive-1' }, status: { containerStatuses: [s] } }] });
    const last = { terminated: { reason: 'Error', exitCode: 1 } };
    expect(
      podProblems(
        status({ ready: false, restartCount: 3, state: { waiting: { reason: 'CrashLoopBackOff' } }, lastState: last })
      )
    ).toEqual(['pod hive-1: CrashLoopBackOff, restarted 3 time(s) (last: Error, exit 1)']);
    expect(podProblems(status({ ready: false, restartCount: 0, state: last }))).toEqual(['pod hive-1: Error, exit 1']);
    expect(podProblems(status({ ready: false, restartCount: 0, state: { running: {} } }))).toEqual([
      'pod hive-1: running, not ready',
    ]);
    // Ready, or a Job's container that exited 0: nothing to say.
    expect(podProblems(status({ ready: true, restartCount: 0, state: { running: {} } }))).toEqual([]);
    expect(
      podProblems(
        status({ ready: false, restartCount: 0, state: { terminated: { reason: 'Completed', exitCode: 0 } } })
      )
    ).toEqual([]);
  });

  it('duration', () => {
    expect([duration(200), duration(90_000), duration(600_000), duration(150_000)]).toEqual([
      '200 ms',
      '90 s',
      '10 min',
      '2.5 min',
    ]);
  });
});
