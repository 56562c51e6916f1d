/**
 * The fleet's webhook: one POST of a NotificationEvent as JSON. The optional header's value is read
 * here, from the worker host's environment, so it never travels through workflow history. Failures
 * name the hook by origin and path only (a query string may carry a token) and never carry the
 * header's value. HTTPS_PROXY / HTTP_PROXY / NO_PROXY are honoured as the registry client does.
 */
import { ApplicationFailure } from '@temporalio/common';
import { HttpsProxyAgent } from 'https-proxy-agent';
import {
  request as httpRequest,
  validateHeaderName,
  validateHeaderValue,
  type ClientRequest,
  type IncomingMessage,
  type RequestOptions,
} from 'node:http';
import { request as httpsRequest } from 'node:https';
import { getProxyForUrl } from 'proxy-from-env';
import type { NotificationEvent, NotifyHook } from '../runbook/types';
import { scrubSecrets } from './errors';

export interface NotifyDeps {
  /** Where the hook's header value is read from (the worker host's environment). */
  env: NodeJS.ProcessEnv;
  /** The whole request, connect to answer (default 10 s). */
  timeoutMs?: number;
}

export interface NotifyInput {
  hook: NotifyHook;
  event: NotificationEvent;
}

/** Worth another try: the receiver is busy, down or slow. Any other non-2xx answer is final. */
const retryableStatus = (status: number) => status === 408 || status === 429 || status >= 500;

export function notifyActivities(deps: NotifyDeps) {
  const timeoutMs = deps.timeoutMs ?? 10_000;
  return {
    /** POSTs the event to the hook: 2xx is done; 408, 429, 5xx and network failures are retried; other answers are final. */
    async notify(input: NotifyInput): Promise<{ status: number }> {
      const url = hookUrl(input.hook.url);
      const where = `${url.origin}${url.pathname}`;
      const body = JSON.stringify(input.event);
      const headers: Record<string, string> = {
        'content-type': 'application/json',
        'content-length': String(Buffer.byteLength(body)),
        'user-agent': 'skoala-upgrade',
      };
      const header = input.hook.header;
      let secret: string | undefined;
      if (header) {
        secret = headerValue(header, deps.env);
        headers[header.name.toLowerCase()] = secret;
      }
      // Nothing below prints the value; this makes sure of it whatever an error's text says.
      const clean = (message: string) => {
        const scrubbed = scrubSecrets(message);
        return secret ? scrubbed.split(secret).join('***') : scrubbed;
      };

      let status: number;
      try {
        status = await post(url, headers, body, timeoutMs);
      } catch (err) {
        throw ApplicationFailure.retryable(clean(`notify: ${where} unreachable: ${reason(err)}`), 'NotifyUnreachable');
      }
      if (status >= 200 && status < 300) return { status };
      if (retryableStatus(status))
        throw ApplicationFailure.retryable(clean(`notify: ${where} answered HTTP ${status}`), 'NotifyUnavailable');
      const hint =
        (status === 401 || status === 403) && header
          ? ` (check ${header.env} on this worker host: it is sent as header ${header.name})`
          : '';
      throw ApplicationFailure.nonRetryable(
        clean(`notify: ${where} refused the notification: HTTP ${status}${hint}`),
        'NotifyRefused'
      );
    },
  };
}

/** The hook's URL, or a final failure that does not print it (it may carry a token). */
function hookUrl(text: string): URL {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw ApplicationFailure.nonRetryable('notify: the webhook url is not a valid URL', 'NotifyBadUrl');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:')
    throw ApplicationFailure.nonRetryable(
      `notify: the webhook url must be http or https, not ${url.protocol.replace(/:$/, '')}`,
      'NotifyBadUrl'
    );
  return url;
}

/** The header's value from the environment, checked as a header value; failures name the variable only. */
function headerValue(header: { name: string; env: string }, env: NodeJS.ProcessEnv): string {
  const value = env[header.env];
  if (value === undefined || value === '')
    throw ApplicationFailure.nonRetryable(
      `notify: webhook header ${header.name} is read from environment variable ${header.env}, which is ${value === undefined ? 'not set' : 'empty'} on this worker host`,
      'NotifySecretMissing'
    );
  try {
    validateHeaderName(header.name);
  } catch {
    throw ApplicationFailure.nonRetryable(
      `notify: webhook header name ${JSON.stringify(header.name)} is not a valid HTTP header name`,
      'NotifyBadHeader'
    );
  }
  try {
    validateHeaderValue(header.name, value);
  } catch {
    throw ApplicationFailure.nonRetryable(
      `notify: environment variable ${header.env} holds characters an HTTP header cannot carry (a newline?)`,
      'NotifyBadHeader'
    );
  }
  return value;
}

function reason(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  return e?.message || e?.code || String(err);
}

/** The status of the answer. The timer bounds connect to answer; a body that never ends is cut off too. */
function post(url: URL, headers: Record<string, string>, body: string, timeoutMs: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = open(url, { method: 'POST', headers }, (res) => {
      resolve(res.statusCode ?? 0);
      res.resume(); // the answer's body is not needed
      res.once('end', () => clearTimeout(timer));
      res.on('error', () => clearTimeout(timer));
    });
    const timer = setTimeout(() => req.destroy(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
    req.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    req.end(body);
  });
}

/** Plain or TLS, straight or through the proxy HTTPS_PROXY / HTTP_PROXY name for this URL (NO_PROXY honoured). */
function open(url: URL, opts: RequestOptions, onResponse: (res: IncomingMessage) => void): ClientRequest {
  const proxy = getProxyForUrl(url.href);
  if (url.protocol === 'https:')
    return httpsRequest(url, proxy ? { ...opts, agent: new HttpsProxyAgent(proxy) } : opts, onResponse);
  if (!proxy) return httpRequest(url, opts, onResponse);
  // Plain http through a proxy: the request line carries the absolute URI.
  const p = new URL(proxy);
  const basic = (user: string, pass: string) =>
    `Basic ${Buffer.from(`${decodeURIComponent(user)}:${decodeURIComponent(pass)}`).toString('base64')}`;
  return (p.protocol === 'https:' ? httpsRequest : httpRequest)(
    {
      ...opts,
      hostname: p.hostname.replace(/^\[|\]$/g, ''),
      port: p.port || (p.protocol === 'https:' ? 443 : 80),
      path: `${url.origin}${url.pathname}${url.search}`,
      headers: {
        ...opts.headers,
        host: url.host,
        ...(url.username ? { authorization: basic(url.username, url.password) } : {}),
        ...(p.username ? { 'proxy-authorization': basic(p.username, p.password) } : {}),
      },
    },
    onResponse
  );
}
