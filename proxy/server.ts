import cluster from 'node:cluster'
import { chmodSync, lstatSync, unlinkSync } from 'node:fs'
import { createLogger } from '../lib/logger.ts'
import { runService } from '../lib/server.ts'
import { loadConfig } from './config.ts'
import { isStrayUnleashFetchRejection } from './flags/unleash-stray-rejections.ts'
import { clusterMetrics, runPrimary } from './workers.ts'

// Any other unhandled rejection still ends the process, as Node's default does.
process.on('unhandledRejection', (reason) => {
  if (!isStrayUnleashFetchRejection(reason)) throw reason
})

let workers = 1
try {
  workers = loadConfig().workers
} catch {
  // runService below reports the configuration error and exits.
}

if (workers > 1 && cluster.isPrimary) {
  const config = loadConfig()
  runPrimary({ workers, port: config.port, shutdownTimeoutMs: config.shutdownTimeoutMs, logger: createLogger({ level: config.logLevel, name: 'proxy' }) })
} else {
  await runService('proxy', () => loadConfig(), async (config, processLogger, tracing) => {
    // Imported once tracing has started (lib/server.ts): the ioredis instrumentation sees it load.
    const [{ createRedis }, { buildApp }] = await Promise.all([import('../lib/redis.ts'), import('./app.ts')])
    const logger = cluster.isWorker ? processLogger.child({ worker: cluster.worker!.id }) : processLogger
    const redis = config.redisUrl ? createRedis(config.redisUrl, logger, { commandTimeoutMs: config.redisTimeoutMs, autoPipelining: true }) : undefined
    const { app, ops } = await buildApp(config, { logger, redis, tracing, ...(cluster.isWorker ? { renderMetrics: clusterMetrics } : {}) })
    // The operators' listener first (runService listens the public one, and closing it closes this one too).
    if (config.adminSocket) {
      // A socket file left by a process that died is in the way; with workers the primary holds the socket.
      if (!cluster.isWorker && lstatSync(config.adminSocket, { throwIfNoEntry: false })?.isSocket()) unlinkSync(config.adminSocket)
      await ops.listen({ path: config.adminSocket })
      // Only this user may connect (connecting needs write permission); the umask may have allowed more.
      if (!cluster.isWorker) chmodSync(config.adminSocket, 0o600)
    } else await ops.listen({ port: config.adminPort, host: config.adminHost })
    return { app, close: async () => redis?.disconnect() }
  })
}
