import { runService } from '../lib/server.ts'
import { loadConfig } from './config.ts'

await runService('movies-service', () => loadConfig(), async (config, logger, tracing) => {
  // Imported once tracing has started (lib/server.ts): the pg and ioredis instrumentations see them load.
  const [{ createPgDatabaseFromConfig }, { pgRelayDeps }, { createRedis }, { buildApp }] = await Promise.all([
    import('../lib/db/pg-database.ts'),
    import('../lib/outbox/pg-relay.ts'),
    import('../lib/redis.ts'),
    import('./app.ts'),
  ])
  const db = createPgDatabaseFromConfig(config)
  db.ping().catch((err) => logger.warn({ err: err.message }, 'database not reachable yet'))
  const redis = config.redisUrl
    ? createRedis(config.redisUrl, logger, { commandTimeoutMs: config.cacheTimeoutMs, keyPrefix: config.cacheKeyPrefix })
    : undefined
  return {
    app: buildApp(config, { db, logger, redis, outbox: pgRelayDeps(config, logger), tracing }),
    close: async () => {
      redis?.disconnect()
      await db.close()
    },
  }
})
