import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts', 'src/**/*.test.ts'],
    pool: 'forks',
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Multi-process tests start their own children and spend much of their time waiting (lease expiry, ticks, TTLs):
    // three files at once keep a 2-core machine busy without starving their timing (two: 11 min on a slow host).
    maxWorkers: 3,
    reporters: ['default', './test/support/summary-reporter.ts'],
  },
});
