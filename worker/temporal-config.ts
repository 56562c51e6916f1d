/**
 * How the CLI and the worker reach Temporal: Temporal's own environment configuration
 * (`@temporalio/envconfig`), so the variables and profile files of the `temporal` CLI work here
 * too: TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, TEMPORAL_API_KEY, TEMPORAL_TLS_* (client cert and key,
 * server CA, server name), TEMPORAL_PROFILE and TEMPORAL_CONFIG_FILE.
 */
import { loadClientConnectConfig } from '@temporalio/envconfig';
import type { NativeConnectionOptions } from '@temporalio/worker';

export const DEFAULT_TEMPORAL_ADDRESS = 'localhost:7233';

export interface TemporalConnectConfig {
  address: string;
  namespace: string;
  /** Address, TLS (server CA, client cert pair, server name), API key, gRPC metadata. */
  connectionOptions: NativeConnectionOptions;
  /** Said in messages: how the connection is secured, never the secret. */
  security: 'plain' | 'tls' | 'mtls' | 'api-key';
}

/** Thrown when the configuration itself is wrong (a TLS file that cannot be read, a bad profile). */
export class TemporalConfigError extends Error {
  override name = 'TemporalConfigError';
}

export function temporalConnectConfig(env: NodeJS.ProcessEnv = process.env): TemporalConnectConfig {
  let loaded;
  try {
    loaded = loadClientConnectConfig({
      // envconfig's own typing wants only defined strings.
      overrideEnvVars: Object.fromEntries(Object.entries(env).filter((e): e is [string, string] => e[1] !== undefined)),
    });
  } catch (err) {
    throw new TemporalConfigError(`Temporal client configuration: ${(err as Error).message.split('\n')[0]}`);
  }
  const opts = loaded.connectionOptions;
  const address = opts.address ?? DEFAULT_TEMPORAL_ADDRESS;
  const tls = opts.tls;
  const security = opts.apiKey
    ? 'api-key'
    : typeof tls === 'object' && tls?.clientCertPair
      ? 'mtls'
      : tls
        ? 'tls'
        : 'plain';
  return {
    address,
    namespace: loaded.namespace ?? 'default',
    connectionOptions: { ...opts, address },
    security,
  };
}
