// The life of a service process: read config (fail fast naming the bad variable), build,
// listen, and shut down gracefully on SIGTERM/SIGINT: stop accepting, let in-flight requests
// finish (bounded), then release resources (pools, producers).
import closeWithGrace from 'close-with-grace'
import type { FastifyInstance } from 'fastify'
import { createLogger, type Logger } from './logger.ts'
import { startTracing, type Tracing } from './tracing/tracing.ts'

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
  /**
   * Builds the app. Tracing, when on, has started before it runs: import the modules that load
   * pg, ioredis or undici from here (dynamic import), not at the top of server.ts, so that the
   * instrumentations see them load.
   */
  build: (config: C, logger: Logger, tracing: Tracing | undefined) => Promise<RunningParts> | RunningParts,
): Promise<void> {
  let config: C
  try {
    config = loadConfig()
  } catch (error) {
    console.error(`${name}: cannot start: ${(error as Error).message}`)
    process.exit(1)
  }
  let tracing: Tracing | undefined
  try {
    tracing = await startTracing(name)
  } catch (error) {
    console.error(`${name}: cannot start tracing: ${(error as Error).message}`)
    process.exit(1)
  }
  const logger = createLogger({ level: config.logLevel, name, mixin: tracing?.logMixin })
  if (tracing) logger.info({ endpoint: process.env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT ?? process.env.OTEL_EXPORTER_OTLP_ENDPOINT }, 'tracing on: exporting spans (OTLP http/protobuf)')
  try {
    const { app, close } = await build(config, logger, tracing)
    closeWithGrace({ delay: config.shutdownTimeoutMs }, async ({ signal, err }) => {
      if (err) logger.error({ err }, 'shutting down after a fatal error')
      else logger.info({ signal }, 'shutting down')
      await app.close()
      await close?.()
      // Last: the spans of the shutdown itself (relay's final publish) are flushed too.
      await tracing?.shutdown().catch((err: Error) => logger.warn({ err: err.message }, 'tracing: spans not flushed'))
      logger.info('stopped')
    })
    await app.listen({ port: config.port, host: config.host })
  } catch (error) {
    logger.fatal({ err: error }, `cannot start: ${(error as Error).message}`)
    process.exit(1)
  }
}
