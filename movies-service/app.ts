// The first service extracted from the monolith: the movie catalogue, same contract,
// with a Redis read cache in front of the shared movie data access code.
import type { FastifyInstance } from 'fastify'
import { Registry } from 'prom-client'
import { contractFormats } from '../lib/contract/formats.ts'
import { createContractRules } from '../lib/contract/rules.ts'
import type { Database } from '../lib/db/database.ts'
import { parseAnyContentTypeAsJson } from '../lib/http/any-content-type-json.ts'
import { databaseErrors } from '../lib/db/http-errors.ts'
import { createHttpApp } from '../lib/http/create-app.ts'
import type { Tracing } from '../lib/tracing/tracing.ts'
import { healthRoutes } from '../lib/http/health.ts'
import { httpMetrics } from '../lib/http/metrics.ts'
import type { Logger } from '../lib/logger.ts'
import { invalidateMovies, withMovieCache } from '../lib/movies/movie-cache.ts'
import { createMovieRepository } from '../lib/movies/movie-repository.ts'
import { movieRoutes } from '../lib/movies/movie-routes.ts'
import { registerOutbox, type OutboxConfig, type OutboxDeps } from '../lib/outbox/service.ts'
import { MOVIE_STATE_TOPICS, registerMovieReplication } from '../lib/replication/service.ts'
import type { Redis } from '../lib/redis.ts'
import type { MoviesServiceConfig } from './config.ts'

export interface MoviesServiceDeps {
  /** Tracing on (lib/tracing/): request spans, and the outbox's or consumer's spans. */
  tracing?: Tracing
  /** catalog-db: the service's own store (lib/db/catalog-migrations). */
  db: Database
  logger: Logger
  /** Optional read cache; absent = every read goes to the database. */
  redis?: Redis
  /** Outbox relay wiring: LISTEN/NOTIFY wake-ups, a Kafka client, test overrides. */
  outbox?: Pick<OutboxDeps, 'kafka' | 'wakeups' | 'relayDb' | 'relay'>
}

export function buildApp(
  config: Pick<MoviesServiceConfig, 'bodyLimitBytes' | 'cacheTtlSeconds' | 'enforceRules' | keyof OutboxConfig> & Partial<Pick<MoviesServiceConfig, 'internalToken'>>,
  deps: MoviesServiceDeps,
): FastifyInstance {
  const app = createHttpApp({ logger: deps.logger, tracing: deps.tracing, bodyLimitBytes: config.bodyLimitBytes, internalToken: config.internalToken, formats: contractFormats, errorMappers: [databaseErrors], api: { title: 'CinemaAbyss movies-service', description: 'The movie catalogue extracted from the monolith, same contract.' } })
  parseAnyContentTypeAsJson(app)
  const registry = new Registry()
  const rules = createContractRules({ service: 'movies-service', enforce: config.enforceRules, registry })
  app.register(httpMetrics, { registry })
  const tracer = deps.tracing?.tracer
  const kafka = registerOutbox(app, config, { db: deps.db, logger: deps.logger, registry, clientId: 'movies-service', extraTopics: MOVIE_STATE_TOPICS, tracer, ...deps.outbox })
  // catalog-db is kept in step with legacy-db through movie-state; an applied change drops the cached reads.
  const redis = deps.redis
  const replication = registerMovieReplication(app, {
    db: deps.db,
    logger: deps.logger,
    registry,
    self: 'catalog',
    kafka,
    topicPrefix: config.topicPrefix,
    onApplied: redis ? (id) => invalidateMovies(redis, deps.logger, [id]) : undefined,
    tracer,
  })
  const repository = createMovieRepository(deps.db, 'catalog', { writerOnly: replication.writerOnly })
  const movies = deps.redis ? withMovieCache(repository, deps.redis, deps.logger, config.cacheTtlSeconds) : repository
  // Not ready while catching up: its reads would answer 503 (below), its writes wait.
  app.register(healthRoutes, {
    livePaths: ['/health', '/api/movies/health'],
    check: async () => {
      await deps.db.ping()
      if (replication.catchingUp()) throw new Error('catching up with the changes of movies it has not applied yet')
    },
  })
  // A store that has not applied the stream up to its catch-up target (rebuilt, restored) serves
  // no read: once legacy is retired, nothing else would tell a client its answer is incomplete.
  app.register(movieRoutes, { movies, rules, readable: () => !replication.catchingUp() })
  return app
}
