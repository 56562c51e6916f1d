import { execa } from 'execa';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import {
  DEFAULT_MAX_CONCURRENT_ACTIVITIES,
  maxConcurrentActivities,
  workerConfig,
  workerRole,
} from '../../worker/config';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

describe('SKOALA_MAX_CONCURRENT_ACTIVITIES', () => {
  it('defaults to enough for --max-parallel 50, not the SDK default of 20', () => {
    expect(DEFAULT_MAX_CONCURRENT_ACTIVITIES).toBe(50);
    expect(workerConfig({}).maxConcurrentActivities).toBe(50);
    expect(maxConcurrentActivities(' ')).toBe(50);
  });

  it('takes a whole number from 1 to 1000', () => {
    expect(workerConfig({ SKOALA_MAX_CONCURRENT_ACTIVITIES: '200' }).maxConcurrentActivities).toBe(200);
    expect(maxConcurrentActivities('1')).toBe(1);
    expect(maxConcurrentActivities('1000')).toBe(1000);
  });

  it.each(['0', '1001', '-5', '2.5', 'lots', '10x'])('refuses %s in one line naming the variable', (v) => {
    expect(() => maxConcurrentActivities(v)).toThrow(
      `SKOALA_MAX_CONCURRENT_ACTIVITIES "${v}" must be a whole number from 1 to 1000`
    );
  });

  it('the worker process refuses it before connecting: one line, exit 2', async () => {
    const r = await execa('node', ['--import', 'tsx', 'worker/main.ts'], {
      cwd: ROOT,
      env: { SKOALA_MAX_CONCURRENT_ACTIVITIES: 'lots', TEMPORAL_ADDRESS: '127.0.0.1:1' },
      reject: false,
    });
    expect(r.exitCode).toBe(2);
    expect(r.stderr.trim()).toBe(
      'worker: SKOALA_MAX_CONCURRENT_ACTIVITIES "lots" must be a whole number from 1 to 1000'
    );
  });
});

describe('SKOALA_WORKER_ROLE', () => {
  it('runs workflows and activities in one process unless told otherwise', () => {
    expect(workerConfig({}).role).toBe('all');
    expect(workerRole('')).toBe('all');
  });

  it('splits them: workflows or activities', () => {
    expect(workerConfig({ SKOALA_WORKER_ROLE: 'workflows' }).role).toBe('workflows');
    expect(workerConfig({ SKOALA_WORKER_ROLE: ' activities ' }).role).toBe('activities');
  });

  it('refuses anything else in one line, and the worker process exits 2 before connecting', async () => {
    expect(() => workerRole('both')).toThrow('SKOALA_WORKER_ROLE "both" must be one of: all, workflows, activities');
    const r = await execa('node', ['--import', 'tsx', 'worker/main.ts'], {
      cwd: ROOT,
      env: { SKOALA_WORKER_ROLE: 'Workflows', TEMPORAL_ADDRESS: '127.0.0.1:1' },
      reject: false,
    });
    expect(r.exitCode).toBe(2);
    expect(r.stderr.trim()).toBe('worker: SKOALA_WORKER_ROLE "Workflows" must be one of: all, workflows, activities');
  });
});
