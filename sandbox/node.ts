// A real node for a sandbox cluster: containerd (runc) + kubelet running real pods, and the
// kube-controller-manager and kube-scheduler that make Deployments, ReplicaSets, Jobs, ... act,
// next to the cluster's own API server. Several nodes run side by side on one host, each with a
// slot of its own: its containerd socket and state, cgroup root, CNI bridge and pod subnet.
// The recipe, measured on these machines, is in shared/toolchain.md ("Real nodes").
//
// Teardown leaves nothing behind: the pods' processes, mounts, network namespaces, cgroups and
// the bridge go with the node. A slot whose owner died without teardown (SIGKILL) is cleaned by
// the next node that takes it.
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, rm, rmdir, writeFile } from 'node:fs/promises';
import { networkInterfaces } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { stringify } from 'yaml';
import type { SandboxCluster } from './cluster';
import { MIRRORED_HOSTS, PAUSE_IMAGE } from './images';
import { freePort, sleep, spawnTracked, terminate, waitUntilReady, type Tracked } from './procs';

export interface NodeTools {
  kubelet: string;
  kubeControllerManager: string;
  kubeScheduler: string;
  kubectl: string;
}

export interface SandboxNode {
  /** The Node object's name: the cluster's name. */
  name: string;
  /**
   * Puts an image archive (oci-archive or docker-archive, e.g. from `podman save`) into the node's
   * containerd, where the kubelet finds it without a pull (imagePullPolicy IfNotPresent or Never).
   */
  loadImage(archive: string): Promise<void>;
  /** Kills every pod and process of the node and removes what it made (mounts, cgroups, bridge). */
  stop(): Promise<void>;
}

type Log = (line: string) => void;

const SLOTS_DIR = '/run/skoala-upgrade/nodes';
const MAX_SLOTS = 64;
const CONTROLLERS = [
  'deployment-controller',
  'replicaset-controller',
  'statefulset-controller',
  'daemonset-controller',
  'job-controller',
  'garbage-collector-controller',
  // Lifts the not-ready taint once the kubelet reports Ready.
  'node-lifecycle-controller',
];

/** The host's first non-loopback IPv4 address: the kubelet refuses a loopback node IP. */
export function hostIp(): string {
  for (const addrs of Object.values(networkInterfaces()))
    for (const a of addrs ?? []) if (a.family === 'IPv4' && !a.internal) return a.address;
  throw new Error('real nodes need a non-loopback IPv4 address (none found)');
}

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

interface Slot {
  n: number;
  dir: string;
  bridge: string;
  subnet: string;
  cgroupRoot: string;
}

const slotOf = (n: number, dir: string): Slot => ({
  n,
  dir,
  bridge: `skoala-n${n}`,
  subnet: `10.${100 + n}.0.0/24`,
  cgroupRoot: `/skoala-node-${n}`,
});

/** The slot's owner, when it wrote one (a slot just made has none yet: it is not stale). */
async function ownerOf(path: string): Promise<{ pid: number; dir: string } | undefined> {
  return readFile(join(path, 'owner.json'), 'utf8').then(
    (s) => JSON.parse(s) as { pid: number; dir: string },
    () => undefined
  );
}

/**
 * Cleans every slot whose owner process is gone (SIGKILLed before its teardown), then takes a free
 * one (mkdir is atomic: two nodes starting at once never share a slot).
 */
async function takeSlot(dir: string, log: Log): Promise<Slot> {
  await mkdir(SLOTS_DIR, { recursive: true });
  for (const name of await readdir(SLOTS_DIR)) {
    const owner = await ownerOf(join(SLOTS_DIR, name));
    if (!owner || alive(owner.pid)) continue;
    log(`[node] slot ${name}: its owner (pid ${owner.pid}) is gone; cleaning what it left`);
    await cleanSlot(slotOf(Number(name), owner.dir));
    await rm(join(SLOTS_DIR, name), { recursive: true, force: true });
  }
  for (let n = 0; n < MAX_SLOTS; n++) {
    try {
      await mkdir(join(SLOTS_DIR, String(n)));
    } catch {
      continue; // taken
    }
    await writeFile(join(SLOTS_DIR, String(n), 'owner.json'), JSON.stringify({ pid: process.pid, dir }));
    return slotOf(n, dir);
  }
  throw new Error(`no free real-node slot of ${MAX_SLOTS} in ${SLOTS_DIR}`);
}

/** Every process whose command line names this node's containerd socket, and their descendants. */
async function slotProcesses(sock: string): Promise<number[]> {
  const pids = (await readdir('/proc')).filter((p) => /^\d+$/.test(p)).map(Number);
  const parent = new Map<number, number>();
  const roots: number[] = [];
  for (const pid of pids) {
    const [stat, cmd] = await Promise.all([
      readFile(`/proc/${pid}/stat`, 'utf8').catch(() => ''),
      readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => ''),
    ]);
    const ppid = Number(/\) \S (\d+)/.exec(stat)?.[1] ?? 0);
    parent.set(pid, ppid);
    if (cmd.includes(sock)) roots.push(pid);
  }
  const found = new Set(roots);
  for (let grew = true; grew;) {
    grew = false;
    for (const [pid, ppid] of parent)
      if (!found.has(pid) && found.has(ppid)) {
        found.add(pid);
        grew = true;
      }
  }
  return [...found];
}

/** Mount points under any of these folders, deepest first. */
async function mountsUnder(dirs: string[]): Promise<string[]> {
  const info = await readFile('/proc/self/mountinfo', 'utf8');
  const points = info
    .split('\n')
    .map((l) => l.split(' ')[4] ?? '')
    .filter((p) => dirs.some((d) => p === d || p.startsWith(`${d}/`)));
  return [...new Set(points)].sort((a, b) => b.length - a.length);
}

async function removeCgroups(root: string): Promise<void> {
  const hierarchies = await readdir('/sys/fs/cgroup').catch(() => [] as string[]);
  const rmTree = async (path: string): Promise<void> => {
    const entries = await readdir(path, { withFileTypes: true }).catch(() => []);
    for (const e of entries) if (e.isDirectory()) await rmTree(join(path, e.name));
    await rmdir(path).catch(() => undefined);
  };
  for (const h of hierarchies) {
    const path = join('/sys/fs/cgroup', h, root);
    if (existsSync(path)) await rmTree(path);
  }
}

/** Removes everything a node of this slot may have left: processes, mounts, cgroups, bridge. */
async function cleanSlot(slot: Slot): Promise<void> {
  const sock = join(slot.dir, 'state', 'containerd.sock');
  for (const pid of await slotProcesses(sock)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  for (let i = 0; i < 50 && (await slotProcesses(sock)).length > 0; i++) await sleep(100);
  for (const m of await mountsUnder([slot.dir])) await execa('umount', ['-l', m], { reject: false });
  await removeCgroups(slot.cgroupRoot);
  await execa('ip', ['link', 'del', slot.bridge], { reject: false });
  // The logs stay (the sandbox's folder goes with the sandbox); what containerd and kubelet kept goes now.
  for (const sub of ['root', 'state', 'kubelet', 'ipam'])
    await rm(join(slot.dir, sub), { recursive: true, force: true }).catch(() => undefined);
}

function containerdConfig(d: string, cni: string): string {
  // TOML by hand: the handful of keys containerd 1.6 needs here.
  const q = JSON.stringify;
  return `version = 2
root = ${q(join(d, 'root'))}
state = ${q(join(d, 'state'))}
[grpc]
  address = ${q(join(d, 'state', 'containerd.sock'))}
[ttrpc]
  address = ${q(join(d, 'state', 'containerd.sock.ttrpc'))}
[metrics]
  address = ""
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = ${q(PAUSE_IMAGE)}
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  netns_mounts_under_state_dir = true
  # Without CAP_SYS_RESOURCE (these VMs), a pod may not lower its OOM score below containerd's.
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = ${q(cni)}
  [plugins."io.containerd.grpc.v1.cri".registry]
    config_path = ${q(join(d, 'certs.d'))}
`;
}

export interface StartNodeOptions {
  cluster: SandboxCluster;
  /** The node's own folder (created; removed by stop()). */
  dir: string;
  tools: NodeTools;
  /** Plain-HTTP registry (host:port) that answers for MIRRORED_HOSTS. */
  registry: string;
  log?: Log;
}

/** Starts containerd, kubelet, controller manager and scheduler; resolves when the Node is Ready. */
export async function startNode(opts: StartNodeOptions): Promise<SandboxNode> {
  const log = opts.log ?? (() => undefined);
  const t0 = Date.now();
  const { cluster, tools } = opts;
  const slot = await takeSlot(opts.dir, log);
  const d = slot.dir;
  const procs: Tracked[] = [];
  const stop = async (): Promise<void> => {
    for (const p of procs.reverse()) await terminate(p, 3000);
    procs.length = 0;
    await cleanSlot(slot);
    await rm(join(SLOTS_DIR, String(slot.n)), { recursive: true, force: true });
  };
  try {
    const cni = join(d, 'cni');
    await Promise.all(
      [cni, ...['state', 'root', 'kubelet', 'pod-logs', 'logs'].map((p) => join(d, p))].map((p) =>
        mkdir(p, { recursive: true })
      )
    );
    for (const host of MIRRORED_HOSTS) {
      await mkdir(join(d, 'certs.d', host), { recursive: true });
      await writeFile(
        join(d, 'certs.d', host, 'hosts.toml'),
        `server = "http://${opts.registry}"\n[host."http://${opts.registry}"]\n  capabilities = ["pull", "resolve"]\n`
      );
    }
    await writeFile(
      join(cni, '10-skoala.conflist'),
      JSON.stringify({
        cniVersion: '1.0.0',
        name: `skoala-node-${slot.n}`,
        plugins: [
          {
            type: 'bridge',
            bridge: slot.bridge,
            isGateway: true,
            ipMasq: false,
            hairpinMode: true,
            ipam: { type: 'host-local', ranges: [[{ subnet: slot.subnet }]], dataDir: join(d, 'ipam') },
          },
        ],
      })
    );
    await writeFile(join(d, 'containerd.toml'), containerdConfig(d, cni));
    const sock = join(d, 'state', 'containerd.sock');
    const containerd = spawnTracked(
      `containerd:${cluster.name}`,
      'containerd',
      ['--config', join(d, 'containerd.toml')],
      join(d, 'logs', 'containerd.log'),
      d
    );
    procs.push(containerd);
    await waitUntilReady(`${cluster.name}: containerd`, containerd, async () => existsSync(sock), 30_000);
    const ip = hostIp();
    const kubeletPort = await freePort();
    await writeFile(
      join(d, 'kubelet.yaml'),
      stringify({
        apiVersion: 'kubelet.config.k8s.io/v1beta1',
        kind: 'KubeletConfiguration',
        address: ip,
        port: kubeletPort,
        readOnlyPort: 0,
        healthzPort: 0,
        authentication: { anonymous: { enabled: true }, webhook: { enabled: false } },
        authorization: { mode: 'AlwaysAllow' },
        cgroupDriver: 'cgroupfs',
        cgroupRoot: slot.cgroupRoot,
        failSwapOn: false,
        failCgroupV1: false,
        containerRuntimeEndpoint: `unix://${sock}`,
        enforceNodeAllocatable: [],
        makeIPTablesUtilChains: false,
        localStorageCapacityIsolation: false,
        podLogsDir: join(d, 'pod-logs'),
        serializeImagePulls: false,
        // No eviction or image GC on a test bed: the disk and memory thresholds are the host's.
        evictionHard: { 'memory.available': '0%', 'nodefs.available': '0%', 'imagefs.available': '0%' },
        imageGCHighThresholdPercent: 100,
        imageGCLowThresholdPercent: 99,
        resolvConf: '',
        // Pods that end are seen at once (the default 1 s status sync is kept).
        nodeStatusUpdateFrequency: '5s',
      })
    );
    for (const h of await readdir('/sys/fs/cgroup').catch(() => [] as string[]))
      await mkdir(join('/sys/fs/cgroup', h, slot.cgroupRoot), { recursive: true }).catch(() => undefined);
    const kubelet = spawnTracked(
      `kubelet:${cluster.name}`,
      tools.kubelet,
      [
        `--config=${join(d, 'kubelet.yaml')}`,
        `--kubeconfig=${cluster.kubeconfig}`,
        `--root-dir=${join(d, 'kubelet')}`,
        `--cert-dir=${join(d, 'kubelet', 'pki')}`,
        `--hostname-override=${cluster.name}`,
        `--node-ip=${ip}`,
        '--v=1',
      ],
      join(d, 'logs', 'kubelet.log'),
      d
    );
    procs.push(kubelet);
    const common = [`--kubeconfig=${cluster.kubeconfig}`, '--leader-elect=false', '--secure-port=0', '--v=1'];
    procs.push(
      spawnTracked(
        `kube-controller-manager:${cluster.name}`,
        tools.kubeControllerManager,
        [...common, `--controllers=${CONTROLLERS.join(',')}`, '--use-service-account-credentials=false'],
        join(d, 'logs', 'kube-controller-manager.log'),
        d
      ),
      spawnTracked(
        `kube-scheduler:${cluster.name}`,
        tools.kubeScheduler,
        common,
        join(d, 'logs', 'kube-scheduler.log'),
        d
      )
    );
    const kubectl = (args: string[]) =>
      execa(tools.kubectl, ['--kubeconfig', cluster.kubeconfig, '--context', cluster.context, ...args], {
        reject: false,
      });
    await waitUntilReady(
      `${cluster.name}: node Ready`,
      kubelet,
      async () => {
        const r = await kubectl([
          'get',
          'node',
          cluster.name,
          '-o',
          'jsonpath={.status.conditions[?(@.type=="Ready")].status} {.spec.taints}',
        ]);
        // Ready, and the controller manager lifted the not-ready taint: pods can land.
        return r.exitCode === 0 && r.stdout.startsWith('True') && !r.stdout.includes('not-ready');
      },
      60_000
    );
    log(`[node] ${cluster.name}: real node Ready in ${((Date.now() - t0) / 1000).toFixed(1)} s (slot ${slot.n})`);
    const loadImage = async (archive: string): Promise<void> => {
      await execa('ctr', ['--address', sock, '--namespace', 'k8s.io', 'images', 'import', archive]);
    };
    return { name: cluster.name, loadImage, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}
