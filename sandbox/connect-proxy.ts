// A loopback HTTP CONNECT proxy for tests: what helm and kubectl use for https:// targets when a
// kubeconfig has `proxy-url` or HTTPS_PROXY is set. It counts the tunnels it opens by the target
// the client asked for (host:port), so a test can tell which calls went through it. Plain http://
// requests (HTTP_PROXY: helm fetching an http chart repository) are forwarded and counted too.
//
// `hosts` maps names only the proxy can resolve to addresses (as a site proxy resolves internal
// names a workstation cannot): a kubeconfig server such as https://control-plane.skoala.invalid:P
// then works through the proxy and fails without it, so a passing call proves the proxy was used.
// Tunnels go to loopback addresses only; anything else is refused (403), so a test never reaches
// out of the machine.
import { createServer, request, type IncomingMessage } from 'node:http';
import { connect, isIP, type Socket } from 'node:net';

export interface ConnectProxy {
  /** http://127.0.0.1:PORT, for HTTPS_PROXY or a kubeconfig's proxy-url. */
  url: string;
  port: number;
  /** Tunnels opened so far, by the target as the client named it (`host:port`). */
  tunnels(): Record<string, number>;
  /** Plain-HTTP requests forwarded so far, by target (`host:port`). */
  forwarded(): Record<string, number>;
  /** Every CONNECT seen, refused ones included, in order. */
  requests(): { target: string; status: number }[];
  stop(): Promise<void>;
}

export interface ConnectProxyOptions {
  /** Name -> address the proxy dials for it, e.g. { 'control-plane.skoala.invalid': '127.0.0.1' }. */
  hosts?: Record<string, string>;
}

const isLoopback = (addr: string): boolean =>
  (isIP(addr) === 4 && addr.startsWith('127.')) || addr === '::1' || addr === 'localhost';

/** Splits `host:port` or `[v6]:port`; undefined when it is neither. */
function splitTarget(target: string): { host: string; port: number } | undefined {
  const m = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(target);
  const host = m?.[1] ?? m?.[2];
  const port = Number(m?.[3]);
  return host && port > 0 && port < 65536 ? { host, port } : undefined;
}

export async function startConnectProxy(opts: ConnectProxyOptions = {}): Promise<ConnectProxy> {
  const hosts = opts.hosts ?? {};
  const counts: Record<string, number> = {};
  const forwards: Record<string, number> = {};
  const seen: { target: string; status: number }[] = [];
  const sockets = new Set<Socket>();
  const track = (s: Socket): void => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
  };

  // Plain HTTP through a proxy: the request line carries the absolute URL.
  const server = createServer((req, res) => {
    const fail = (status: number): void => {
      if (!res.headersSent) res.writeHead(status, { 'content-type': 'text/plain' });
      res.end();
    };
    let url: URL;
    try {
      url = new URL(req.url ?? '');
    } catch {
      return fail(400);
    }
    const host = url.hostname.replace(/^\[|\]$/g, '');
    const address = hosts[host] ?? host;
    if (url.protocol !== 'http:') return fail(400);
    if (!isLoopback(address)) return fail(403);
    const port = Number(url.port || 80);
    const target = `${url.hostname}:${port}`;
    forwards[target] = (forwards[target] ?? 0) + 1;
    const headers = { ...req.headers };
    delete headers['proxy-connection'];
    delete headers['proxy-authorization'];
    const upstream = request(
      { host: address, port, method: req.method, path: `${url.pathname}${url.search}`, headers },
      (up) => {
        res.writeHead(up.statusCode ?? 502, up.headers);
        up.pipe(res);
      }
    );
    upstream.on('error', () => fail(502));
    req.pipe(upstream);
  });
  server.on('connect', (req: IncomingMessage, client: Socket, head: Buffer) => {
    track(client);
    client.on('error', () => client.destroy());
    const target = req.url ?? '';
    const parsed = splitTarget(target);
    const address = parsed ? (hosts[parsed.host] ?? parsed.host) : undefined;
    const refuse = (status: number, reason: string): void => {
      seen.push({ target, status });
      client.end(`HTTP/1.1 ${status} ${reason}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`);
    };
    if (!parsed || address === undefined) return refuse(400, 'Bad Request');
    if (!isLoopback(address)) return refuse(403, 'Forbidden');
    const upstream = connect({ host: address, port: parsed.port });
    track(upstream);
    let open = false;
    upstream.once('connect', () => {
      open = true;
      seen.push({ target, status: 200 });
      counts[target] = (counts[target] ?? 0) + 1;
      client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      if (head.length) upstream.write(head);
      upstream.pipe(client);
      client.pipe(upstream);
    });
    upstream.once('error', () => {
      if (!open) refuse(502, 'Bad Gateway');
      else client.destroy();
    });
    client.once('close', () => upstream.destroy());
    upstream.once('close', () => client.destroy());
  });

  await new Promise<void>((res, rej) => {
    server.once('error', rej);
    server.listen(0, '127.0.0.1', () => res());
  });
  const addr = server.address();
  if (!addr || typeof addr === 'string') throw new Error('connect proxy: no TCP address');
  const port = addr.port;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    tunnels: () => ({ ...counts }),
    forwarded: () => ({ ...forwards }),
    requests: () => seen.map((r) => ({ ...r })),
    stop: () =>
      new Promise<void>((res) => {
        for (const s of sockets) s.destroy();
        server.close(() => res());
        server.closeAllConnections();
      }),
  };
}
