import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { temporalConnectConfig, TemporalConfigError } from '../../worker/temporal-config';
import { temporalEnv } from '../../scripts/lib/temporal';

// No profile file may leak in from the machine running the tests.
const base = { TEMPORAL_CONFIG_FILE: '/nonexistent/temporal.toml' };

describe('Temporal connection from environment configuration', () => {
  it('defaults to a plain local dev server', () => {
    const c = temporalConnectConfig(base);
    expect(c).toMatchObject({ address: 'localhost:7233', namespace: 'default', security: 'plain' });
  });

  it('reads TLS files and a client certificate pair (mTLS) from TEMPORAL_TLS_*', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'tcfg-'));
    for (const f of ['ca.crt', 'client.crt', 'client.key']) await writeFile(join(dir, f), `PEM of ${f}`);
    const c = temporalConnectConfig({
      ...base,
      TEMPORAL_ADDRESS: 'temporal.site:7233',
      TEMPORAL_NAMESPACE: 'skoala',
      TEMPORAL_TLS_SERVER_CA_CERT_PATH: join(dir, 'ca.crt'),
      TEMPORAL_TLS_CLIENT_CERT_PATH: join(dir, 'client.crt'),
      TEMPORAL_TLS_CLIENT_KEY_PATH: join(dir, 'client.key'),
      TEMPORAL_TLS_SERVER_NAME: 'temporal.site',
    });
    expect(c).toMatchObject({ address: 'temporal.site:7233', namespace: 'skoala', security: 'mtls' });
    const tls = c.connectionOptions.tls;
    if (typeof tls !== 'object' || tls === null) throw new Error(`expected a TLS config, got ${String(tls)}`);
    expect(tls.serverNameOverride).toBe('temporal.site');
    expect(Buffer.from(tls.clientCertPair?.crt ?? '').toString()).toBe('PEM of client.crt');
    expect(Buffer.from(tls.serverRootCACertificate ?? '').toString()).toBe('PEM of ca.crt');
  });

  it('an API key turns TLS on (Temporal Cloud) and is never part of what is said', () => {
    const c = temporalConnectConfig({ ...base, TEMPORAL_ADDRESS: 'x.tmprl.cloud:7233', TEMPORAL_API_KEY: 'k-123' });
    expect(c.security).toBe('api-key');
    expect(c.connectionOptions.apiKey).toBe('k-123');
    expect(c.connectionOptions.tls).toBe(true);
  });

  it('a TLS file that cannot be read is one line naming the problem, as a bad-input exit', () => {
    const env = {
      ...base,
      TEMPORAL_TLS_CLIENT_CERT_PATH: '/nonexistent/c.crt',
      TEMPORAL_TLS_CLIENT_KEY_PATH: '/x.key',
    };
    expect(() => temporalConnectConfig(env)).toThrow(TemporalConfigError);
    expect(() => temporalEnv(env)).toThrow(/^Temporal client configuration: .*\/nonexistent\/c\.crt/);
  });
});
