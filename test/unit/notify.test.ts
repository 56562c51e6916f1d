/**
 * The webhook activity (activities/notify.ts) against a real loopback receiver
 * (sandbox/webhook-receiver.ts): what arrives, which failures are retried, and that no failure
 * message carries the header's value.
 */
import { ApplicationFailure } from '@temporalio/common';
import { createServer } from 'node:net';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { notifyActivities } from '../../activities/notify';
import type { NotificationEvent } from '../../runbook/types';
import { startConnectProxy, type ConnectProxy } from '../../sandbox/connect-proxy';
import { startWebhookReceiver, type WebhookReceiver } from '../../sandbox/webhook-receiver';

const SECRET = 's3cr3t-hook-token-4242';
const env = { HOOK_TOKEN: SECRET };
const header = { name: 'X-Hook-Token', env: 'HOOK_TOKEN' };

const event: NotificationEvent = {
  event: 'gate-opened',
  upgradeId: 'up-1',
  fleet: 'prod',
  version: 'v0.28.1',
  at: '2025-01-02T03:04:05.000Z',
  message: 'wave 1 waits for approval',
  digest: 'sha256:abc',
  wave: 1,
  waves: 3,
};

const PROXY_VARS = ['HTTPS_PROXY', 'https_proxy', 'HTTP_PROXY', 'http_proxy', 'NO_PROXY', 'no_proxy'];
let savedProxyEnv: Record<string, string | undefined> = {};
beforeEach(() => {
  // A proxy in the developer's environment would take loopback requests elsewhere.
  savedProxyEnv = Object.fromEntries(PROXY_VARS.map((k) => [k, process.env[k]]));
  for (const k of PROXY_VARS) delete process.env[k];
});

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
  for (const k of PROXY_VARS) {
    const v = savedProxyEnv[k];
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
});

async function receiver(opts?: Parameters<typeof startWebhookReceiver>[0]): Promise<WebhookReceiver> {
  const r = await startWebhookReceiver(opts);
  cleanups.push(() => r.close());
  return r;
}

/** The failure the promise rejects with, checked to be an ApplicationFailure without the secret in it. */
async function failure(p: Promise<unknown>): Promise<ApplicationFailure> {
  const err = await p.then(
    () => expect.fail('expected the notification to fail'),
    (e: unknown) => e
  );
  expect(err).toBeInstanceOf(ApplicationFailure);
  const f = err as ApplicationFailure;
  expect(f.message).not.toContain(SECRET);
  expect(JSON.stringify(f.details ?? null)).not.toContain(SECRET);
  expect(String(f.stack)).not.toContain(SECRET);
  return f;
}

/** A TCP port nothing listens on (it was free a moment ago). */
async function closedPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((res) => s.listen(0, '127.0.0.1', () => res()));
  const addr = s.address();
  if (!addr || typeof addr === 'string') throw new Error('no port');
  await new Promise<void>((res) => s.close(() => res()));
  return addr.port;
}

describe('notify', () => {
  it('POSTs the event as JSON with the header value read from the environment', async () => {
    const r = await receiver();
    const { notify } = notifyActivities({ env });
    await expect(notify({ hook: { url: r.url, header }, event })).resolves.toEqual({ status: 200 });
    expect(r.received).toHaveLength(1);
    const got = r.received[0]!;
    expect(got.method).toBe('POST');
    expect(got.body).toEqual(event);
    expect(got.headers['content-type']).toBe('application/json');
    expect(got.headers['user-agent']).toBe('skoala-upgrade');
    // The value does arrive: the "not in the message" checks below could fail.
    expect(got.headers['x-hook-token']).toBe(SECRET);
    await r.waitFor((events) => events.length === 1, 100);
  });

  it('sends no extra header when the hook has none, and keeps the query string', async () => {
    const r = await receiver({ status: 204 });
    const { notify } = notifyActivities({ env: {} });
    await expect(notify({ hook: { url: `${r.url}?k=v` }, event })).resolves.toEqual({ status: 204 });
    expect(r.received[0]?.path).toBe('/hook?k=v');
    expect(r.received[0]?.headers['x-hook-token']).toBeUndefined();
  });

  it('an unset variable fails non-retryable naming the variable, before any request', async () => {
    const r = await receiver();
    const { notify } = notifyActivities({ env: {} });
    const f = await failure(notify({ hook: { url: r.url, header }, event }));
    expect(f.nonRetryable).toBe(true);
    expect(f.type).toBe('NotifySecretMissing');
    expect(f.message).toContain('HOOK_TOKEN');
    expect(f.message.split('\n')).toHaveLength(1);
    expect(r.received).toHaveLength(0);
  });

  it('a 503 is retryable and names the origin, path and status, not the query string', async () => {
    const r = await receiver({ failFirst: 1 });
    const { notify } = notifyActivities({ env });
    const url = `${r.url}?token=query-secret-77`;
    const f = await failure(notify({ hook: { url, header }, event }));
    expect(f.nonRetryable).toBe(false);
    expect(f.message).toContain('503');
    expect(f.message).toContain(new URL(r.url).origin + '/hook');
    expect(f.message).not.toContain('query-secret-77');
    // The retry the worker would make goes through.
    await expect(notify({ hook: { url, header }, event })).resolves.toEqual({ status: 200 });
    expect(r.received.map((x) => x.status)).toEqual([503, 200]);
  });

  it.each([408, 429, 500])('%i is retryable', async (status) => {
    const r = await receiver({ status });
    const f = await failure(notifyActivities({ env }).notify({ hook: { url: r.url, header }, event }));
    expect(f.nonRetryable).toBe(false);
    expect(f.message).toContain(String(status));
  });

  it.each([404, 400, 401])('%i is refused: non-retryable NotifyRefused', async (status) => {
    const r = await receiver({ status });
    const f = await failure(notifyActivities({ env }).notify({ hook: { url: r.url, header }, event }));
    expect(f.nonRetryable).toBe(true);
    expect(f.type).toBe('NotifyRefused');
    expect(f.message).toContain(String(status));
    expect(f.message).toContain(new URL(r.url).origin + '/hook');
  });

  it('a closed port is retryable', async () => {
    const port = await closedPort();
    const f = await failure(
      notifyActivities({ env }).notify({ hook: { url: `http://127.0.0.1:${port}/hook?t=x`, header }, event })
    );
    expect(f.nonRetryable).toBe(false);
    expect(f.type).toBe('NotifyUnreachable');
    expect(f.message).toContain(`http://127.0.0.1:${port}/hook`);
    expect(f.message).not.toContain('?t=x');
  });

  it('a receiver that never answers fails retryable within the timeout', async () => {
    const r = await receiver({ hang: true });
    const started = Date.now();
    const f = await failure(notifyActivities({ env, timeoutMs: 300 }).notify({ hook: { url: r.url, header }, event }));
    const took = Date.now() - started;
    expect(took).toBeGreaterThanOrEqual(250);
    expect(took).toBeLessThan(2_000);
    expect(f.nonRetryable).toBe(false);
    expect(f.message).toContain('300 ms');
    await r.waitFor((events) => events.length === 1, 100); // it did arrive, it was just never answered
  });

  it('a header value the environment cannot send as a header fails non-retryable without printing it', async () => {
    const r = await receiver();
    const bad = `${SECRET}\nx`;
    const f = await failure(
      notifyActivities({ env: { HOOK_TOKEN: bad } }).notify({ hook: { url: r.url, header }, event })
    );
    expect(f.nonRetryable).toBe(true);
    expect(f.message).toContain('HOOK_TOKEN');
    expect(r.received).toHaveLength(0);
  });

  it('an invalid or non-http url fails non-retryable without printing it', async () => {
    const { notify } = notifyActivities({ env });
    const f1 = await failure(notify({ hook: { url: 'not a url token=abc' }, event }));
    expect(f1.nonRetryable).toBe(true);
    expect(f1.message).not.toContain('token=abc');
    const f2 = await failure(notify({ hook: { url: 'ftp://h/x' }, event }));
    expect(f2.nonRetryable).toBe(true);
    expect(f2.message).toContain('ftp');
  });

  describe('through HTTP_PROXY', () => {
    let proxy: ConnectProxy;
    beforeEach(async () => {
      proxy = await startConnectProxy({ hosts: { 'hooks.skoala.invalid': '127.0.0.1' } });
      cleanups.push(() => proxy.stop());
    });

    it('an http hook goes through the proxy in absolute-URI form', async () => {
      const r = await receiver();
      process.env.HTTP_PROXY = proxy.url;
      // A name only the proxy resolves: a passing call proves the proxy was used.
      const url = r.url.replace('127.0.0.1', 'hooks.skoala.invalid');
      await expect(notifyActivities({ env }).notify({ hook: { url, header }, event })).resolves.toEqual({
        status: 200,
      });
      expect(proxy.forwarded()).toEqual({ [new URL(url).host]: 1 });
      expect(r.received[0]?.body).toEqual(event);
      expect(r.received[0]?.headers['x-hook-token']).toBe(SECRET);
    });

    it('NO_PROXY keeps a host off the proxy', async () => {
      const r = await receiver();
      process.env.HTTP_PROXY = proxy.url;
      process.env.NO_PROXY = '127.0.0.1';
      await expect(notifyActivities({ env }).notify({ hook: { url: r.url, header }, event })).resolves.toEqual({
        status: 200,
      });
      expect(proxy.forwarded()).toEqual({});
    });
  });
});
