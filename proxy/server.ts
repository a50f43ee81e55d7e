import { createRedis } from '../lib/redis.ts'
import { runService } from '../lib/server.ts'
import { buildApp } from './app.ts'
import { loadConfig } from './config.ts'
import { isStrayUnleashFetchRejection } from './unleash-stray-rejections.ts'

// Any other unhandled rejection still ends the process, as Node's default does.
process.on('unhandledRejection', (reason) => {
  if (!isStrayUnleashFetchRejection(reason)) throw reason
})

await runService('proxy', () => loadConfig(), async (config, logger) => {
  const redis = config.redisUrl ? createRedis(config.redisUrl, logger, { commandTimeoutMs: config.redisTimeoutMs, autoPipelining: true }) : undefined
  const app = await buildApp(config, { logger, redis })
  return { app, close: async () => redis?.disconnect() }
})
