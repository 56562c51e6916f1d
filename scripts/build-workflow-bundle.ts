/**
 * `npm run build`: bundles the workflow code once into dist/workflow-bundle.js. A worker started
 * after a build loads it instead of bundling at start (seconds saved per worker start, and every
 * worker runs byte-identical workflow code).
 */
import { bundleWorkflowCode } from '@temporalio/worker';
import { mkdir, writeFile } from 'node:fs/promises';
import { workflowBundlePath, workflowsPath } from '../worker/create-worker';

const { code } = await bundleWorkflowCode({ workflowsPath });
await mkdir(new URL('../dist/', import.meta.url), { recursive: true });
await writeFile(workflowBundlePath, code);
console.log(`workflow bundle written to ${workflowBundlePath} (${(code.length / 1024).toFixed(0)} KiB)`);
