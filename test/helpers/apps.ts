// Builds the services in-process on a test database, the way server.ts does.
import type { FastifyInstance } from 'fastify'
import type { Database } from '../../lib/db/database.ts'
import { createPgDatabase } from '../../lib/db/pg-database.ts'
import type { Logger } from '../../lib/logger.ts'
import type { Redis } from '../../lib/redis.ts'
import { buildApp as buildMonolith } from '../../monolith/app.ts'
import { loadConfig as monolithConfig } from '../../monolith/config.ts'
import { buildApp as buildMoviesService } from '../../movies-service/app.ts'
import { loadConfig as moviesConfig } from '../../movies-service/config.ts'
import { captureLogs } from './logs.ts'

export interface AppUnderTest {
  app: FastifyInstance
  db: Database
  close(): Promise<void>
}

export function openDb(url: string, opts: { connectTimeoutMs?: number; statementTimeoutMs?: number } = {}): Database {
  return createPgDatabase({ connectionString: url, max: 5, ...opts })
}

export function monolithApp(db: Database, logger: Logger = captureLogs().logger, env: Record<string, string> = {}): FastifyInstance {
  return buildMonolith(monolithConfig(env), { db, logger })
}

export function moviesServiceApp(
  db: Database,
  opts: { logger?: Logger; redis?: Redis; env?: Record<string, string> } = {},
): FastifyInstance {
  return buildMoviesService(moviesConfig(opts.env ?? {}), { db, logger: opts.logger ?? captureLogs().logger, redis: opts.redis })
}
