// A production-shaped Temporal for tests: the real server binary (go.temporal.io/server, all four
// services in one process) on a local PostgreSQL 15, schemas set up by temporal-sql-tool, and
// optionally a TLS / mTLS frontend. The persistence mirrors docker-compose.yml (postgres12 plugin,
// user temporal/temporal, databases temporal + temporal_visibility).
//
// PostgreSQL runs in the foreground as a tracked child (sandbox/procs.ts), not daemonized by
// pg_ctl: it then dies with the test process. initdb refuses root, so as root both run as the
// `postgres` user (setpriv, which also re-arms the parent-death signal after the uid change) in a
// temp folder owned by that user; otherwise as the current user inside `dir`.
//
// The real server (unlike the dev server) has no `default` namespace: it is registered here over
// gRPC, and start-up returns once a lookup in it reaches history ("workflow not found").
import { existsSync } from 'node:fs';
import { chown, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Connection, type TLSConfig } from '@temporalio/client';
import { msToTs } from '@temporalio/common/lib/time';
import { execa } from 'execa';
import { stringify } from 'yaml';
import { freePort, sleep, spawnTracked, tailFile, terminate, type Tracked } from './procs';
import { ensureTools } from './tools';

export interface TemporalServerTls {
  /** PEM of the CA that signed serverCert (what clients trust) and, with mTLS, the client certs. */
  caCert: string;
  serverCert: string;
  serverKey: string;
  /** mTLS: the frontend refuses clients without a certificate signed by caCert. */
  requireClientCert: boolean;
  /**
   * Name clients check the server certificate against when it differs from the host they dial
   * (127.0.0.1). Leave unset when the certificate holds IP:127.0.0.1 (test-ca's default does).
   */
  serverName?: string;
}

export interface StartTemporalServerOptions {
  /** Config, dynamic config and logs go here (kept by stop(): the caller owns the folder). */
  dir: string;
  /**
   * The serverCert is also the certificate the server's own system workers and this module's
   * readiness checks present to the frontend, so it must allow client use too (test-ca's do).
   */
  tls?: TemporalServerTls;
  log?: (line: string) => void;
  /** Binaries; default: ensureTools({ only: ['temporalServer', 'temporalSqlTool'] }). */
  bins?: { temporalServer: string; temporalSqlTool: string };
}

export interface TemporalServer {
  /** 127.0.0.1:PORT of the frontend (gRPC; TLS when tls was given). */
  address: string;
  namespace: 'default';
  /** The server's config file and its log. */
  configFile: string;
  logFile: string;
  /** PostgreSQL on 127.0.0.1 (user temporal, password temporal). */
  postgres: { port: number; logFile: string };
  /** Milliseconds per start-up phase, plus `total`. */
  timings: Record<string, number>;
  /**
   * TEMPORAL_* variables (@temporalio/envconfig names) for a client of this server; pass the
   * client certificate for mTLS.
   */
  clientEnv(clientCert?: { cert: string; key: string }): Record<string, string>;
  /** Server (SIGTERM), then PostgreSQL (fast shutdown); idempotent. */
  stop(): Promise<void>;
}

const DB_USER = 'temporal';
const DB_PASSWORD = 'temporal';
const NUM_HISTORY_SHARDS = 4;
const NAMESPACE = 'default';
const RETENTION = '1 day';
const START_TIMEOUT_MS = 120_000;

/** Debian's PostgreSQL 15 first, then whatever else is installed. SKOALA_PG_BIN overrides. */
export function findPostgresBin(): string {
  const candidates = [
    process.env.SKOALA_PG_BIN,
    '/usr/lib/postgresql/15/bin',
    '/usr/lib/postgresql/16/bin',
    '/usr/lib/postgresql/17/bin',
    '/usr/local/pgsql/bin',
    '/usr/local/bin',
    '/usr/bin',
  ].filter((d): d is string => !!d);
  const found = candidates.find((d) => ['initdb', 'postgres', 'pg_isready'].every((b) => existsSync(join(d, b))));
  if (!found) {
    throw new Error(
      `PostgreSQL binaries (initdb, postgres, pg_isready) not found in ${candidates.join(', ')}: ` +
        'apt-get install postgresql, or set SKOALA_PG_BIN'
    );
  }
  return found;
}

interface PgUser {
  /** Prefix that runs a command as the postgres user (empty when not root). */
  asPg: string[];
  uid?: number;
  gid?: number;
}

async function postgresUser(): Promise<PgUser> {
  if (process.getuid?.() !== 0) return { asPg: [] };
  const uid = Number((await execa('id', ['-u', 'postgres'])).stdout.trim());
  const gid = Number((await execa('id', ['-g', 'postgres'])).stdout.trim());
  // --pdeathsig after --reuid: the kernel clears the parent-death signal on a uid change.
  return {
    asPg: ['/usr/bin/setpriv', '--reuid=postgres', '--regid=postgres', '--clear-groups', '--pdeathsig', 'KILL', '--'],
    uid,
    gid,
  };
}

/** [file, args] for running `file args` as the postgres user when needed. */
function cmd(user: PgUser, file: string, args: string[]): [string, string[]] {
  const [setpriv, ...opts] = user.asPg;
  return setpriv ? [setpriv, [...opts, file, ...args]] : [file, args];
}

function serverConfig(p: {
  dir: string;
  pgPort: number;
  ports: Record<
    | 'frontend'
    | 'frontendHttp'
    | 'frontendMember'
    | 'history'
    | 'historyMember'
    | 'matching'
    | 'matchingMember'
    | 'worker'
    | 'workerMember',
    number
  >;
  tls?: TemporalServerTls;
}): Record<string, unknown> {
  const sql = (databaseName: string, maxConns: number) => ({
    sql: {
      pluginName: 'postgres12',
      databaseName,
      connectAddr: `127.0.0.1:${p.pgPort}`,
      connectProtocol: 'tcp',
      user: DB_USER,
      password: DB_PASSWORD,
      maxConns,
      maxIdleConns: maxConns,
      maxConnLifetime: '1h',
    },
  });
  const rpc = (grpcPort: number, membershipPort: number, extra: Record<string, unknown> = {}) => ({
    rpc: { grpcPort, membershipPort, bindOnLocalHost: true, ...extra },
  });
  const tls = p.tls && {
    frontend: {
      server: {
        certFile: p.tls.serverCert,
        keyFile: p.tls.serverKey,
        ...(p.tls.requireClientCert ? { requireClientAuth: true, clientCaFiles: [p.tls.caCert] } : {}),
      },
      client: { rootCaFiles: [p.tls.caCert], ...(p.tls.serverName ? { serverName: p.tls.serverName } : {}) },
    },
    // The worker service's own clients (scanner, batcher, ...) reach the frontend through
    // membership and need a certificate of their own once the frontend asks for one.
    // They dial the frontend's membership address (an IP, no host name), and Go's TLS refuses a
    // handshake without a ServerName: name the certificate's IP (or the given server name).
    systemWorker: {
      certFile: p.tls.serverCert,
      keyFile: p.tls.serverKey,
      client: { rootCaFiles: [p.tls.caCert], serverName: p.tls.serverName ?? '127.0.0.1' },
    },
  };
  return {
    log: { stdout: true, level: 'warn' },
    persistence: {
      defaultStore: 'postgres-default',
      visibilityStore: 'postgres-visibility',
      numHistoryShards: NUM_HISTORY_SHARDS,
      datastores: { 'postgres-default': sql('temporal', 20), 'postgres-visibility': sql('temporal_visibility', 4) },
    },
    global: {
      membership: { maxJoinDuration: '30s', broadcastAddress: '127.0.0.1' },
      ...(tls ? { tls } : {}),
    },
    services: {
      frontend: rpc(p.ports.frontend, p.ports.frontendMember, { httpPort: p.ports.frontendHttp }),
      history: rpc(p.ports.history, p.ports.historyMember),
      matching: rpc(p.ports.matching, p.ports.matchingMember),
      worker: rpc(p.ports.worker, p.ports.workerMember),
    },
    clusterMetadata: {
      enableGlobalNamespace: false,
      failoverVersionIncrement: 10,
      masterClusterName: 'active',
      currentClusterName: 'active',
      clusterInformation: {
        active: {
          enabled: true,
          initialFailoverVersion: 1,
          rpcName: 'frontend',
          rpcAddress: `127.0.0.1:${p.ports.frontend}`,
        },
      },
    },
    dcRedirectionPolicy: { policy: 'noop' },
    archival: { history: { state: 'disabled' }, visibility: { state: 'disabled' } },
    namespaceDefaults: { archival: { history: { state: 'disabled' }, visibility: { state: 'disabled' } } },
    dynamicConfigClient: { filepath: join(p.dir, 'dynamicconfig.yaml'), pollInterval: '10s' },
  };
}

// The few knobs a test server wants: a new namespace is seen by every service within a second.
const DYNAMIC_CONFIG = {
  'system.namespaceCacheRefreshInterval': [{ value: '1s' }],
  'limit.maxIDLength': [{ value: 255 }],
};

export async function clientTlsOf(
  tls: TemporalServerTls | undefined,
  clientCert?: { cert: string; key: string }
): Promise<TLSConfig | undefined> {
  if (!tls) return undefined;
  return {
    serverRootCACertificate: await readFile(tls.caCert),
    ...(tls.serverName ? { serverNameOverride: tls.serverName } : {}),
    ...(clientCert
      ? { clientCertPair: { crt: await readFile(clientCert.cert), key: await readFile(clientCert.key) } }
      : {}),
  };
}

/**
 * The server stores each member's gRPC port in cluster_membership.rpc_port, a PostgreSQL
 * smallint: a port above 32767 (any kernel-assigned ephemeral port) fails the membership
 * heartbeat and the server exits. So its ports come from 20000-32767, below the ephemeral range.
 */
async function freeLowPort(taken: Set<number>): Promise<number> {
  for (let i = 0; i < 200; i++) {
    const port = 20000 + Math.floor(Math.random() * 12768);
    if (taken.has(port)) continue;
    const ok = await new Promise<boolean>((res) => {
      const srv = createServer();
      srv.once('error', () => res(false));
      srv.listen(port, '127.0.0.1', () => srv.close(() => res(true)));
    });
    if (ok) {
      taken.add(port);
      return port;
    }
  }
  throw new Error('no free loopback port in 20000-32767');
}

/** The server logs JSON lines with stack traces: keep level, msg and error of the last few. */
async function serverLogTail(file: string, lines = 8): Promise<string> {
  return (await tailFile(file, lines))
    .split('\n')
    .map((l) => {
      try {
        const j = JSON.parse(l) as { level?: string; msg?: string; error?: string };
        return `${j.level ?? '?'}: ${j.msg ?? ''}${j.error ? `: ${j.error}` : ''}`;
      } catch {
        return l;
      }
    })
    .join('\n');
}

function grpcMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

export async function startTemporalServer(opts: StartTemporalServerOptions): Promise<TemporalServer> {
  const log = opts.log ?? (() => undefined);
  const dir = resolve(opts.dir);
  await mkdir(dir, { recursive: true });
  const t0 = Date.now();
  const timings: Record<string, number> = {};
  let mark = t0;
  const phase = (name: string): void => {
    const now = Date.now();
    timings[name] = now - mark;
    mark = now;
    log(`[temporal-server] ${name}: ${timings[name]} ms`);
  };

  const bins = opts.bins ?? (await ensureTools({ only: ['temporalServer', 'temporalSqlTool'], log }));
  const pgBin = findPostgresBin();
  const user = await postgresUser();
  phase('tools');

  // Stop functions of what is running so far, newest first.
  const cleanups: (() => Promise<void>)[] = [];
  let stopped = false;
  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    for (const c of cleanups.reverse()) await c().catch(() => undefined);
    cleanups.length = 0;
  };

  const pgLog = join(dir, 'postgres.log');
  const serverLog = join(dir, 'temporal-server.log');
  let server: Tracked | undefined;
  let pg: Tracked | undefined;
  try {
    // --- PostgreSQL ---------------------------------------------------------------------------
    let pgRoot: string;
    if (user.uid !== undefined) {
      // The postgres user cannot enter a root-owned 0700 temp dir: its folder lives on its own.
      pgRoot = await mkdtemp(join(tmpdir(), 'skoala-temporal-pg-'));
      const own = pgRoot;
      cleanups.push(() => rm(own, { recursive: true, force: true }));
      await chown(pgRoot, user.uid, user.gid ?? user.uid);
    } else {
      pgRoot = join(dir, 'postgres');
      await rm(pgRoot, { recursive: true, force: true });
      await mkdir(pgRoot, { recursive: true, mode: 0o700 });
    }
    const pwFile = join(pgRoot, 'pwfile');
    await writeFile(pwFile, `${DB_PASSWORD}\n`, { mode: 0o600 });
    if (user.uid !== undefined) await chown(pwFile, user.uid, user.gid ?? user.uid);
    const dataDir = join(pgRoot, 'data');
    const [initFile, initArgs] = cmd(user, join(pgBin, 'initdb'), [
      '-D',
      dataDir,
      '-U',
      DB_USER,
      '-A',
      'scram-sha-256',
      `--pwfile=${pwFile}`,
      '-E',
      'UTF8',
      '--no-sync',
      '--no-instructions',
    ]);
    const init = await execa(initFile, initArgs, { cwd: pgRoot, reject: false, all: true });
    if (init.exitCode !== 0) throw new Error(`initdb failed (exit ${init.exitCode}):\n${init.all}`);
    phase('initdb');

    const pgPort = await freePort();
    const [pgFile, pgArgs] = cmd(user, join(pgBin, 'postgres'), [
      '-D',
      dataDir,
      '-p',
      String(pgPort),
      '-k',
      pgRoot,
      '-c',
      'listen_addresses=127.0.0.1',
      '-c',
      'max_connections=200',
      // A throwaway test database: durability against power loss buys nothing here.
      '-c',
      'fsync=off',
      '-c',
      'synchronous_commit=off',
      '-c',
      'full_page_writes=off',
    ]);
    pg = spawnTracked('postgres', pgFile, pgArgs, pgLog, pgRoot);
    const pgProc = pg;
    cleanups.push(async () => {
      // SIGINT is PostgreSQL's "fast" shutdown (SIGTERM would wait for clients to leave).
      if (pgProc.child.exitCode === null && pgProc.child.signalCode === null) pgProc.child.kill('SIGINT');
      await terminate(pgProc, 10_000);
    });
    for (;;) {
      if (pgProc.child.exitCode !== null || pgProc.child.signalCode !== null) {
        throw new Error(`postgres exited (${await pgProc.exited}):\n${await tailFile(pgLog)}`);
      }
      const r = await execa(join(pgBin, 'pg_isready'), ['-h', '127.0.0.1', '-p', String(pgPort), '-U', DB_USER], {
        reject: false,
      });
      if (r.exitCode === 0) break;
      if (Date.now() - t0 > START_TIMEOUT_MS) throw new Error(`postgres not ready:\n${await tailFile(pgLog)}`);
      await sleep(100);
    }
    phase('postgres');

    // --- schemas (the sql tool's embedded copies of schema/postgresql/v12/...) -----------------
    const sqlTool = async (db: string, args: string[]): Promise<void> => {
      const base = ['--plugin', 'postgres12', '--ep', '127.0.0.1', '-p', String(pgPort), '-u', DB_USER];
      const r = await execa(bins.temporalSqlTool, [...base, '--pw', DB_PASSWORD, '--db', db, ...args], {
        reject: false,
        all: true,
      });
      if (r.exitCode !== 0) {
        throw new Error(`temporal-sql-tool --db ${db} ${args.join(' ')} failed (exit ${r.exitCode}):\n${r.all}`);
      }
    };
    const schema = async (db: string, name: string): Promise<void> => {
      await sqlTool(db, ['create-database']);
      await sqlTool(db, ['setup-schema', '-v', '0.0']);
      await sqlTool(db, ['update-schema', '--schema-name', name]);
    };
    await Promise.all([
      schema('temporal', 'postgresql/v12/temporal'),
      schema('temporal_visibility', 'postgresql/v12/visibility'),
    ]);
    phase('schemas');

    // --- server ---------------------------------------------------------------------------------
    const names = [
      'frontend',
      'frontendHttp',
      'frontendMember',
      'history',
      'historyMember',
      'matching',
      'matchingMember',
      'worker',
      'workerMember',
    ] as const;
    const ports = {} as Record<(typeof names)[number], number>;
    const taken = new Set<number>([pgPort]);
    for (const n of names) ports[n] = await freeLowPort(taken);
    const configFile = join(dir, 'temporal-server.yaml');
    await writeFile(configFile, stringify(serverConfig({ dir, pgPort, ports, tls: opts.tls })));
    await writeFile(join(dir, 'dynamicconfig.yaml'), stringify(DYNAMIC_CONFIG));
    server = spawnTracked(
      'temporal-server',
      bins.temporalServer,
      ['--config-file', configFile, '--allow-no-auth', 'start'],
      serverLog,
      dir
    );
    const serverProc = server;
    cleanups.push(() => terminate(serverProc, 10_000));
    const address = `127.0.0.1:${ports.frontend}`;

    // The readiness checks speak to the frontend as the server's own system workers do.
    const tls = await clientTlsOf(opts.tls, opts.tls && { cert: opts.tls.serverCert, key: opts.tls.serverKey });
    const failIfExited = async (what: string): Promise<void> => {
      if (serverProc.child.exitCode !== null || serverProc.child.signalCode !== null) {
        throw new Error(
          `temporal-server exited (${await serverProc.exited}) ${what}:\n${await serverLogTail(serverLog)}`
        );
      }
    };
    let connection: Connection | undefined;
    let lastErr = '';
    while (!connection) {
      await failIfExited('before its frontend answered');
      if (Date.now() - t0 > START_TIMEOUT_MS) {
        throw new Error(
          `temporal-server frontend ${address} not answering (${lastErr}):\n${await serverLogTail(serverLog)}`
        );
      }
      try {
        connection = await Connection.connect({ address, tls, connectTimeout: 2000 });
      } catch (err) {
        lastErr = grpcMessage(err);
        await sleep(250);
      }
    }
    try {
      phase('frontend');
      const svc = connection.workflowService;
      try {
        await svc.registerNamespace({
          namespace: NAMESPACE,
          description: 'registered by sandbox/temporal-server.ts',
          workflowExecutionRetentionPeriod: msToTs(RETENTION),
        });
      } catch (err) {
        if (!/already exists/i.test(grpcMessage(err))) throw err;
      }
      // Usable = every service's namespace cache knows it: a lookup of a workflow that does not
      // exist answers "workflow not found", not "namespace not found".
      for (;;) {
        await failIfExited('while the namespace was registered');
        try {
          await svc.describeWorkflowExecution({
            namespace: NAMESPACE,
            execution: { workflowId: 'sandbox-readiness-probe' },
          });
          break;
        } catch (err) {
          const msg = grpcMessage(err);
          // "Namespace default is not found." until the caches know it.
          if (/workflow (execution )?not found/i.test(msg)) break;
          lastErr = msg;
        }
        if (Date.now() - t0 > START_TIMEOUT_MS) throw new Error(`namespace ${NAMESPACE} not usable: ${lastErr}`);
        await sleep(200);
      }
      phase('namespace');
    } finally {
      await connection.close();
    }
    timings.total = Date.now() - t0;
    log(
      `[temporal-server] ready at ${address} (${opts.tls ? (opts.tls.requireClientCert ? 'mTLS' : 'TLS') : 'plaintext'}) in ${timings.total} ms`
    );

    const serverTls = opts.tls;
    return {
      address,
      namespace: NAMESPACE,
      configFile,
      logFile: serverLog,
      postgres: { port: pgPort, logFile: pgLog },
      timings,
      clientEnv(clientCert) {
        const env: Record<string, string> = { TEMPORAL_ADDRESS: address, TEMPORAL_NAMESPACE: NAMESPACE };
        if (serverTls) {
          env.TEMPORAL_TLS_SERVER_CA_CERT_PATH = serverTls.caCert;
          if (serverTls.serverName) env.TEMPORAL_TLS_SERVER_NAME = serverTls.serverName;
        }
        if (clientCert) {
          env.TEMPORAL_TLS_CLIENT_CERT_PATH = clientCert.cert;
          env.TEMPORAL_TLS_CLIENT_KEY_PATH = clientCert.key;
        }
        return env;
      },
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}
