// The TypeScript port of the legacy monolith: users, movies, payments, subscriptions.
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
import { createMovieRepository } from '../lib/movies/movie-repository.ts'
import { movieRoutes } from '../lib/movies/movie-routes.ts'
import { registerOutbox, type OutboxConfig, type OutboxDeps } from '../lib/outbox/service.ts'
import { MOVIE_STATE_TOPICS, registerMovieReplication } from '../lib/replication/service.ts'
import type { MonolithConfig } from './config.ts'
import { goneRoutes } from '../lib/http/gone.ts'
import { PARITY_PATH } from '../lib/parity/parity-routes.ts'
import { paymentRoutes } from './payments/payment-routes.ts'
import { subscriptionRoutes } from './subscriptions/subscription-routes.ts'
import { userRoutes } from './users/user-routes.ts'

export interface MonolithDeps {
  /** Tracing on (lib/tracing/): request spans, and the outbox's or consumer's spans. */
  tracing?: Tracing
  db: Database
  logger: Logger
  /** Outbox relay wiring: LISTEN/NOTIFY wake-ups, a Kafka client, test overrides. */
  outbox?: Pick<OutboxDeps, 'kafka' | 'wakeups' | 'relayDb' | 'relay'>
}

export function buildApp(config: Pick<MonolithConfig, 'bodyLimitBytes' | 'enforceRules' | keyof OutboxConfig> & Partial<Pick<MonolithConfig, 'disabledDomains' | 'internalToken'>>, deps: MonolithDeps): FastifyInstance {
  const moviesOff = config.disabledDomains?.includes('movies') === true
  const app = createHttpApp({ logger: deps.logger, tracing: deps.tracing, bodyLimitBytes: config.bodyLimitBytes, internalToken: config.internalToken, formats: contractFormats, errorMappers: [databaseErrors], api: { title: 'CinemaAbyss monolith', description: 'The port of the legacy monolith: users, movies, payments, subscriptions.' } })
  parseAnyContentTypeAsJson(app)
  const registry = new Registry()
  const rules = createContractRules({ service: 'monolith', enforce: config.enforceRules, registry })
  app.register(httpMetrics, { registry })
  const tracer = deps.tracing?.tracer
  const kafka = registerOutbox(app, config, { db: deps.db, logger: deps.logger, registry, clientId: 'monolith', extraTopics: MOVIE_STATE_TOPICS, tracer, ...deps.outbox })
  // legacy-db's movies and the movies service's catalog-db kept in step through movie-state —
  // until the movies domain is turned off here (the movies service owns it for good).
  const replication = moviesOff ? undefined : registerMovieReplication(app, { db: deps.db, logger: deps.logger, registry, self: 'legacy', kafka, topicPrefix: config.topicPrefix, tracer })
  app.register(healthRoutes, { livePaths: ['/health'], check: () => deps.db.ping() })
  app.register(userRoutes, { db: deps.db, rules })
  if (moviesOff) app.register(goneRoutes, { domain: 'movies', paths: ['/api/movies', '/api/movies/*', PARITY_PATH] })
  else app.register(movieRoutes, { movies: createMovieRepository(deps.db, 'legacy', { writerOnly: replication?.writerOnly }), rules })
  app.register(paymentRoutes, { db: deps.db, rules })
  app.register(subscriptionRoutes, { db: deps.db, rules })
  return app
}
