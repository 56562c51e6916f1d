// Stand-in for the Deployment / StatefulSet / DaemonSet controllers (and the kubelet), which do not
// run in the sandbox. Like the Job stand-in, it patches each workload's status subresource, here to
// "rolled out" so that the real `kubectl rollout status` succeeds, or, for a workload running an
// image listed as broken, to "never became ready" (progress deadline exceeded).
// Listing is an in-process HTTPS GET with the kubeconfig's token, not `kubectl get`: a kubectl
// process every 300 ms cost ~0.25 of a core per cluster (measured), too much for 4-cluster stacks
// on 2 cores. Patches are rare and go through kubectl, like the Job stand-in's.
import { readFile } from 'node:fs/promises';
import { Agent, request } from 'node:https';
import { execa } from 'execa';
import { parse } from 'yaml';

export interface WorkloadStandInOptions {
  kubectl: string;
  /** The sandbox kubeconfig: its current context's server and bearer token are used for listing. */
  kubeconfig: string;
  /** Cluster name, for log lines. */
  cluster: string;
  /** `<container-name>:<tag>` entries, e.g. `hive:v0.19.3`: a workload running one never gets ready. */
  broken?: string[];
  intervalMs?: number;
  log?: (line: string) => void;
}

export interface WorkloadStandIn {
  /** One line per status patch the apiserver accepted, e.g. `Deployment skoala-system/hive@2 ready`. */
  readonly patched: string[];
  /** Replaces the broken list: "the missing image was pushed" (a workload stuck on it then rolls out). */
  setBroken(entries: string[]): void;
  stop(): Promise<void>;
}

interface Container {
  name: string;
  image?: string;
}

export interface Workload {
  kind: string;
  metadata: { name: string; namespace?: string; generation?: number; resourceVersion?: string; uid?: string };
  spec?: {
    replicas?: number;
    template?: { spec?: { containers?: Container[]; initContainers?: Container[] } };
  };
  status?: Record<string, unknown>;
}

export interface BrokenImage {
  container: string;
  tag: string;
}

export type WorkloadStatus = Record<string, unknown>;

interface Condition {
  type: string;
  status: string;
  reason: string;
  message: string;
  lastUpdateTime?: string;
  lastTransitionTime?: string;
}

/** Parses `<container>:<tag>` entries; a malformed one is a caller bug, so it throws at start. */
export function parseBrokenImages(entries: readonly string[]): BrokenImage[] {
  return entries.map((e) => {
    const i = e.lastIndexOf(':');
    if (i <= 0 || i === e.length - 1 || e.includes('/')) {
      throw new Error(`broken image entry ${JSON.stringify(e)}: expected <container-name>:<tag>, e.g. hive:v0.19.3`);
    }
    return { container: e.slice(0, i), tag: e.slice(i + 1) };
  });
}

/** The tag of an image reference; undefined when it has none (a ':' before the last '/' is a port). */
export function imageTag(image: string): string | undefined {
  const ref = image.split('@')[0] ?? image; // a digest is not a tag
  const colon = ref.lastIndexOf(':');
  return colon > ref.lastIndexOf('/') ? ref.slice(colon + 1) : undefined;
}

/** The broken entry that matches one of the workload's containers (init containers too), if any. */
export function brokenMatch(w: Workload, broken: readonly BrokenImage[]): BrokenImage | undefined {
  const pod = w.spec?.template?.spec;
  const containers = [...(pod?.containers ?? []), ...(pod?.initContainers ?? [])];
  return broken.find((b) => containers.some((c) => c.name === b.container && imageTag(c.image ?? '') === b.tag));
}

/** JSON with sorted keys: the API server and kubectl order fields differently. */
function canonicalJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(',')}]`;
  if (v && typeof v === 'object') {
    const o = v as Record<string, unknown>;
    return `{${Object.keys(o)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonicalJson(o[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(v) ?? 'null';
}

/**
 * A pod-template-hash look-alike for the ReplicaSet name in condition messages: FNV-1a 32 of the
 * template, its decimal digits mapped onto the alphabet Kubernetes' SafeEncodeString uses.
 */
export function podTemplateHash(template: unknown): string {
  let h = 0x811c9dc5;
  for (const byte of Buffer.from(canonicalJson(template ?? {}))) {
    h ^= byte;
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  const alphabet = 'bcdfghjklmnpqrstvwxz2456789';
  return [...String(h)].map((d) => alphabet[d.charCodeAt(0) % alphabet.length]).join('');
}

/** RFC 3339 in whole seconds, as the API stores it. */
const rfc3339 = (d: Date): string => d.toISOString().replace(/\.\d+Z$/, 'Z');

/** A condition whose status does not change keeps its lastTransitionTime, as the controllers do. */
function condition(w: Workload, c: Omit<Condition, 'lastUpdateTime' | 'lastTransitionTime'>, now: string): Condition {
  const old = (w.status?.conditions as Condition[] | undefined)?.find((o) => o.type === c.type);
  const kept = old?.status === c.status && old.lastTransitionTime ? old.lastTransitionTime : now;
  return { ...c, lastUpdateTime: now, lastTransitionTime: kept };
}

/**
 * The status a controller plus kubelet would write once the workload has rolled out. Shaped by the
 * 1.33 status validation: ready/updated/current/available <= replicas, available <= ready.
 * Zero counts are written explicitly so a merge patch clears what an earlier (broken) status set.
 */
export function rolledOutStatus(w: Workload, now = new Date()): WorkloadStatus | undefined {
  const generation = w.metadata.generation ?? 1;
  const replicas = w.spec?.replicas ?? 1;
  const t = rfc3339(now);
  switch (w.kind) {
    case 'Deployment': {
      const rs = `${w.metadata.name}-${podTemplateHash(w.spec?.template)}`;
      return {
        observedGeneration: generation,
        replicas,
        updatedReplicas: replicas,
        readyReplicas: replicas,
        availableReplicas: replicas,
        unavailableReplicas: 0,
        conditions: [
          condition(
            w,
            {
              type: 'Available',
              status: 'True',
              reason: 'MinimumReplicasAvailable',
              message: 'Deployment has minimum availability.',
            },
            t
          ),
          condition(
            w,
            {
              type: 'Progressing',
              status: 'True',
              reason: 'NewReplicaSetAvailable',
              message: `ReplicaSet "${rs}" has successfully progressed.`,
            },
            t
          ),
        ],
      };
    }
    case 'StatefulSet': {
      const revision = `${w.metadata.name}-${generation}`;
      return {
        observedGeneration: generation,
        replicas,
        readyReplicas: replicas,
        currentReplicas: replicas,
        updatedReplicas: replicas,
        availableReplicas: replicas,
        currentRevision: revision,
        updateRevision: revision,
      };
    }
    case 'DaemonSet':
      // One simulated node: the DaemonSet wants one pod.
      return {
        observedGeneration: generation,
        desiredNumberScheduled: 1,
        currentNumberScheduled: 1,
        updatedNumberScheduled: 1,
        numberReady: 1,
        numberAvailable: 1,
        numberUnavailable: 0,
        numberMisscheduled: 0,
      };
    default:
      return undefined;
  }
}

/**
 * The status of a workload whose new pods never become ready: the controller has seen the new spec
 * (observedGeneration) and created the pods, none is ready, and for a Deployment the progress
 * deadline has passed, which is what `kubectl rollout status` reports as a failure.
 */
export function brokenStatus(w: Workload, now = new Date()): WorkloadStatus | undefined {
  const generation = w.metadata.generation ?? 1;
  const replicas = w.spec?.replicas ?? 1;
  const t = rfc3339(now);
  switch (w.kind) {
    case 'Deployment': {
      const rs = `${w.metadata.name}-${podTemplateHash(w.spec?.template)}`;
      return {
        observedGeneration: generation,
        replicas,
        updatedReplicas: replicas,
        readyReplicas: 0,
        availableReplicas: 0,
        unavailableReplicas: replicas,
        conditions: [
          condition(
            w,
            {
              type: 'Available',
              status: 'False',
              reason: 'MinimumReplicasUnavailable',
              message: 'Deployment does not have minimum availability.',
            },
            t
          ),
          condition(
            w,
            {
              type: 'Progressing',
              status: 'False',
              reason: 'ProgressDeadlineExceeded',
              message: `ReplicaSet "${rs}" has timed out progressing.`,
            },
            t
          ),
        ],
      };
    }
    case 'StatefulSet': {
      const revision = `${w.metadata.name}-${generation}`;
      return {
        observedGeneration: generation,
        replicas,
        readyReplicas: 0,
        currentReplicas: replicas,
        updatedReplicas: replicas,
        availableReplicas: 0,
        currentRevision: revision,
        updateRevision: revision,
      };
    }
    case 'DaemonSet':
      return {
        observedGeneration: generation,
        desiredNumberScheduled: 1,
        currentNumberScheduled: 1,
        updatedNumberScheduled: 1,
        numberReady: 0,
        numberAvailable: 0,
        numberUnavailable: 1,
        numberMisscheduled: 0,
      };
    default:
      return undefined;
  }
}

/** What the stand-in wants the workload's status to be; undefined for a kind it does not handle. */
export function desiredStatus(
  w: Workload,
  broken: readonly BrokenImage[],
  now = new Date()
): WorkloadStatus | undefined {
  return brokenMatch(w, broken) ? brokenStatus(w, now) : rolledOutStatus(w, now);
}

const condKey = (c: Condition): string => `${c.type}|${c.status}|${c.reason}|${c.message}`;

/**
 * True when current already says what desired says. Timestamps are ignored (they change on every
 * build), and a missing count equals 0 (the API omits zero counts), so a written status compares equal.
 */
export function statusMatches(current: WorkloadStatus | undefined, desired: WorkloadStatus): boolean {
  const cur = current ?? {};
  return Object.entries(desired).every(([key, want]) => {
    const have = cur[key];
    if (key === 'conditions') {
      const a = ((have as Condition[] | undefined) ?? []).map(condKey).sort();
      const b = (want as Condition[]).map(condKey).sort();
      return JSON.stringify(a) === JSON.stringify(b);
    }
    return (have ?? (typeof want === 'number' ? 0 : undefined)) === want;
  });
}

interface ApiAccess {
  server: string;
  token: string;
  ca?: Buffer;
  insecure: boolean;
}

/** Server and bearer token of the current context: the shape the sandbox writes (cluster.ts). */
export async function readKubeconfigAccess(path: string): Promise<ApiAccess> {
  interface Kc {
    'current-context'?: string;
    contexts?: { name: string; context: { cluster: string; user: string } }[];
    clusters?: {
      name: string;
      cluster: { server: string; 'insecure-skip-tls-verify'?: boolean; 'certificate-authority-data'?: string };
    }[];
    users?: { name: string; user: { token?: string } }[];
  }
  const kc = parse(await readFile(path, 'utf8')) as Kc;
  const ctx = kc.contexts?.find((c) => c.name === kc['current-context'])?.context;
  const cluster = kc.clusters?.find((c) => c.name === ctx?.cluster)?.cluster;
  const token = kc.users?.find((u) => u.name === ctx?.user)?.user.token;
  if (!cluster?.server || !token) throw new Error(`${path}: no server and token for the current context`);
  const caData = cluster['certificate-authority-data'];
  return {
    server: cluster.server,
    token,
    ca: caData ? Buffer.from(caData, 'base64') : undefined,
    insecure: cluster['insecure-skip-tls-verify'] === true,
  };
}

function getJson(access: ApiAccess, agent: Agent, path: string): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const req = request(
      new URL(path, access.server),
      {
        agent,
        ca: access.ca,
        rejectUnauthorized: !access.insecure,
        headers: { Authorization: `Bearer ${access.token}`, Accept: 'application/json' },
        timeout: 10_000,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', reject);
        res.on('end', () => {
          const body = Buffer.concat(chunks).toString();
          if (res.statusCode !== 200) reject(new Error(`GET ${path}: HTTP ${res.statusCode}: ${body.slice(0, 200)}`));
          else resolve(JSON.parse(body));
        });
      }
    );
    req.on('timeout', () => req.destroy(new Error(`GET ${path}: timed out`)));
    req.on('error', reject);
    req.end();
  });
}

// resourceVersion=0: served from the apiserver's watch cache; a consistent list reads kine every
// time (measured: kine +2 % of a core per cluster, for nothing; a stale list is caught next round).
const LISTS = [
  ['Deployment', '/apis/apps/v1/deployments?resourceVersion=0'],
  ['StatefulSet', '/apis/apps/v1/statefulsets?resourceVersion=0'],
  ['DaemonSet', '/apis/apps/v1/daemonsets?resourceVersion=0'],
] as const;

export function startWorkloadStandIn(opts: WorkloadStandInOptions): WorkloadStandIn {
  let broken = parseBrokenImages(opts.broken ?? []);
  const log = opts.log ?? (() => undefined);
  const patched: string[] = [];
  // uid -> resourceVersion our last patch produced: if the object is unchanged since then and
  // still does not match, the apiserver stored something else than we compare (a dropped field),
  // and patching again would only loop.
  const written = new Map<string, string>();
  const warned = new Set<string>();
  const kubectl = (args: string[]) =>
    execa(opts.kubectl, ['--kubeconfig', opts.kubeconfig, '--request-timeout=10s', ...args], {
      reject: false,
      timeout: 20_000,
    });
  // Keep-alive: one TLS handshake per cluster, not one per poll; destroyed by stop().
  const agent = new Agent({ keepAlive: true, maxSockets: LISTS.length });
  let access: ApiAccess | undefined;
  let stopped = false;
  let wake: (() => void) | undefined;
  let timer: NodeJS.Timeout | undefined;

  const list = async (): Promise<Workload[] | undefined> => {
    access ??= await readKubeconfigAccess(opts.kubeconfig);
    const a = access;
    try {
      const lists = await Promise.all(
        LISTS.map(async ([kind, path]) => {
          // List items carry no kind: set it from the list's resource.
          const items = ((await getJson(a, agent, path)) as { items: Workload[] }).items;
          return items.map((w) => ({ ...w, kind }));
        })
      );
      return lists.flat();
    } catch (err) {
      // e.g. cluster stopped for an outage test: try again later; each distinct error logged once.
      const line = `[workload-standin] ${opts.cluster}: list: ${String(err)}`;
      if (!warned.has(line)) log(line);
      warned.add(line);
      return undefined;
    }
  };

  const tick = async (): Promise<void> => {
    const items = await list();
    for (const w of items ?? []) {
      if (stopped) return;
      const want = desiredStatus(w, broken);
      if (!want || statusMatches(w.status, want)) continue;
      const { name, namespace = 'default', uid = '', resourceVersion = '', generation } = w.metadata;
      const id = `${w.kind} ${namespace}/${name}@${generation ?? '?'}`;
      if (written.get(uid) === resourceVersion) {
        if (!warned.has(id)) log(`[workload-standin] ${opts.cluster}: ${id}: status stored differs from the patch`);
        warned.add(id);
        continue;
      }
      const p = await kubectl([
        'patch',
        w.kind.toLowerCase(),
        name,
        '-n',
        namespace,
        '--subresource=status',
        '--type=merge',
        '-p',
        JSON.stringify({ status: want }),
        '-o',
        'jsonpath={.metadata.resourceVersion}',
      ]);
      const state = brokenMatch(w, broken) ? 'unready' : 'ready';
      if (p.exitCode === 0) {
        written.set(uid, p.stdout.trim());
        patched.push(`${id} ${state}`);
        log(`[workload-standin] ${opts.cluster}: ${id}: ${state}`);
      } else {
        // NotFound (deleted meanwhile) or a validation error: the next round retries; one log line.
        const line = `[workload-standin] ${opts.cluster}: ${id}: status patch refused: ${p.stderr.trim()}`;
        if (!warned.has(line)) log(line);
        warned.add(line);
      }
    }
  };

  const loop = (async () => {
    while (!stopped) {
      await tick().catch((err: unknown) => log(`[workload-standin] ${opts.cluster}: ${String(err)}`));
      if (stopped) break;
      await new Promise<void>((res) => {
        wake = res;
        timer = setTimeout(res, opts.intervalMs ?? 300);
      });
    }
  })();

  return {
    patched,
    setBroken(entries) {
      broken = parseBrokenImages(entries);
      written.clear(); // a workload patched as broken is now wanted otherwise: not a stored-status mismatch
      wake?.();
    },
    async stop() {
      stopped = true;
      clearTimeout(timer); // no pending timer keeps the process alive after stop()
      wake?.();
      agent.destroy(); // ends a list in flight now, not at its 10 s timeout
      await loop;
    },
  };
}
