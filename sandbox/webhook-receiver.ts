// A loopback webhook receiver for tests and the demo: it records every POST (headers, body parsed
// as JSON, time, the status it answered) and answers 200, or `status`. `failFirst: N` answers 503
// to the first N requests, so a test can watch a retry; `hang: true` never answers at all (a
// client's timeout must end the request). Listens on 127.0.0.1 with an ephemeral port.
import { createServer, type IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';

export interface ReceivedRequest {
  headers: Record<string, string | string[] | undefined>;
  /** The body parsed as JSON; the raw text when it is not JSON. */
  body: unknown;
  /** Date.now() when the body had arrived. */
  at: number;
  method: string;
  /** Path and query as the client sent them. */
  path: string;
  /** What the receiver answered (undefined while hanging). */
  status?: number;
}

export interface WebhookReceiverOptions {
  /** Answer 503 to the first N requests. */
  failFirst?: number;
  /** What every other request is answered (default 200). */
  status?: number;
  /** Never answer: record the request and leave the connection open until close(). */
  hang?: boolean;
}

export interface WebhookReceiver {
  /** http://127.0.0.1:PORT/hook */
  url: string;
  /** Every request, in arrival order, answered or not. */
  received: ReceivedRequest[];
  close(): Promise<void>;
  /** Resolves once `pred(bodies of every request received so far)` holds; rejects after timeoutMs (default 5 s). */
  waitFor(pred: (events: unknown[]) => boolean, timeoutMs?: number): Promise<void>;
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function parse(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

export async function startWebhookReceiver(opts: WebhookReceiverOptions = {}): Promise<WebhookReceiver> {
  const received: ReceivedRequest[] = [];
  const listeners = new Set<() => void>();
  const sockets = new Set<Socket>();
  let failuresLeft = opts.failFirst ?? 0;

  const server = createServer((req, res) => {
    readBody(req)
      .then((text) => {
        const entry: ReceivedRequest = {
          headers: { ...req.headers },
          body: parse(text),
          at: Date.now(),
          method: req.method ?? '',
          path: req.url ?? '',
        };
        received.push(entry);
        if (!opts.hang) {
          const status = failuresLeft > 0 ? 503 : (opts.status ?? 200);
          if (failuresLeft > 0) failuresLeft--;
          entry.status = status;
          res.writeHead(status, { 'content-type': 'text/plain' });
          res.end(status < 300 ? 'ok\n' : `answered ${status} on purpose\n`);
        }
        for (const l of listeners) l();
      })
      .catch(() => res.destroy());
  });
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const addr = server.address();
  if (!addr || typeof addr === 'string') throw new Error('webhook receiver: no TCP address');

  const bodies = () => received.map((r) => r.body);

  return {
    url: `http://127.0.0.1:${addr.port}/hook`,
    received,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
        server.closeAllConnections();
      }),
    waitFor: (pred, timeoutMs = 5_000) =>
      new Promise<void>((resolve, reject) => {
        if (pred(bodies())) return resolve();
        const check = () => {
          if (!pred(bodies())) return;
          done();
          resolve();
        };
        const timer = setTimeout(() => {
          done();
          reject(new Error(`webhook receiver: condition not met within ${timeoutMs} ms (${received.length} received)`));
        }, timeoutMs);
        const done = () => {
          clearTimeout(timer);
          listeners.delete(check);
        };
        listeners.add(check);
      }),
  };
}
