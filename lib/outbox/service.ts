// The outbox in a service process (the monolith, the movies service): its variables, its
// metrics on the service's /metrics, and the relay started with the app and stopped with it
// (graceful shutdown: the round in progress finishes, then the producer disconnects).
// KAFKA_BROKERS unset = no relay: writes still record their events, which wait in the table.
import type { FastifyInstance } from 'fastify'
import type { Kafka } from 'kafkajs'
import type { Registry } from 'prom-client'
import { env, type ConfigOf } from '../config.ts'
import type { Database } from '../db/database.ts'
import { kafkaEnv } from '../kafka/config.ts'
import { kafkaClientFromConfig } from '../kafka/kafka-client.ts'
import { createPublisher } from '../kafka/publisher.ts'
import { eventTopics } from '../events/events.ts'
import { topicsFromConfig, type Topics } from '../kafka/topics.ts'
import type { Logger } from '../logger.ts'
import { createOutboxMetrics } from './metrics.ts'
import type { Tracer } from '@opentelemetry/api'
import { createRelay, type RelayOptions, type WakeupSource } from './relay.ts'

export const outboxEnv = {
  kafkaBrokers: env.list('KAFKA_BROKERS', [], 'Kafka bootstrap brokers the outbox relay publishes to, e.g. kafka:9092; unset = relay off (events wait in the outbox)'),
  ...kafkaEnv,
  outboxBatchSize: env.int('OUTBOX_BATCH_SIZE', 100, { min: 1, max: 10_000, description: 'outbox events the relay publishes per Kafka request' }),
  outboxPollIntervalMs: env.int('OUTBOX_POLL_INTERVAL_MS', 1_000, {
    min: 10,
    description: 'longest pause between two looks at the outbox when no LISTEN/NOTIFY wake-up came',
  }),
  outboxRetentionSeconds: env.int('OUTBOX_RETENTION_SECONDS', 86_400, { min: 1, description: 'sent outbox rows are deleted after this' }),
}

export type OutboxConfig = ConfigOf<typeof outboxEnv>

export interface OutboxDeps {
  db: Database
  logger: Logger
  /** The service's metrics registry (its /metrics). */
  registry: Registry
  /** Kafka client id, e.g. "monolith". */
  clientId: string
  /** A ready kafkajs client; default: one built from config.kafkaBrokers. */
  kafka?: Kafka
  /** LISTEN/NOTIFY wake-ups (pgWakeups); without them the relay polls. */
  wakeups?: WakeupSource
  /**
   * Connections of the relay's own (a small pool on the same database), so that its claims do
   * not queue behind request traffic when the service's pool is busy; default: `db`.
   */
  relayDb?: Database
  /** Tracing on (lib/tracing/): the relay's publishes continue the rows' traces. */
  tracer?: Tracer
  /** Relay overrides for tests (lease, backoff, fault injection). */
  relay?: Partial<Pick<RelayOptions, 'leaseMs' | 'backoff' | 'beforeMark'>>
  /** Topics besides the event topics that this service's outbox rows name (without KAFKA_TOPIC_PREFIX), e.g. movie-state. */
  extraTopics?: { names: string[]; compacted?: boolean }
}

/** The Kafka client and topics of the relay, for other Kafka users of the service (its replica consumer); absent when Kafka is off. */
export interface OutboxKafka {
  kafka: Kafka
  topics: Topics
}

/** Registers the outbox's metrics and, when Kafka is configured, its relay, on `app`. */
export function registerOutbox(app: FastifyInstance, config: OutboxConfig, deps: OutboxDeps): OutboxKafka | undefined {
  const { db, logger } = deps
  const metrics = createOutboxMetrics({ registry: deps.registry, db, logger })
  if (config.kafkaBrokers.length === 0 && !deps.kafka) {
    app.addHook('onReady', async () => {
      logger.warn('KAFKA_BROKERS is not set: the outbox relay is off; created users, movies, payments and subscriptions wait in the outbox table until a relay runs')
    })
    app.addHook('onClose', async () => deps.relayDb?.close())
    return undefined
  }
  const kafka = deps.kafka ?? kafkaClientFromConfig(config, deps.clientId, logger)
  const prefix = config.topicPrefix ?? ''
  const extra = (deps.extraTopics?.names ?? []).map((t) => prefix + t)
  const topics = topicsFromConfig(kafka, config, logger, [...eventTopics(prefix), ...extra], deps.extraTopics?.compacted ? extra : [])
  const publisher = createPublisher({ kafka, topics, logger, metrics, sendTimeoutMs: config.sendTimeoutMs })
  const relay = createRelay({
    db: deps.relayDb ?? db,
    publisher,
    logger,
    metrics,
    topicPrefix: config.topicPrefix ?? '',
    batchSize: config.outboxBatchSize,
    pollIntervalMs: config.outboxPollIntervalMs,
    // A claim outlives the longest publish (queue wait + send, both within the send timeout).
    leaseMs: Math.max(10_000, config.sendTimeoutMs * 3),
    retentionMs: config.outboxRetentionSeconds * 1000,
    wakeups: deps.wakeups,
    tracer: deps.tracer,
    ...deps.relay,
  })
  // The relay runs in the background: Kafka being down never delays start, writes or /ready.
  app.addHook('onReady', async () => relay.start())
  app.addHook('onClose', async () => {
    await relay.stop()
    await publisher.close()
    await deps.relayDb?.close()
  })
  return { kafka, topics }
}
