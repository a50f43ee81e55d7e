// Shared pieces of the events-service tests: the app on a real broker with topics and a
// consumer group of its own, reading a topic back with an independent kafkajs consumer, and
// reading the service's Prometheus counters.
import type { FastifyInstance } from 'fastify'
import type { Kafka } from 'kafkajs'
import { buildApp, type EventsServiceDeps } from '../../events-service/app.ts'
import { loadConfig } from '../../events-service/config.ts'
import { captureLogs } from '../helpers/logs.ts'
import { metric as readMetric, selector } from '../helpers/metrics.ts'
import { kafkaClient, uniqueName, waitFor } from '../kafka/helpers.ts'

export { kafkaClient, uniqueName, waitFor }

export interface EventsAppUnderTest {
  app: FastifyInstance
  lines: Array<Record<string, unknown>>
  prefix: string
  group: string
  topics: { movie: string; user: string; payment: string }
}

/**
 * The service built in-process as server.ts builds it, on `brokers`, with its own topic prefix
 * and consumer group (unless given in `env`), ready (producer connected, consumer started).
 */
export async function startEventsApp(
  brokers: string[],
  env: Record<string, string> = {},
  deps: Partial<EventsServiceDeps> = {},
): Promise<EventsAppUnderTest> {
  const prefix = env.KAFKA_TOPIC_PREFIX ?? `${uniqueName('ev')}.`
  const group = env.KAFKA_CONSUMER_GROUP ?? uniqueName('events-service')
  const { logger, lines } = captureLogs('info')
  const config = loadConfig({
    KAFKA_BROKERS: brokers.join(','),
    KAFKA_TOPIC_PREFIX: prefix,
    KAFKA_CONSUMER_GROUP: group,
    KAFKA_LOG_LEVEL: 'error',
    ...env,
  })
  const app = buildApp(config, { logger, ...deps })
  await app.ready()
  return {
    app,
    lines,
    prefix,
    group,
    topics: { movie: `${prefix}movie-events`, user: `${prefix}user-events`, payment: `${prefix}payment-events` },
  }
}

export interface ReadMessage {
  topic: string
  partition: number
  offset: number
  key: string
  headers: Record<string, string>
  value: string
  /** The parsed value, undefined when it is not JSON. */
  event?: { id: string; type: string; timestamp: string; payload: Record<string, unknown> }
}

/** Reads `topics` from the beginning with a fresh consumer group until `done(messages)` holds. */
export async function readTopics(
  kafka: Kafka,
  topics: string[],
  done: (messages: ReadMessage[]) => boolean,
  timeoutMs = 30_000,
): Promise<ReadMessage[]> {
  const messages: ReadMessage[] = []
  const consumer = kafka.consumer({ groupId: uniqueName('reader'), maxWaitTimeInMs: 250 })
  try {
    await consumer.connect()
    await consumer.subscribe({ topics, fromBeginning: true })
    await consumer.run({
      eachMessage: async ({ topic, partition, message }) => {
        const value = message.value?.toString('utf8') ?? ''
        let event: ReadMessage['event']
        try {
          event = JSON.parse(value)
        } catch {}
        const headers = Object.fromEntries(Object.entries(message.headers ?? {}).map(([k, v]) => [k, String(v)]))
        messages.push({ topic, partition, offset: Number(message.offset), key: message.key?.toString('utf8') ?? '', headers, value, event })
      },
    })
    await waitFor(`messages in ${topics.join(', ')}`, () => done(messages), timeoutMs)
    return messages
  } finally {
    await consumer.disconnect()
  }
}

/** Every message of `topics`, read to their end offsets: a copy cannot hide behind an early stop. */
export async function readToEnd(kafka: Kafka, topics: string[]): Promise<ReadMessage[]> {
  const admin = kafka.admin()
  await admin.connect()
  let total = 0
  try {
    for (const topic of topics) for (const p of await admin.fetchTopicOffsets(topic)) total += Number(p.high) - Number(p.low)
  } finally {
    await admin.disconnect()
  }
  return readTopics(kafka, topics, (m) => m.length >= total)
}

/** Sum of a counter's samples whose labels include `labels`, from GET /metrics (0 when none). */
export async function metric(app: FastifyInstance, name: string, labels: Record<string, string> = {}): Promise<number> {
  const res = await app.inject({ method: 'GET', url: '/metrics' })
  return readMetric(res.body, selector(name, labels)) ?? 0
}

/** The service's "event processed" log lines. */
export const processedLines = (lines: Array<Record<string, unknown>>) => lines.filter((l) => l.msg === 'event processed')

export const movieBody = (movieId: number, extra: Record<string, unknown> = {}) => ({ movie_id: movieId, title: 'Inception', action: 'viewed', ...extra })
export const userBody = (userId: number, extra: Record<string, unknown> = {}) => ({
  user_id: userId,
  action: 'registered',
  timestamp: '2025-05-01T10:00:00Z',
  ...extra,
})
export const paymentBody = (paymentId: number, extra: Record<string, unknown> = {}) => ({
  payment_id: paymentId,
  user_id: 1,
  amount: 9.99,
  status: 'completed',
  timestamp: '2025-05-01T10:00:00.123+03:00',
  ...extra,
})

/** Deletes the topics of an app under test (the run's broker is shared). */
export async function deleteTopics(kafka: Kafka, topics: string[]): Promise<void> {
  const admin = kafka.admin()
  try {
    await admin.connect()
    await admin.deleteTopics({ topics, timeout: 10_000 })
  } catch {
    // best effort: the broker is gone at the end of the run anyway
  } finally {
    await admin.disconnect().catch(() => {})
  }
}
