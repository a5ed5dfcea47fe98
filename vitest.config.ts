import { defineConfig } from 'vitest/config';

// Forks, not worker threads: the native TensorFlow addon is loaded once per process.
// Two forks match the 2-core machines CI runs on.
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    pool: 'forks',
    maxWorkers: 2,
    setupFiles: ['test/setup.ts'],
    reporters: ['default', './test/summary-reporter.ts'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    env: { TF_CPP_MIN_LOG_LEVEL: '2' },
  },
});
