import { createRedis } from '../lib/redis.ts'
import { runService } from '../lib/server.ts'
import { buildApp } from './app.ts'
import { loadConfig } from './config.ts'

await runService('proxy', () => loadConfig(), async (config, logger) => {
  const redis = config.redisUrl ? createRedis(config.redisUrl, logger, { commandTimeoutMs: config.redisTimeoutMs }) : undefined
  const app = await buildApp(config, { logger, redis })
  return { app, close: async () => redis?.disconnect() }
})
