/**
 * Does an image exist in its registry? One `HEAD /v2/<repo>/manifests/<ref>` (OCI distribution
 * API), with the registry's answer to 401 followed as clients do: Basic credentials, or a Bearer
 * token from the realm it names. TLS with the site's CA (or the system's), never a shell.
 */
import { HttpsProxyAgent } from 'https-proxy-agent';
import { readFile } from 'node:fs/promises';
import { request as httpsRequest, type RequestOptions } from 'node:https';
import { getProxyForUrl } from 'proxy-from-env';
import type { ImageRef } from '../runbook/images';
import type { RegistryTls } from '../runbook/types';

export interface RegistryAccess extends RegistryTls {
  username?: string;
  password?: string;
}

export type ManifestAnswer =
  { exists: true } | { exists: false; status: number } | { denied: true; status: number; registry: string };

interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

const ACCEPT = [
  'application/vnd.oci.image.index.v1+json',
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
  'application/vnd.docker.distribution.manifest.v2+json',
].join(', ');

/** Docker Hub's API lives elsewhere than its name. */
const apiHost = (registry: string) => (registry === 'docker.io' ? 'registry-1.docker.io' : registry);

async function tlsOptions(tls: RegistryTls): Promise<RequestOptions> {
  return {
    ...(tls.caFile ? { ca: await readFile(tls.caFile) } : {}),
    ...(tls.certFile ? { cert: await readFile(tls.certFile) } : {}),
    ...(tls.keyFile ? { key: await readFile(tls.keyFile) } : {}),
    ...(tls.insecureSkipTlsVerify ? { rejectUnauthorized: false } : {}),
  };
}

/** HTTPS_PROXY / NO_PROXY as helm and kubectl read them (Node's own https ignores them). */
function proxyAgent(url: URL): HttpsProxyAgent<string> | undefined {
  const proxy = getProxyForUrl(url.href);
  return proxy ? new HttpsProxyAgent(proxy) : undefined;
}

function send(url: URL, opts: RequestOptions, timeoutMs: number): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const agent = proxyAgent(url);
    const req = httpsRequest(url, { ...opts, ...(agent ? { agent } : {}), timeout: timeoutMs }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => {
        if (chunks.length < 64) chunks.push(c); // a token answer is small; the rest is not needed
      });
      res.on('end', () =>
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') })
      );
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`no answer from ${url.host} within ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end();
  });
}

/** `Bearer realm="https://h/token",service="h",scope="..."` -> its parameters. */
export function parseChallenge(header: string): { scheme: string; params: Record<string, string> } {
  const m = /^\s*(\w+)\s*(.*)$/.exec(header) ?? [];
  const params: Record<string, string> = {};
  for (const p of (m[2] ?? '').matchAll(/(\w+)="([^"]*)"/g)) params[p[1] as string] = p[2] as string;
  return { scheme: (m[1] ?? '').toLowerCase(), params };
}

const basic = (a: RegistryAccess) => `Basic ${Buffer.from(`${a.username}:${a.password}`).toString('base64')}`;

export async function manifestExists(
  image: ImageRef,
  access: RegistryAccess,
  timeoutMs = 15_000
): Promise<ManifestAnswer> {
  const tls = await tlsOptions(access);
  const url = new URL(`https://${apiHost(image.registry)}/v2/${image.repository}/manifests/${image.reference}`);
  const head = (authorization?: string) =>
    send(
      url,
      {
        ...tls,
        method: 'HEAD',
        headers: { Accept: ACCEPT, ...(authorization ? { Authorization: authorization } : {}) },
      },
      timeoutMs
    );
  let reply = await head();
  if (reply.status === 401) {
    const challenge = parseChallenge(String(reply.headers['www-authenticate'] ?? ''));
    const hasCreds = access.username !== undefined && access.password !== undefined;
    if (challenge.scheme === 'basic' && hasCreds) reply = await head(basic(access));
    else if (challenge.scheme === 'bearer' && challenge.params.realm) {
      const tokenUrl = new URL(challenge.params.realm);
      if (challenge.params.service) tokenUrl.searchParams.set('service', challenge.params.service);
      tokenUrl.searchParams.set('scope', challenge.params.scope ?? `repository:${image.repository}:pull`);
      const t = await send(
        tokenUrl,
        { ...tls, method: 'GET', headers: hasCreds ? { Authorization: basic(access) } : {} },
        timeoutMs
      );
      if (t.status === 200) {
        const body = JSON.parse(t.body) as { token?: string; access_token?: string };
        const token = body.token ?? body.access_token;
        if (token) reply = await head(`Bearer ${token}`);
      } else reply = t;
    }
  }
  if (reply.status >= 200 && reply.status < 300) return { exists: true };
  if (reply.status === 401 || reply.status === 403)
    return { denied: true, status: reply.status, registry: image.registry };
  if (reply.status === 404) return { exists: false, status: 404 };
  throw new Error(`registry ${image.registry} answered ${reply.status} for ${image.ref}`);
}
