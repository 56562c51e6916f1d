import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // One Temporal dev server and workflow bundle for the workflow tests (test/workflow/harness.ts).
    globalSetup: ['test/global-setup.ts'],
    // The Temporal native bridge and the sandbox's child processes want real processes, not threads.
    pool: 'forks',
    // Two cores: each file brings up its own Temporal dev server and/or kube-apiservers, so files run
    // one at a time. `npm test` runs two of these processes side by side (concurrently): the
    // end-to-end files, and the unit, sandbox and workflow files, which mostly wait on servers.
    fileParallelism: false,
    testTimeout: 120_000,
    hookTimeout: 300_000,
  },
});
