/**
 * Health verification: helm calling a release `deployed` says nothing about its pods. This waits
 * until every Deployment, StatefulSet and DaemonSet of the release's current manifest has rolled
 * out, each re-tagged container on the target image tag, and otherwise says which and why.
 */
import { Context, log } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import { parseAllDocuments } from 'yaml';
import * as cmd from '../runbook/commands';
import { imageTag } from '../runbook/rules';
import type { ClusterRef, ReleaseName, Version } from '../runbook/types';
import { scrubSecrets } from './errors';
import type { CommandRunner } from './exec';

export interface HealthDeps {
  run: CommandRunner;
  /** Time between two reads of the workloads. */
  pollMs: number;
}

export interface VerifyWorkloadsInput {
  cluster: ClusterRef;
  release: ReleaseName;
  version: Version;
  /** Containers that must run `v<version>` (runbook/rules.ts retaggedContainers); absent ones are skipped. */
  containers: string[];
  /** How long the workloads may take to roll out, from the start of the activity. */
  timeoutMs: number;
}

export type WorkloadKind = 'Deployment' | 'StatefulSet' | 'DaemonSet';
const KINDS: readonly string[] = ['Deployment', 'StatefulSet', 'DaemonSet'] satisfies WorkloadKind[];

export interface WorkloadRef {
  kind: WorkloadKind;
  name: string;
  namespace: string;
}

interface Condition {
  type?: string;
  status?: string;
  reason?: string;
  message?: string;
}

interface Container {
  name?: string;
  image?: string;
}

/** The fields of a live Deployment, StatefulSet or DaemonSet that say whether it rolled out. */
export interface WorkloadObject {
  kind?: string;
  metadata?: { name?: string; namespace?: string; generation?: number };
  spec?: {
    replicas?: number;
    selector?: { matchLabels?: Record<string, string> };
    template?: { spec?: { containers?: Container[]; initContainers?: Container[] } };
  };
  status?: {
    observedGeneration?: number;
    replicas?: number;
    updatedReplicas?: number;
    readyReplicas?: number;
    availableReplicas?: number;
    currentRevision?: string;
    updateRevision?: string;
    desiredNumberScheduled?: number;
    updatedNumberScheduled?: number;
    numberAvailable?: number;
    conditions?: Condition[];
  };
}

interface Terminated {
  reason?: string;
  exitCode?: number;
}

interface ContainerStatus {
  name?: string;
  ready?: boolean;
  restartCount?: number;
  state?: { waiting?: { reason?: string }; running?: object; terminated?: Terminated };
  lastState?: { terminated?: Terminated };
}

interface PodObject {
  metadata?: { name?: string };
  status?: {
    conditions?: Condition[];
    containerStatuses?: ContainerStatus[];
    initContainerStatuses?: ContainerStatus[];
  };
}

/** Workloads named in the failure message; the rest are counted ("and N more"). */
export const MAX_SHOWN = 5;
/** Each shown workload's part of the message: five of them keep it under ~1,000 characters. */
const MAX_ENTRY_CHARS = 160;
const MAX_MESSAGE_CHARS = 1_000;
const MAX_CONDITION_MESSAGE_CHARS = 100;
const MAX_PODS_SHOWN = 3;
/** Heartbeat details and failure details stay small in history too. */
const MAX_LISTED = 20;

const cut = (text: string, max: number): string => (text.length <= max ? text : `${text.slice(0, max - 1)}…`);

/** `deployment/hive`, as an operator types it; another namespace than the cluster's is named. */
export const workloadName = (w: WorkloadRef, clusterNamespace: string): string =>
  `${w.kind.toLowerCase()}/${w.name}${w.namespace === clusterNamespace ? '' : ` in ${w.namespace}`}`;

/** With its API group: a custom resource of the same kind name cannot answer instead. */
const apiRef = (w: WorkloadRef): string => `${w.kind.toLowerCase()}.apps/${w.name}`;

const key = (kind: string | undefined, namespace: string | undefined, name: string | undefined): string =>
  `${kind ?? ''}/${namespace ?? ''}/${name ?? ''}`;

/** The workloads of a `helm get manifest`, in its order; a document without a namespace is in `namespace`. */
export function manifestWorkloads(manifest: string, namespace: string): WorkloadRef[] {
  const seen = new Map<string, WorkloadRef>();
  for (const doc of parseAllDocuments(manifest)) {
    if (!('contents' in doc)) continue; // an empty stream
    // A document we cannot read may be a workload: skipping it could pass a release that is not healthy.
    if (doc.errors.length > 0)
      throw ApplicationFailure.nonRetryable(
        `the release manifest is not valid YAML: ${doc.errors[0]?.message ?? 'YAML error'}`,
        'InvalidManifest'
      );
    const obj = doc.toJS() as { kind?: unknown; metadata?: { name?: unknown; namespace?: unknown } } | null;
    if (!obj || typeof obj !== 'object' || typeof obj.kind !== 'string' || !KINDS.includes(obj.kind)) continue;
    const name = obj.metadata?.name;
    if (typeof name !== 'string' || !name) continue;
    const ns = typeof obj.metadata?.namespace === 'string' ? obj.metadata.namespace : namespace;
    const ref: WorkloadRef = { kind: obj.kind as WorkloadKind, name, namespace: ns };
    seen.set(key(ref.kind, ns, name), ref);
  }
  return [...seen.values()];
}

/** The tag of an image reference: after the last `:` of the name (a digest ignored, a registry port is no tag). */
export function imageTagOf(image: string): string | undefined {
  const ref = image.split('@')[0] ?? '';
  const colon = ref.lastIndexOf(':');
  return colon > ref.lastIndexOf('/') ? ref.slice(colon + 1) : undefined;
}

const conditionText = (c: Condition, verbose: boolean): string => {
  const text = `${c.type}=${c.status}${c.reason ? ` ${c.reason}` : ''}`;
  return verbose && c.message ? `${text} (${cut(scrubSecrets(c.message), MAX_CONDITION_MESSAGE_CHARS)})` : text;
};

/**
 * Why a live workload has not rolled out at the expected tag; empty when it has. `verbose` adds the
 * conditions' messages (for the failure; heartbeats keep to the reasons).
 */
/**
 * A Deployment whose controller has seen its current spec and says the rollout exceeded its
 * progress deadline (what makes `kubectl rollout status` exit 1): Kubernetes will not retry it.
 */
export function rolloutFailed(obj: WorkloadObject): boolean {
  const generation = obj.metadata?.generation;
  const observed = generation === undefined || (obj.status?.observedGeneration ?? 0) >= generation;
  return (
    obj.kind === 'Deployment' &&
    observed &&
    (obj.status?.conditions ?? []).some(
      (c) => c.type === 'Progressing' && c.status === 'False' && c.reason === 'ProgressDeadlineExceeded'
    )
  );
}

export function workloadProblems(
  obj: WorkloadObject,
  expected: { containers: string[]; tag: string },
  verbose = false
): string[] {
  const problems: string[] = [];
  const st = obj.status ?? {};
  const generation = obj.metadata?.generation;
  // Counts from before the controller saw the new spec describe the old pods.
  if (generation !== undefined && (st.observedGeneration ?? 0) < generation)
    problems.push(`generation ${generation} not observed yet`);
  const count = (what: string, have: number | undefined, want: number) => {
    if ((have ?? 0) !== want) problems.push(`${have ?? 0}/${want} ${what}`);
  };
  switch (obj.kind) {
    case 'Deployment': {
      const want = obj.spec?.replicas ?? 1;
      count('ready', st.readyReplicas, want);
      count('updated', st.updatedReplicas, want);
      count('available', st.availableReplicas, want);
      // Ready and available count old pods too: a new pod that never gets ready hides behind an old one.
      if ((st.replicas ?? 0) > want) problems.push(`${(st.replicas ?? 0) - want} old replica(s) still running`);
      for (const c of st.conditions ?? []) {
        if ((c.type === 'Progressing' && c.status === 'False') || (c.type === 'ReplicaFailure' && c.status === 'True'))
          problems.push(conditionText(c, verbose));
      }
      break;
    }
    case 'StatefulSet': {
      const want = obj.spec?.replicas ?? 1;
      count('ready', st.readyReplicas, want);
      count('updated', st.updatedReplicas, want);
      if (st.currentRevision && st.updateRevision && st.currentRevision !== st.updateRevision)
        problems.push(`revision ${st.updateRevision} not rolled out (current ${st.currentRevision})`);
      break;
    }
    case 'DaemonSet': {
      const want = st.desiredNumberScheduled ?? 0;
      count('updated', st.updatedNumberScheduled, want);
      count('available', st.numberAvailable, want);
      break;
    }
  }
  const tmpl = obj.spec?.template?.spec;
  for (const c of [...(tmpl?.containers ?? []), ...(tmpl?.initContainers ?? [])]) {
    if (!c.name || !expected.containers.includes(c.name)) continue;
    const tag = imageTagOf(c.image ?? '');
    if (tag !== expected.tag)
      problems.push(`${c.name} runs ${tag ?? `${c.image ?? '?'} (no tag)`}, expected ${expected.tag}`);
  }
  return problems;
}

const exited = (t: Terminated): string => `${t.reason ?? 'exited'}, exit ${t.exitCode ?? '?'}`;

/**
 * What keeps each pod from being ready, as the kubelet reports it (at most `max` pods; ready pods
 * say nothing): `pod hive-7d9f-abc: CrashLoopBackOff, restarted 3 time(s) (last: Error, exit 1)`,
 * `ErrImagePull`, `running, not ready`, or why no node took it.
 */
export function podProblems(pods: { items?: PodObject[] }, max = MAX_PODS_SHOWN): string[] {
  const out: string[] = [];
  for (const pod of pods.items ?? []) {
    const st = pod.status ?? {};
    const reasons = new Set<string>();
    for (const c of [...(st.initContainerStatuses ?? []), ...(st.containerStatuses ?? [])]) {
      const { waiting, running, terminated } = c.state ?? {};
      if (waiting?.reason) reasons.add(waiting.reason);
      if (terminated && terminated.exitCode !== 0) reasons.add(exited(terminated));
      const last = c.lastState?.terminated;
      if ((c.restartCount ?? 0) > 0)
        reasons.add(`restarted ${c.restartCount} time(s)${last ? ` (last: ${exited(last)})` : ''}`);
      // Running, yet its readiness probe fails: the container serves nothing it should.
      if (running && c.ready === false) reasons.add('running, not ready');
    }
    // A pod no node takes has no container statuses: its scheduling condition says why.
    const unscheduled = st.conditions?.find((c) => c.type === 'PodScheduled' && c.status === 'False');
    if (reasons.size === 0 && unscheduled) reasons.add(unscheduled.reason ?? 'not scheduled');
    if (reasons.size > 0) out.push(`pod ${pod.metadata?.name ?? '?'}: ${[...reasons].join(', ')}`);
  }
  return out.length > max ? [...out.slice(0, max), `${out.length - max} more pod(s) not ready`] : out;
}

/** `200 ms`, `90 s`, `10 min`: the deadline as the operator set it. */
export function duration(ms: number): string {
  if (ms < 1_000) return `${ms} ms`;
  if (ms < 120_000) return `${Math.round(ms / 1_000)} s`;
  return `${Math.round(ms / 6_000) / 10} min`;
}

/** `k=v,k2=v2`; undefined when the selector has no matchLabels (matchExpressions only are not followed). */
const labelSelector = (obj: WorkloadObject | undefined): string | undefined => {
  const labels = Object.entries(obj?.spec?.selector?.matchLabels ?? {});
  return labels.length > 0 ? labels.map(([k, v]) => `${k}=${v}`).join(',') : undefined;
};

interface Waiting {
  ref: WorkloadRef;
  name: string;
  obj: WorkloadObject | undefined;
  problems: string[];
}

const bounded = (lines: string[]): string[] =>
  lines.length > MAX_LISTED ? [...lines.slice(0, MAX_LISTED), `and ${lines.length - MAX_LISTED} more`] : lines;

export function healthActivities(deps: HealthDeps) {
  const { run } = deps;

  /** The live workloads by kind/namespace/name: one kubectl call per namespace (the release's one, as a rule). */
  async function readWorkloads(cluster: ClusterRef, refs: WorkloadRef[]): Promise<Map<string, WorkloadObject>> {
    const byNamespace = new Map<string, WorkloadRef[]>();
    for (const r of refs) byNamespace.set(r.namespace, [...(byNamespace.get(r.namespace) ?? []), r]);
    const live = new Map<string, WorkloadObject>();
    for (const [ns, group] of byNamespace) {
      const out = (
        await run('kubectl', cmd.kubectlGetWorkloads(cluster, group.map(apiRef), ns), { cluster: cluster.name })
      ).stdout.trim();
      if (!out) continue; // none of them exists
      const doc = JSON.parse(out) as WorkloadObject & { items?: WorkloadObject[] };
      for (const o of doc.kind === 'List' ? (doc.items ?? []) : [doc])
        live.set(key(o.kind, o.metadata?.namespace ?? ns, o.metadata?.name), o);
    }
    return live;
  }

  /** Why a shown workload waits, with what keeps its pods from being ready; a failed pod read costs only those. */
  async function explain(cluster: ClusterRef, w: Waiting, expected: { containers: string[]; tag: string }) {
    const why = w.obj ? workloadProblems(w.obj, expected, true) : w.problems;
    const selector = labelSelector(w.obj);
    if (!selector) return why;
    try {
      const out = await run('kubectl', cmd.kubectlGetPods(cluster, selector, w.ref.namespace), {
        cluster: cluster.name,
      });
      return [...why, ...podProblems(JSON.parse(out.stdout) as { items?: PodObject[] })];
    } catch (err) {
      // Only a failed command is tolerated: a cancellation must still stop the activity.
      if (!(err instanceof ApplicationFailure)) throw err;
      log.warn('cannot read the pods of a workload that is not ready', { workload: w.name, error: err.message });
      return why;
    }
  }

  async function notReadyFailure(
    input: VerifyWorkloadsInput,
    waiting: Waiting[],
    total: number,
    tag: string,
    rolloutFailedNow = false
  ) {
    const expected = { containers: input.containers, tag };
    const entries: string[] = [];
    for (const [i, w] of waiting.entries()) {
      // Pods only for the workloads the message names: the rest are counted, not explained.
      const why = i < MAX_SHOWN ? await explain(input.cluster, w, expected) : w.problems;
      entries.push(`${w.name}: ${why.join(', ')}`);
    }
    const more = waiting.length - MAX_SHOWN;
    const shown = entries.slice(0, MAX_SHOWN).map((e) => cut(e, MAX_ENTRY_CHARS));
    const message = cut(
      `${input.release} on ${input.cluster.name}: ${waiting.length} of ${total} workload(s) not rolled out at ${input.version} ${rolloutFailedNow ? '(a rollout exceeded its progress deadline)' : `within ${duration(input.timeoutMs)}`}: ${shown.join('; ')}${more > 0 ? `; and ${more} more` : ''}`,
      MAX_MESSAGE_CHARS
    );
    return ApplicationFailure.nonRetryable(message, 'WorkloadsNotReady', {
      notReady: bounded(entries.map((e) => cut(e, 2 * MAX_ENTRY_CHARS))),
    });
  }

  return {
    /**
     * Waits until every workload of the release's current manifest has rolled out, its re-tagged
     * containers on `v<version>`, heartbeating what it waits for; `WorkloadsNotReady` (non-retryable)
     * at the deadline, naming each workload and why.
     */
    async verifyWorkloads(input: VerifyWorkloadsInput): Promise<{ workloads: string[] }> {
      const { cluster } = input;
      const ctx = Context.current();
      const deadline = Date.now() + input.timeoutMs;
      const tag = imageTag(input.version);
      const manifest = (await run('helm', cmd.helmGetManifest(cluster, input.release), { cluster: cluster.name }))
        .stdout;
      const refs = manifestWorkloads(manifest, cluster.namespace);
      const names = refs.map((w) => workloadName(w, cluster.namespace));
      if (refs.length === 0) return { workloads: [] };
      for (let read = 0; ; read++) {
        const live = await readWorkloads(cluster, refs);
        const waiting: Waiting[] = [];
        refs.forEach((ref, i) => {
          const obj = live.get(key(ref.kind, ref.namespace, ref.name));
          const problems = obj ? workloadProblems(obj, { containers: input.containers, tag }) : ['not found'];
          if (problems.length > 0) waiting.push({ ref, name: names[i] ?? ref.name, obj, problems });
        });
        if (waiting.length === 0) return { workloads: names };
        // Kubernetes has given its verdict on a rollout: waiting out our deadline cannot change it.
        const failed = waiting.some((w) => w.obj !== undefined && rolloutFailed(w.obj));
        if (failed || Date.now() >= deadline) throw await notReadyFailure(input, waiting, refs.length, tag, failed);
        // Shown in the Temporal UI as the pending activity's details: what the upgrade waits for.
        ctx.heartbeat({ waitingFor: bounded(waiting.map((w) => `${w.name}: ${w.problems.join(', ')}`)) });
        // Soon at first (most rollouts after helm finish within seconds), then every pollMs. The last
        // read falls on the deadline, not up to a poll after it. Cancellation interrupts the sleep.
        const pause = Math.min(deps.pollMs, 250 * 2 ** read);
        await ctx.sleep(Math.max(0, Math.min(pause, deadline - Date.now())));
      }
    },
  };
}
