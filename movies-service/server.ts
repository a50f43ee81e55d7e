import { createPgDatabaseFromConfig } from '../lib/db/pg-database.ts'
import { pgRelayDeps } from '../lib/outbox/pg-relay.ts'
import { createRedis } from '../lib/redis.ts'
import { runService } from '../lib/server.ts'
import { buildApp } from './app.ts'
import { loadConfig } from './config.ts'

await runService('movies-service', () => loadConfig(), (config, logger) => {
  const db = createPgDatabaseFromConfig(config)
  db.ping().catch((err) => logger.warn({ err: err.message }, 'database not reachable yet'))
  const redis = config.redisUrl
    ? createRedis(config.redisUrl, logger, { commandTimeoutMs: config.cacheTimeoutMs, keyPrefix: config.cacheKeyPrefix })
    : undefined
  return {
    app: buildApp(config, { db, logger, redis, outbox: pgRelayDeps(config, logger) }),
    close: async () => {
      redis?.disconnect()
      await db.close()
    },
  }
})
