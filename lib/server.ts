// The life of a service process: read config (fail fast naming the bad variable), build,
// listen, and shut down gracefully on SIGTERM/SIGINT: stop accepting, let in-flight requests
// finish (bounded), then release resources (pools, producers).
import closeWithGrace from 'close-with-grace'
import type { FastifyInstance } from 'fastify'
import { createLogger, type Logger } from './logger.ts'

export interface ServiceConfig {
  port: number
  host: string
  logLevel: string
  shutdownTimeoutMs: number
}

export interface RunningParts {
  app: FastifyInstance
  /** Runs after the HTTP server closed, e.g. () => db.close(). */
  close?: () => Promise<void>
}

export async function runService<C extends ServiceConfig>(
  name: string,
  loadConfig: () => C,
  build: (config: C, logger: Logger) => Promise<RunningParts> | RunningParts,
): Promise<void> {
  let config: C
  try {
    config = loadConfig()
  } catch (error) {
    console.error(`${name}: cannot start: ${(error as Error).message}`)
    process.exit(1)
  }
  const logger = createLogger({ level: config.logLevel, name })
  try {
    const { app, close } = await build(config, logger)
    closeWithGrace({ delay: config.shutdownTimeoutMs }, async ({ signal, err }) => {
      if (err) logger.error({ err }, 'shutting down after a fatal error')
      else logger.info({ signal }, 'shutting down')
      await app.close()
      await close?.()
      logger.info('stopped')
    })
    await app.listen({ port: config.port, host: config.host })
  } catch (error) {
    logger.fatal({ err: error }, `cannot start: ${(error as Error).message}`)
    process.exit(1)
  }
}
