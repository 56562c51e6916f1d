/**
 * A secret printed by kubectl never reaches workflow history or worker logs. One activity is the
 * real one (real runner, real process): `kubectl` is a stand-in script printing what an API server
 * says when it refuses a Job carrying a secret env var. Every other activity is a double.
 */
import { DefaultLogger, Runtime } from '@temporalio/worker';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createActivities } from '../../activities';
import { upgradeEngine } from '../../workflows';
import { decodedHistoriesText } from '../helpers/history-text';
import { FakeFleet } from './fake-activities';
import { startHarness, type Harness } from './harness';
import { fakeFleetAt, fleetOf, requestFor } from './request';

// Before any connection: the runtime (and its logger) is created once per process.
const logLines: string[] = [];
Runtime.install({
  logger: new DefaultLogger('INFO', (entry) =>
    logLines.push(entry.message + JSON.stringify(entry.meta ?? {}, withErrors))
  ),
});

/** JSON shows no Error's message or stack (not enumerable): a secret there would go unseen. */
function withErrors(_key: string, value: unknown): unknown {
  return value instanceof Error ? { ...value, name: value.name, message: value.message, stack: value.stack } : value;
}

const SECRET = 's3cret-control-plane';

/** The text around the first `needle` in `text`, '' if absent: a failed check shows where, not all of it. */
function around(text: string, needle: string): string {
  const at = text.indexOf(needle);
  return at < 0 ? '' : text.slice(Math.max(0, at - 200), at + needle.length + 200);
}

// An admission policy refusing the change, echoing the Job's env var, and a values dump: both forms
// the API server and kubectl print.
const STAND_IN_KUBECTL = `#!/bin/sh
cat >&2 <<'EOF'
I0509 10:00:00.000000    4242 request.go:1212] Response Status: 400 Bad Request in 3 milliseconds
Error from server: admission webhook "validate.kyverno.svc-fail" denied the request: Job/skoala-system/gateway-api-admission: spec.template.spec.containers[0].env[0]: Invalid value: core.EnvVar{Name:"DB_PASSWORD", Value:"${SECRET}", ValueFrom:(*core.EnvVarSource)(nil)}
error: Job "gateway-api-admission" still uses values: database: {host: mysql.skoala-system, password: ${SECRET}}
EOF
exit 1
`;

let h: Harness;
let dir: string;
beforeAll(async () => {
  [h, dir] = await Promise.all([startHarness(), mkdtemp(path.join(tmpdir(), 'skoala-secrets-'))]);
});
afterAll(async () => {
  await h?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('secrets in tool output', () => {
  it('stay out of the histories and the worker logs, while the failure is reported', async () => {
    const kubectl = path.join(dir, 'kubectl');
    await writeFile(kubectl, STAND_IN_KUBECTL, { mode: 0o755 });
    const real = createActivities({
      helm: path.join(dir, 'no-helm'),
      kubectl,
      backupDir: path.join(dir, 'backups'),
      workDir: dir,
    });
    const fleet = fleetOf(1);
    const fake = new FakeFleet({
      clusters: fakeFleetAt(fleet, '0.19.2').clusters,
      chartVersions: ['0.19.2', '0.27.2'],
    });
    // >= 0.26.2: worker-1's plan deletes the admission Jobs, with the real activity.
    const request = requestFor(fleet, { targetVersion: '0.27.2' });
    request.tuning = { ...request.tuning, retryMaximumAttempts: 2 };
    const workflowId = `wf-${request.upgradeId}`;
    const tq = `q-secrets-${Date.now()}`;
    const worker = await h.worker(tq, { ...fake.activities(), deleteAdmissionJobs: real.deleteAdmissionJobs });
    const result = await worker.runUntil(async () => {
      const handle = await h.env.client.workflow.start(upgradeEngine, {
        taskQueue: tq,
        workflowId,
        args: [{ request }],
      });
      return handle.result();
    });

    // The failure is reported (soft checks: a leak shows in every place it reached, not the first only).
    const w1 = result.workers.find((w) => w.cluster === 'worker-1');
    expect(w1?.outcome).toBe('failed');
    expect(w1?.error).toContain('kubectl delete jobs exited 1: error: Job "gateway-api-admission" still uses values');
    expect(fake.count('upgradeRelease', 'worker-1')).toBe(0);
    expect.soft(w1?.error).toMatch(/password: \*\*\*\}$/);
    expect.soft(around(JSON.stringify(result), SECRET)).toBe('');

    // (a) Histories, payloads decoded. Positive controls: `commandKind` and `--ignore-not-found` are
    // only in the failure's details payload; without decoding, the same search is blind to payloads.
    const history = await decodedHistoriesText(h.env.client, workflowId, [`${workflowId}/worker-1`]);
    expect(around(history, '"commandKind":"kubectl delete"')).not.toBe('');
    expect(around(history, 'gateway-api-admission-patch --ignore-not-found')).not.toBe('');
    // The e2e suite's control: the control plane's upgradeRelease input carries its --set pairs.
    expect(around(history, 'hive.image.tag')).not.toBe('');
    const raw = JSON.stringify(await h.env.client.workflow.getHandle(`${workflowId}/worker-1`).fetchHistory());
    expect(around(raw, 'commandKind')).toBe('');
    expect.soft(around(history, 'Value:\\"***\\"')).not.toBe('');
    expect.soft(around(history, SECRET)).toBe('');

    // (b) Worker logs. Positive control: the activity failure, with its message, was captured.
    const failed = logLines.filter((l) => l.startsWith('Activity failed') && l.includes('deleteAdmissionJobs'));
    expect(failed.length).toBeGreaterThan(0);
    expect(around(failed.join('\n'), 'still uses values')).not.toBe('');
    expect.soft(around(logLines.join('\n'), SECRET)).toBe('');
  });
});
