/**
 * One Temporal dev server and one workflow bundle for the whole run, shared by every workflow
 * test file (test/workflow/harness.ts): starting a server and bundling the workflows cost ~10 s
 * per file. Files stay apart by their own task queues and workflow IDs. Files that stop or
 * restart a server (server-restart) or need a UI start their own.
 */
import { bundleWorkflowCode } from '@temporalio/worker';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { TestProject } from 'vitest/node';
import { startDevServer } from '../scripts/lib/dev-server';
import { workflowsPath } from '../worker/create-worker';

declare module 'vitest' {
  export interface ProvidedContext {
    /** The shared server's frontend and namespace. */
    temporal: { address: string; namespace: string } | undefined;
    /** A JSON file holding the workflow bundle (`{ code, sourceMap }`). */
    workflowBundleFile: string;
  }
}

const noop = () => {};
const quietLogger = { trace: noop, debug: noop, info: noop, warn: noop, error: noop, log: noop };

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  // npm test runs the end-to-end files in a vitest process of their own: they use no shared server.
  if (process.env.SKOALA_SHARED_TEMPORAL === 'off') return async () => {};
  const dir = await mkdtemp(path.join(tmpdir(), 'skoala-tests-'));
  const [env, bundle] = await Promise.all([
    startDevServer(),
    bundleWorkflowCode({ workflowsPath, logger: quietLogger }),
  ]);
  const bundleFile = path.join(dir, 'workflow-bundle.json');
  await writeFile(bundleFile, JSON.stringify(bundle));
  project.provide('temporal', { address: env.address, namespace: env.namespace ?? 'default' });
  project.provide('workflowBundleFile', bundleFile);
  return async () => {
    await env.teardown();
    await rm(dir, { recursive: true, force: true });
  };
}
