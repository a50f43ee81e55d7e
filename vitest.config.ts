import { defineConfig } from 'vitest/config'
import { isStrayUnleashFetchRejection } from './proxy/flags/unleash-stray-rejections.ts'

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/global-setup.ts'],
    // The last line says 'tests: N passed, N failed' plainly, for whoever reads the CI log.
    reporters: ['default', './test/reporters/closing-line.ts'],
    pool: 'forks',
    // Two cores on CI: more workers only add contention on PostgreSQL and Kafka.
    maxWorkers: 2,
    testTimeout: 30_000,
    hookTimeout: 180_000,
    teardownTimeout: 60_000,
    // The proxy ignores these in production too (proxy/server.ts): a library bug, see the module.
    onUnhandledError: (error) => !isStrayUnleashFetchRejection(error),
  },
})
