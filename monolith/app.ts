// The TypeScript port of the legacy monolith: users, movies, payments, subscriptions.
import type { FastifyInstance } from 'fastify'
import { Registry } from 'prom-client'
import type { Database } from '../lib/db/database.ts'
import { createHttpApp } from '../lib/http/create-app.ts'
import { healthRoutes } from '../lib/http/health.ts'
import { httpMetrics } from '../lib/http/metrics.ts'
import type { Logger } from '../lib/logger.ts'
import { createMovieRepository } from '../lib/movies/movie-repository.ts'
import { movieRoutes } from '../lib/movies/movie-routes.ts'
import { registerOutbox, type OutboxConfig, type OutboxDeps } from '../lib/outbox/service.ts'
import type { MonolithConfig } from './config.ts'
import { paymentRoutes } from './payments/payment-routes.ts'
import { subscriptionRoutes } from './subscriptions/subscription-routes.ts'
import { userRoutes } from './users/user-routes.ts'

export interface MonolithDeps {
  db: Database
  logger: Logger
  /** Outbox relay wiring: LISTEN/NOTIFY wake-ups, a Kafka client, test overrides. */
  outbox?: Pick<OutboxDeps, 'kafka' | 'wakeups' | 'relayDb' | 'relay'>
}

export function buildApp(config: Pick<MonolithConfig, 'bodyLimitBytes' | keyof OutboxConfig>, deps: MonolithDeps): FastifyInstance {
  const app = createHttpApp({ logger: deps.logger, bodyLimitBytes: config.bodyLimitBytes })
  const registry = new Registry()
  app.register(httpMetrics, { registry })
  registerOutbox(app, config, { db: deps.db, logger: deps.logger, registry, clientId: 'monolith', ...deps.outbox })
  app.register(healthRoutes, { livePaths: ['/health'], check: () => deps.db.ping() })
  app.register(userRoutes, { db: deps.db })
  app.register(movieRoutes, { movies: createMovieRepository(deps.db) })
  app.register(paymentRoutes, { db: deps.db })
  app.register(subscriptionRoutes, { db: deps.db })
  return app
}
