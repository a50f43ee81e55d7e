// The events service: HTTP events published to Kafka and consumed back by the service itself.
// Kafka comes up with the app (onReady: producer, topics, consumer) and goes down with it
// (onClose, after the HTTP server stopped: flush the producer, leave the group, disconnect).
import type { FastifyInstance } from 'fastify'
import type { Kafka } from 'kafkajs'
import { createHttpApp } from '../lib/http/create-app.ts'
import type { Tracing } from '../lib/tracing/tracing.ts'
import { healthRoutes } from '../lib/http/health.ts'
import { httpMetrics } from '../lib/http/metrics.ts'
import type { Logger } from '../lib/logger.ts'
import type { EventsServiceConfig } from './config.ts'
import { createEventConsumer, type EventHandler } from './consumer.ts'
import { kafkaClientFromConfig } from '../lib/kafka/kafka-client.ts'
import { createMetrics } from './metrics.ts'
import { createPublisher } from '../lib/kafka/publisher.ts'
import { eventRoutes } from './routes.ts'
import { eventTopicsFromConfig } from '../lib/kafka/topics.ts'

export interface EventsServiceDeps {
  /** Tracing on (lib/tracing/): request spans, and the outbox's or consumer's spans. */
  tracing?: Tracing
  logger: Logger
  /** A ready kafkajs client; default: one built from config.kafkaBrokers. */
  kafka?: Kafka
  /** Extra processing of every consumed event (after it is parsed, before it is committed). */
  onEvent?: EventHandler
}

export function buildApp(config: EventsServiceConfig, deps: EventsServiceDeps): FastifyInstance {
  const { logger } = deps
  const app = createHttpApp({ logger, tracing: deps.tracing, bodyLimitBytes: config.bodyLimitBytes, internalToken: config.internalToken, api: { title: 'CinemaAbyss events-service', description: 'Movie, user and payment events published to Kafka.' } })
  const kafka = deps.kafka ?? kafkaClientFromConfig(config, config.kafkaClientId, logger)
  const metrics = createMetrics()
  const topics = eventTopicsFromConfig(kafka, config, logger)
  const publisher = createPublisher({ kafka, topics, logger, metrics, sendTimeoutMs: config.sendTimeoutMs })
  const consumer = config.consumerEnabled
    ? createEventConsumer({
        kafka,
        topics,
        groupId: config.consumerGroup,
        logger,
        metrics,
        handler: deps.onEvent,
        handlerAttempts: config.handlerAttempts,
        tracer: deps.tracing?.tracer,
        sessionTimeoutMs: config.sessionTimeoutMs,
      })
    : undefined

  app.register(healthRoutes, {
    livePaths: ['/health', '/api/events/health'],
    // Ready = the producer is connected; a failed check also tries to (re)connect it.
    check: () => (publisher.isConnected() ? Promise.resolve() : publisher.connect(config.sendTimeoutMs)),
  })
  app.register(httpMetrics, { registry: metrics.registry })
  app.register(eventRoutes, { publisher, metrics, topicPrefix: config.topicPrefix ?? '', tracer: deps.tracing?.tracer })

  app.addHook('onReady', async () => {
    // Kafka being down at start is not fatal: /ready stays 503 and the next POST or /ready
    // retries; the consumer keeps retrying in the background.
    await publisher.connect(config.sendTimeoutMs).catch((err: Error) => logger.warn({ err: err.message }, 'kafka not reachable at start'))
    consumer?.start()
  })
  app.addHook('onClose', async () => {
    await publisher.close()
    await consumer?.stop()
  })
  return app
}
