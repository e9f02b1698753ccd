import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Refuses a stale dist/ and reports the suites this machine cannot run (test/kit/setup.ts).
    globalSetup: ['test/kit/setup.ts'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    // The machine has 2 cores; suites start real brokers and child processes.
    maxWorkers: 2,
  },
});
