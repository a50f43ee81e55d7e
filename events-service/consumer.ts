// The service's own consumer: one group over the three topics. Each event is processed, then
// its offset committed (at-least-once: a crash between the two re-delivers it). A handler
// error is retried a few times, then logged with the whole event and skipped, so one bad
// message never stops the consumer or blocks its partition.
import type { Consumer, EachMessagePayload, Kafka } from 'kafkajs'
import { setTimeout as sleep } from 'node:timers/promises'
import type { Logger } from '../lib/logger.ts'
import { eventKey, parseEvent, type EventEnvelope } from '../lib/events/events.ts'
import { keepConsumerRunning, untilCrash } from '../lib/kafka/consumer-crash.ts'
import type { EventsMetrics } from './metrics.ts'
import type { Topics } from '../lib/kafka/topics.ts'
import type { Tracer } from '@opentelemetry/api'
import { withConsumerSpan } from '../lib/tracing/messaging.ts'

export interface EventMeta {
  topic: string
  partition: number
  offset: number
}

/** Extra processing of a consumed event; the service logs every processed event itself. */
export type EventHandler = (event: EventEnvelope, meta: EventMeta) => Promise<void> | void

export interface EventConsumerOptions {
  kafka: Kafka
  topics: Topics
  groupId: string
  logger: Logger
  metrics: EventsMetrics
  handler?: EventHandler
  handlerAttempts: number
  /** Tracing on (lib/tracing/): each message is processed in a CONSUMER span continuing its headers' trace. */
  tracer?: Tracer
  /** Group session timeout; also bounds how long stop() waits for the group to be left. */
  sessionTimeoutMs: number
  /** Ids remembered to notice re-deliveries (after a rebalance or a failed commit). */
  rememberIds?: number
}

export interface EventConsumer {
  /** Starts consuming in the background; (re)connects until stop(). */
  start(): void
  /** Finishes the event in progress, commits, leaves the group, disconnects. */
  stop(): Promise<void>
}

/** A bounded set of recently processed event ids, oldest evicted first. */
class RecentIds {
  private readonly ids = new Set<string>()
  private readonly max: number
  constructor(max: number) {
    this.max = max
  }
  has(id: string) {
    return this.ids.has(id)
  }
  add(id: string) {
    this.ids.add(id)
    if (this.ids.size > this.max) this.ids.delete(this.ids.values().next().value as string)
  }
}

export function createEventConsumer(options: EventConsumerOptions): EventConsumer {
  const { kafka, topics, metrics } = options
  const logger = options.logger.child({ component: 'consumer', group: options.groupId })
  const recent = new RecentIds(options.rememberIds ?? 10_000)
  let stopping = false
  let consumer: Consumer | undefined
  let running: { loop: Promise<void>; wake: () => void } | undefined
  let endRun: (() => void) | undefined

  async function handle(event: EventEnvelope, meta: EventMeta): Promise<Error | undefined> {
    let lastError: Error | undefined
    for (let attempt = 1; attempt <= options.handlerAttempts; attempt++) {
      try {
        await options.handler?.(event, meta)
        return undefined
      } catch (err) {
        lastError = err as Error
        logger.warn({ ...meta, id: event.id, attempt, err: lastError.message }, 'event handler failed')
        if (attempt < options.handlerAttempts) await sleep(100 * attempt)
      }
    }
    return lastError
  }

  // TRACING: the processing (its log lines too) belongs to the trace the message carries.
  const eachMessage = (payload: EachMessagePayload) => withConsumerSpan(options.tracer, payload, () => processMessage(payload))

  async function processMessage({ topic, partition, message }: EachMessagePayload): Promise<void> {
    const meta: EventMeta = { topic, partition, offset: Number(message.offset) }
    let event: EventEnvelope | undefined
    try {
      event = parseEvent(message.value)
    } catch (err) {
      metrics.processingFailures.inc({ topic })
      logger.error({ ...meta, err: (err as Error).message, value: message.value?.toString('utf8').slice(0, 1000) }, 'unreadable message skipped')
    }
    if (event && recent.has(event.id)) {
      metrics.duplicates.inc({ topic })
      logger.warn({ ...meta, type: event.type, id: event.id }, 'event already processed, skipped')
    } else if (event) {
      const failure = await handle(event, meta)
      if (failure) {
        metrics.processingFailures.inc({ topic })
        logger.error({ ...meta, type: event.type, id: event.id, err: failure.message, event }, 'event processing failed, skipped')
      } else {
        recent.add(event.id)
        metrics.processed.inc({ topic })
        logger.info({ ...meta, type: event.type, id: event.id, key: eventKey(event) }, 'event processed')
      }
    }
    // Only now: the next delivery of this partition starts after this message. A failed
    // commit throws, and kafkajs delivers the message again (at-least-once).
    await consumer!.commitOffsets([{ topic, partition, offset: (BigInt(message.offset) + 1n).toString() }])
  }

  /** Leaves the group and disconnects; bounded, since kafkajs may wait on a pending join. */
  async function disconnect(c: Consumer): Promise<void> {
    let timer: NodeJS.Timeout | undefined
    const bound = new Promise<string>((resolve) => (timer = setTimeout(() => resolve('timeout'), options.sessionTimeoutMs)))
    const outcome = await Promise.race([c.disconnect().then(() => 'ok', (err: Error) => err.message), bound])
    clearTimeout(timer)
    if (outcome !== 'ok') logger.warn({ err: outcome }, 'kafka consumer did not disconnect cleanly')
  }

  async function runOnce(): Promise<void> {
    await topics.ensure()
    if (stopping) return
    const c = kafka.consumer({
      groupId: options.groupId,
      allowAutoTopicCreation: false,
      // Short fetch waits so that stop() does not wait long for an idle fetch to return.
      maxWaitTimeInMs: 1_000,
      // After a broker restart the group still lists our previous member until its session
      // expires, and kafkajs rejoins as a new member: the session bounds that pause.
      sessionTimeout: options.sessionTimeoutMs,
      heartbeatInterval: Math.min(3_000, Math.floor(options.sessionTimeoutMs / 3)),
    })
    consumer = c
    // kafkajs restarts itself after retriable errors; anything else ends this round.
    const { ended: crashed, end } = untilCrash(c, logger)
    endRun = end
    try {
      await c.connect()
      await c.subscribe({ topics: topics.names, fromBeginning: true })
      await c.run({ autoCommit: false, eachMessage })
      logger.info({ topics: topics.names }, 'kafka consumer running')
      await crashed
    } finally {
      await disconnect(c)
    }
  }

  return {
    start() {
      if (running || stopping) return
      running = keepConsumerRunning(runOnce, { stopping: () => stopping, logger, what: 'kafka consumer' })
    },
    async stop() {
      stopping = true
      // Disconnecting finishes the message in progress, then leaves the group.
      if (consumer) await disconnect(consumer)
      endRun?.()
      running?.wake()
      await running?.loop
      logger.info('kafka consumer stopped')
    },
  }
}
