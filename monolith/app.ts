// The TypeScript port of the legacy monolith: users, movies, payments, subscriptions.
import type { FastifyInstance } from 'fastify'
import type { Database } from '../lib/db/database.ts'
import { createHttpApp } from '../lib/http/create-app.ts'
import { healthRoutes } from '../lib/http/health.ts'
import { httpMetrics } from '../lib/http/metrics.ts'
import type { Logger } from '../lib/logger.ts'
import { createMovieRepository } from '../lib/movies/movie-repository.ts'
import { movieRoutes } from '../lib/movies/movie-routes.ts'
import type { MonolithConfig } from './config.ts'
import { paymentRoutes } from './payments/payment-routes.ts'
import { subscriptionRoutes } from './subscriptions/subscription-routes.ts'
import { userRoutes } from './users/user-routes.ts'

export interface MonolithDeps {
  db: Database
  logger: Logger
}

export function buildApp(config: Pick<MonolithConfig, 'bodyLimitBytes'>, deps: MonolithDeps): FastifyInstance {
  const app = createHttpApp({ logger: deps.logger, bodyLimitBytes: config.bodyLimitBytes, api: { title: 'CinemaAbyss monolith', description: 'The port of the legacy monolith: users, movies, payments, subscriptions.' } })
  app.register(httpMetrics)
  app.register(healthRoutes, { livePaths: ['/health'], check: () => deps.db.ping() })
  app.register(userRoutes, { db: deps.db })
  app.register(movieRoutes, { movies: createMovieRepository(deps.db) })
  app.register(paymentRoutes, { db: deps.db })
  app.register(subscriptionRoutes, { db: deps.db })
  return app
}
