// The workload stand-in: its status builders (pure), and against one real kube-apiserver that the
// patched statuses pass the 1.33 validation and that the real `kubectl rollout status` reads them
// as rolled out, or, for a broken image, as past its progress deadline.
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  DEFAULT_CHART_VERSIONS,
  SANDBOX_NAMESPACE,
  startSandbox,
  startWorkloadStandIns,
  type Sandbox,
  type WorkloadStandIn,
} from '../../sandbox';
import { gatewayBundleVersion, skoalaChart, skoalaInitChart } from '../../sandbox/chart-sources';
import {
  brokenMatch,
  brokenStatus,
  desiredStatus,
  imageTag,
  parseBrokenImages,
  podTemplateHash,
  rolledOutStatus,
  statusMatches,
  type Workload,
} from '../../sandbox/workload-standin';

const NS = SANDBOX_NAMESPACE;
const NOW = new Date('2025-01-02T03:04:05.678Z');

const deployment = (
  image: string,
  extra: { generation?: number; replicas?: number; name?: string } = {}
): Workload => ({
  kind: 'Deployment',
  metadata: { name: extra.name ?? 'hive', namespace: NS, generation: extra.generation ?? 2 },
  spec: {
    replicas: extra.replicas,
    template: { spec: { containers: [{ name: extra.name ?? 'hive', image }] } },
  },
});

describe('status builders', () => {
  it('parse broken entries and refuse malformed ones', () => {
    expect(parseBrokenImages(['hive:v0.19.3', 'skoala-agent:v0.28.2'])).toEqual([
      { container: 'hive', tag: 'v0.19.3' },
      { container: 'skoala-agent', tag: 'v0.28.2' },
    ]);
    for (const bad of ['hive', ':v1', 'hive:', 'skoala/hive:v1']) expect(() => parseBrokenImages([bad])).toThrow(bad);
  });

  it('read the tag of an image, not a registry port or a digest', () => {
    expect(imageTag('release.daocloud.io/skoala/hive:v0.19.3')).toBe('v0.19.3');
    expect(imageTag('localhost:5000/skoala/hive')).toBeUndefined();
    expect(imageTag('localhost:5000/hive:v1@sha256:abc')).toBe('v1');
    expect(imageTag('hive@sha256:abc')).toBeUndefined();
  });

  it('match a broken entry on container name and tag, init containers included', () => {
    const broken = parseBrokenImages(['hive:v0.19.3']);
    expect(brokenMatch(deployment('r.io/skoala/hive:v0.19.3'), broken)).toEqual({ container: 'hive', tag: 'v0.19.3' });
    expect(brokenMatch(deployment('r.io/skoala/hive:v0.19.2'), broken)).toBeUndefined();
    expect(brokenMatch(deployment('r.io/skoala/sesame:v0.19.3', { name: 'sesame' }), broken)).toBeUndefined();
    const init: Workload = {
      kind: 'Deployment',
      metadata: { name: 'x' },
      spec: {
        template: {
          spec: { containers: [{ name: 'x', image: 'x:v1' }], initContainers: [{ name: 'hive', image: 'h:v0.19.3' }] },
        },
      },
    };
    expect(brokenMatch(init, broken)).toBeDefined();
  });

  it('a rolled-out Deployment: observed generation, all replicas ready, Available and Progressing True', () => {
    const st = rolledOutStatus(deployment('hive:v0.19.2', { replicas: 3 }), NOW);
    expect(st).toMatchObject({
      observedGeneration: 2,
      replicas: 3,
      updatedReplicas: 3,
      readyReplicas: 3,
      availableReplicas: 3,
      unavailableReplicas: 0,
      conditions: [
        {
          type: 'Available',
          status: 'True',
          reason: 'MinimumReplicasAvailable',
          lastUpdateTime: '2025-01-02T03:04:05Z',
        },
        {
          type: 'Progressing',
          status: 'True',
          reason: 'NewReplicaSetAvailable',
          message: expect.stringMatching(
            /^ReplicaSet "hive-[bcdfghjklmnpqrstvwxz2456789]+" has successfully progressed\.$/
          ),
        },
      ],
    });
    expect(rolledOutStatus(deployment('hive:v0.19.2'), NOW)).toMatchObject({ replicas: 1, readyReplicas: 1 });
  });

  it('a broken Deployment: observed, none ready, Progressing False with ProgressDeadlineExceeded', () => {
    const w = deployment('hive:v0.19.3');
    const st = desiredStatus(w, parseBrokenImages(['hive:v0.19.3']), NOW);
    expect(st).toEqual(brokenStatus(w, NOW));
    const hash = podTemplateHash(w.spec?.template);
    expect(st).toMatchObject({
      observedGeneration: 2,
      replicas: 1,
      updatedReplicas: 1,
      readyReplicas: 0,
      availableReplicas: 0,
      unavailableReplicas: 1,
      conditions: [
        { type: 'Available', status: 'False', reason: 'MinimumReplicasUnavailable' },
        {
          type: 'Progressing',
          status: 'False',
          reason: 'ProgressDeadlineExceeded',
          message: `ReplicaSet "hive-${hash}" has timed out progressing.`,
        },
      ],
    });
    expect(desiredStatus(w, parseBrokenImages(['hive:v0.19.2']), NOW)).toEqual(rolledOutStatus(w, NOW));
  });

  it('StatefulSets and DaemonSets; other kinds are left alone', () => {
    const sts: Workload = { kind: 'StatefulSet', metadata: { name: 'db', generation: 4 }, spec: { replicas: 2 } };
    expect(rolledOutStatus(sts)).toEqual({
      observedGeneration: 4,
      replicas: 2,
      readyReplicas: 2,
      currentReplicas: 2,
      updatedReplicas: 2,
      availableReplicas: 2,
      currentRevision: 'db-4',
      updateRevision: 'db-4',
    });
    expect(brokenStatus(sts)).toMatchObject({ replicas: 2, readyReplicas: 0, availableReplicas: 0 });
    const ds: Workload = { kind: 'DaemonSet', metadata: { name: 'agent', generation: 1 } };
    expect(rolledOutStatus(ds)).toMatchObject({ desiredNumberScheduled: 1, numberReady: 1, numberMisscheduled: 0 });
    expect(brokenStatus(ds)).toMatchObject({ desiredNumberScheduled: 1, numberReady: 0, numberUnavailable: 1 });
    expect(rolledOutStatus({ kind: 'ReplicaSet', metadata: { name: 'x' } })).toBeUndefined();
  });

  it('a status as the API returns it (zero counts omitted, new timestamps) matches; a new generation does not', () => {
    const w = deployment('hive:v0.19.2');
    const want = rolledOutStatus(w, NOW)!;
    const stored = { ...want, unavailableReplicas: undefined };
    expect(statusMatches(stored, rolledOutStatus(w, new Date(NOW.getTime() + 60_000))!)).toBe(true);
    expect(statusMatches(stored, rolledOutStatus({ ...w, metadata: { ...w.metadata, generation: 3 } })!)).toBe(false);
    expect(statusMatches(stored, brokenStatus(w)!)).toBe(false);
    expect(statusMatches(undefined, want)).toBe(false);
    // A new pod template means a new ReplicaSet name in the Progressing message.
    expect(statusMatches(stored, rolledOutStatus(deployment('hive:v0.19.9'))!)).toBe(false);
  });

  it('a condition keeps its lastTransitionTime while its status holds', () => {
    const first = rolledOutStatus(deployment('hive:v0.19.2'), NOW)!;
    const later = new Date(NOW.getTime() + 60_000);
    const again = rolledOutStatus({ ...deployment('hive:v0.19.2', { generation: 3 }), status: first }, later)!;
    expect(again.conditions).toMatchObject([
      { lastTransitionTime: '2025-01-02T03:04:05Z', lastUpdateTime: '2025-01-02T03:05:05Z' },
      { lastTransitionTime: '2025-01-02T03:04:05Z' },
    ]);
    const broken = brokenStatus({ ...deployment('hive:v0.19.3', { generation: 3 }), status: first }, later)!;
    expect(broken.conditions).toMatchObject([
      { lastTransitionTime: '2025-01-02T03:05:05Z' },
      { lastTransitionTime: '2025-01-02T03:05:05Z' },
    ]);
  });

  it('the pod-template hash ignores key order and follows the template', () => {
    const a = { spec: { containers: [{ name: 'hive', image: 'h:1' }] }, metadata: { labels: { a: 'b' } } };
    const b = { metadata: { labels: { a: 'b' } }, spec: { containers: [{ image: 'h:1', name: 'hive' }] } };
    expect(podTemplateHash(a)).toBe(podTemplateHash(b));
    expect(podTemplateHash(a)).not.toBe(
      podTemplateHash({ ...a, spec: { containers: [{ name: 'hive', image: 'h:2' }] } })
    );
  });
});

describe('fixture chart versions', () => {
  // Same templates as the neighbour: only the version strings differ (Higress, seata, admission Jobs alike).
  it.each([
    ['0.19.3', '0.19.2'],
    ['0.28.2', '0.28.1'],
  ])('%s is %s with its own version', (v, neighbour) => {
    const rename = (files: Record<string, string>) =>
      Object.fromEntries(
        Object.entries(files).map(([k, c]) => [
          k,
          c.replaceAll(v, neighbour).replaceAll(gatewayBundleVersion(v), gatewayBundleVersion(neighbour)),
        ])
      );
    expect(rename(skoalaChart(v))).toEqual(skoalaChart(neighbour));
    expect(rename(skoalaInitChart(v))).toEqual(skoalaInitChart(neighbour));
    expect(DEFAULT_CHART_VERSIONS).toContain(v);
  });

  it('0.20.0 stays missing (the e2e preflight test needs a version the repo lacks)', () => {
    expect(DEFAULT_CHART_VERSIONS).not.toContain('0.20.0');
  });
});

describe('against a real kube-apiserver', () => {
  let sb: Sandbox;
  let standIns: { standIns: Record<string, WorkloadStandIn>; stop(): Promise<void> } | undefined;
  const lines: string[] = [];
  const kubectl = (args: string[], reject = true) =>
    execa(sb.tools.kubectl, ['--kubeconfig', sb.controlPlane.kubeconfig, ...args], { reject, timeout: 60_000 });
  const helm = (args: string[]) =>
    execa(
      sb.tools.helm,
      [...args, '--repo', sb.chartRepo.url, '-n', NS, '--create-namespace', '--kubeconfig', sb.controlPlane.kubeconfig],
      { env: sb.helmEnv, timeout: 60_000 }
    );
  const rollout = (what: string, timeout: string, ns = NS) =>
    kubectl(['rollout', 'status', what, '-n', ns, `--timeout=${timeout}`], false);

  beforeAll(async () => {
    sb = await startSandbox({ workers: 0, log: () => undefined });
    standIns = startWorkloadStandIns(
      sb,
      { 'control-plane': ['hive:v0.19.3'] },
      { intervalMs: 200, log: (l) => lines.push(l) }
    );
  });
  afterAll(async () => {
    await standIns?.stop();
    await sb?.stop();
  });

  it('refuses broken images for a cluster the sandbox does not have', () => {
    expect(() => startWorkloadStandIns(sb, { 'worker-9': ['hive:v1'] })).toThrow(/no sandbox cluster named worker-9/);
  });

  it('0.19.2 rolls out; 0.19.3 with the broken hive tag exceeds its progress deadline while sesame rolls out', async () => {
    await helm(['upgrade', '--install', 'skoala', 'skoala', '--version', '0.19.2']);
    for (const d of ['hive', 'sesame', 'ui']) {
      const ok = await rollout(`deployment/${d}`, '30s');
      expect(ok.stdout).toContain(`deployment "${d}" successfully rolled out`);
    }

    const t0 = Date.now();
    await helm(['upgrade', 'skoala', 'skoala', '--version', '0.19.3', '--set', 'hive.image.tag=v0.19.3']);
    const failed = await rollout('deployment/hive', '5s');
    expect(failed.exitCode).not.toBe(0);
    expect(failed.stderr).toContain('deployment "hive" exceeded its progress deadline');
    expect(Date.now() - t0).toBeLessThan(5_000); // judged from the patched status, not the timeout
    const st = JSON.parse(
      (await kubectl(['get', 'deployment', 'hive', '-n', NS, '-o', 'jsonpath={.status}'])).stdout
    ) as {
      observedGeneration: number;
      conditions: { type: string; status: string; reason: string; message: string }[];
    };
    expect(st.observedGeneration).toBe(2);
    expect(st.conditions.find((c) => c.type === 'Progressing')).toMatchObject({
      status: 'False',
      reason: 'ProgressDeadlineExceeded',
      message: expect.stringMatching(/^ReplicaSet "hive-\w+" has timed out progressing\.$/),
    });
    expect((await rollout('deployment/sesame', '30s')).exitCode).toBe(0);
    expect(lines.filter((l) => l.includes('refused') || l.includes('differs'))).toEqual([]);

    // Settled: no more writes while nothing changes (no busy loop of status patches).
    const patched = standIns!.standIns['control-plane']!.patched;
    const settled = patched.length;
    await new Promise((r) => setTimeout(r, 800)); // 4 rounds at 200 ms
    expect(patched.slice(settled)).toEqual([]);
    expect(patched.filter((p) => p.startsWith('Deployment skoala-system/hive@'))).toEqual([
      'Deployment skoala-system/hive@1 ready',
      'Deployment skoala-system/hive@2 unready',
    ]);

    // Back to a good tag: the next generation rolls out again.
    await helm(['upgrade', 'skoala', 'skoala', '--version', '0.19.3', '--set', 'hive.image.tag=v0.19.2']);
    expect((await rollout('deployment/hive', '30s')).exitCode).toBe(0);
  });

  it('StatefulSets and DaemonSets roll out too (their statuses pass validation)', async () => {
    const manifest = ['StatefulSet', 'DaemonSet']
      .map(
        (kind) => `---
apiVersion: apps/v1
kind: ${kind}
metadata: { name: ${kind.toLowerCase()}-x, namespace: default }
spec:
  ${kind === 'StatefulSet' ? 'replicas: 2\n  serviceName: x\n  ' : ''}selector: { matchLabels: { app: ${kind} } }
  template:
    metadata: { labels: { app: ${kind} } }
    spec: { containers: [{ name: c, image: "x/c:v1" }] }
`
      )
      .join('');
    await execa(sb.tools.kubectl, ['--kubeconfig', sb.controlPlane.kubeconfig, 'apply', '-f', '-'], {
      input: manifest,
    });
    expect((await rollout('statefulset/statefulset-x', '30s', 'default')).exitCode).toBe(0);
    expect((await rollout('daemonset/daemonset-x', '30s', 'default')).exitCode).toBe(0);
    expect(lines.filter((l) => l.includes('refused'))).toEqual([]);
  });
});
