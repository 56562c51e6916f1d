import type { State } from '@temporalio/worker';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { healthPort, startHealthServer } from '../../worker/health';
import type { Server } from 'node:http';

describe('SKOALA_HEALTH_PORT', () => {
  it('is off unless set, and takes a port number', () => {
    expect(healthPort(undefined)).toBeUndefined();
    expect(healthPort(' ')).toBeUndefined();
    expect(healthPort('8089')).toBe(8089);
  });
  it.each(['0', '65536', 'http', '80.5', '-1'])('refuses %s in one line', (v) => {
    expect(() => healthPort(v)).toThrow(`SKOALA_HEALTH_PORT "${v}" must be a port number from 1 to 65535`);
  });
});

describe('the probes', () => {
  let state: State = 'INITIALIZED';
  let server: Server;
  let base: string;
  beforeAll(async () => {
    server = await startHealthServer(0, () => state);
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => void server.close());
  const probe = async (p: string) => {
    const r = await fetch(base + p);
    return `${r.status} ${(await r.text()).trim()}`;
  };

  it('ready only while polling; alive until the worker stops or fails', async () => {
    const seen: Record<string, string[]> = {};
    for (const s of ['INITIALIZED', 'RUNNING', 'STOPPING', 'STOPPED', 'FAILED'] as State[]) {
      state = s;
      seen[s] = [await probe('/readyz'), await probe('/livez')];
    }
    expect(seen).toEqual({
      INITIALIZED: ['503 initialized', '200 initialized'],
      RUNNING: ['200 running', '200 running'],
      STOPPING: ['503 stopping', '200 stopping'],
      STOPPED: ['503 stopped', '503 stopped'],
      FAILED: ['503 failed', '503 failed'],
    });
  });

  it('serves nothing else', async () => {
    expect(await probe('/status')).toBe('404 not found');
  });
});
