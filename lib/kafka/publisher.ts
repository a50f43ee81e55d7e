// Publishes one request at a time (one event, or a batch: the outbox relay) through an
// idempotent kafkajs producer, bounded in time.
//
// Why one at a time, and why a failed producer is never reused: kafkajs assigns the
// idempotent sequence number when a request is built and rolls it back when the request
// fails. If the broker did store that request (e.g. the response was lost when it went down),
// the next batch would get the same sequence number and the broker would drop it as a
// "duplicate" while acknowledging it: a 201 for an event that is not stored. So sends never
// overlap, and after any failed or timed-out send the producer is retired (its late outcome
// is logged, and handed to the caller with the timeout error) and the next send starts a new
// producer with a new producer id.
import type { Kafka, Producer, RecordMetadata } from 'kafkajs'
import { Partitioners } from 'kafkajs'
import type { Logger } from '../logger.ts'
import type { EventEnvelope } from '../events/events.ts'
import type { Topics } from './topics.ts'

export class PublishError extends Error {
  override readonly name = 'PublishError'
  /** timeout: the outcome is unknown (the event may still get stored); unavailable: it was not sent. */
  readonly kind: 'timeout' | 'unavailable'
  /** For a timeout: resolves true if the send was stored in the end, false if it failed. */
  readonly lateOutcome?: Promise<boolean>
  constructor(message: string, kind: 'timeout' | 'unavailable', lateOutcome?: Promise<boolean>) {
    super(message)
    this.kind = kind
    this.lateOutcome = lateOutcome
  }
}

export interface PublishResult {
  partition: number
  offset: number
}

/** The two gauges/counters the publisher keeps; each service registers them under its own names. */
export interface PublisherMetrics {
  producerConnected: { set(value: number): void }
  lateAcks: { inc(labels: { topic: string }): void }
}

/** One event on its way to a topic, keyed by its entity. */
export interface OutgoingEvent {
  topic: string
  key: string
  event: EventEnvelope
  /** Extra message headers, e.g. the trace context (traceparent) of the event's publish. */
  headers?: Record<string, string>
}

export interface PublisherOptions {
  kafka: Kafka
  topics: Topics
  logger: Logger
  metrics: PublisherMetrics
  /** Bound on one publish, from the call to the broker's ack, waiting for earlier sends included. */
  sendTimeoutMs: number
}

interface ProducerSlot {
  producer: Producer
  /** Connected (producer id obtained) and the topics exist. */
  ready: Promise<void>
  connected: boolean
  retired: boolean
  inFlight: Set<Promise<unknown>>
}

export interface Publisher {
  /** `headers`: extra message headers, e.g. the traceparent of the publish's PRODUCER span. */
  publish(topic: string, key: string, event: EventEnvelope, headers?: Record<string, string>): Promise<PublishResult>
  /**
   * Sends several events in one request, all or nothing as far as the caller knows (on a throw,
   * some may still be stored). Events of one key keep their order.
   */
  publishBatch(events: OutgoingEvent[]): Promise<void>
  /** Connects the producer if needed, bounded by `timeoutMs`; throws when Kafka is not usable. */
  connect(timeoutMs: number): Promise<void>
  isConnected(): boolean
  /** Waits for queued sends, then disconnects every producer. */
  close(): Promise<void>
}

export function createPublisher(options: PublisherOptions): Publisher {
  const { kafka, topics, metrics } = options
  const logger = options.logger.child({ component: 'publisher' })
  let current: ProducerSlot | undefined
  let closing = false
  // Retired producers still finishing their last send before they disconnect.
  const retiring = new Set<Promise<void>>()
  // The send queue: each publish waits for the previous one (see the header comment).
  let queueTail: Promise<void> = Promise.resolve()

  const setConnected = () => metrics.producerConnected.set(current?.connected && !current.retired ? 1 : 0)

  function newSlot(): ProducerSlot {
    const producer = kafka.producer({
      idempotent: true,
      maxInFlightRequests: 1,
      // Topics are created by topics.ts with the configured partitions, never implicitly.
      allowAutoTopicCreation: false,
      // Java-compatible murmur2 on the key: the same entity lands on the same partition as with
      // any other Kafka client.
      createPartitioner: Partitioners.DefaultPartitioner,
      // A few quick retries inside one send (a broker restart closes the connection); longer
      // outages are the caller's 503, and the next send gets a fresh producer.
      retry: { retries: 2, initialRetryTime: 100, maxRetryTime: 500 },
    })
    const slot: ProducerSlot = { producer, connected: false, retired: false, inFlight: new Set(), ready: Promise.resolve() }
    slot.ready = (async () => {
      await producer.connect()
      await topics.ensure()
      slot.connected = true
      setConnected()
      logger.info('kafka producer connected')
    })()
    slot.ready.catch((err: Error) => {
      logger.warn({ err: err.message }, 'kafka producer cannot connect')
      retire(slot)
    })
    return slot
  }

  function currentSlot(): ProducerSlot {
    if (!current || current.retired) current = newSlot()
    return current
  }

  /** Takes the slot out of use; it disconnects once its in-flight send has settled. */
  function retire(slot: ProducerSlot): void {
    if (slot.retired) return
    slot.retired = true
    if (current === slot) current = undefined
    setConnected()
    const done = Promise.allSettled([slot.ready, ...slot.inFlight])
      .then(() => slot.producer.disconnect())
      .catch(() => {})
      .finally(() => retiring.delete(done))
    retiring.add(done)
  }

  function withDeadline<T>(promise: Promise<T>, deadline: number, what: string): Promise<T> {
    const ms = deadline - Date.now()
    let timer: NodeJS.Timeout | undefined
    const expired = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new PublishError(`kafka did not ${what} within ${options.sendTimeoutMs} ms`, 'timeout')), Math.max(0, ms))
    })
    return Promise.race([promise, expired]).finally(() => clearTimeout(timer))
  }

  /** Resolves when it is this caller's turn; `release` must be called exactly once. */
  function enqueue(): { turn: Promise<void>; release: () => void } {
    let release!: () => void
    const finished = new Promise<void>((resolve) => (release = resolve))
    const turn = queueTail
    queueTail = queueTail.then(() => finished)
    return { turn, release }
  }

  async function send(slot: ProducerSlot, events: OutgoingEvent[], deadline: number): Promise<RecordMetadata[]> {
    // One request; messages of one partition keep the order given here.
    const byTopic = new Map<string, OutgoingEvent[]>()
    for (const e of events) byTopic.set(e.topic, [...(byTopic.get(e.topic) ?? []), e])
    const sending = slot.producer.sendBatch({
      acks: -1,
      timeout: options.sendTimeoutMs,
      topicMessages: [...byTopic].map(([topic, list]) => ({
        topic,
        messages: list.map(({ key, event, headers }) => ({ key, value: JSON.stringify(event), headers: { ...headers, 'event-id': event.id, 'event-type': event.type } })),
      })),
    })
    slot.inFlight.add(sending)
    void sending.finally(() => slot.inFlight.delete(sending)).catch(() => {})
    let metadata: RecordMetadata[]
    try {
      metadata = await withDeadline(sending, deadline, 'acknowledge the event')
    } catch (err) {
      retire(slot)
      if (err instanceof PublishError) {
        // The send goes on inside kafkajs (a few bounded retries): say so if it lands after all.
        const ids = events.map((e) => e.event.id)
        sending.then(
          (late) => {
            for (const e of events) {
              metrics.lateAcks.inc({ topic: e.topic })
              const ack = events.length === 1 ? late[0] : undefined
              logger.warn({ topic: e.topic, id: e.event.id, partition: ack?.partition, offset: ack?.baseOffset }, 'event stored after its publish had timed out (the client got 503)')
            }
          },
          (lateErr: Error) => logger.info({ ids, err: lateErr.message }, 'timed-out send failed in the end'),
        )
        throw new PublishError(err.message, 'timeout', sending.then(() => true, () => false))
      }
      throw new PublishError(`kafka rejected the event: ${(err as Error).message}`, 'unavailable')
    }
    const failed = metadata.find((ack) => ack.errorCode !== 0 || ack.baseOffset === undefined)
    if (failed || metadata.length === 0) {
      retire(slot)
      throw new PublishError(`kafka did not acknowledge the event (error code ${failed?.errorCode})`, 'unavailable')
    }
    return metadata
  }

  async function publishBatch(events: OutgoingEvent[]): Promise<RecordMetadata[]> {
    if (closing) throw new PublishError('the service is shutting down', 'unavailable')
    if (events.length === 0) return []
    const deadline = Date.now() + options.sendTimeoutMs
    const { turn, release } = enqueue()
    try {
      await withDeadline(turn, deadline, 'accept the event (earlier sends still pending)')
    } catch (err) {
      // Nothing was sent; give the turn back when it comes.
      void turn.then(release)
      throw err
    }
    try {
      const slot = currentSlot()
      try {
        await withDeadline(slot.ready, deadline, 'connect')
      } catch (err) {
        // Not sent: the event is certainly not stored.
        throw new PublishError(`kafka unavailable: ${(err as Error).message}`, 'unavailable')
      }
      return await send(slot, events, deadline)
    } finally {
      release()
    }
  }

  return {
    async publish(topic, key, event, headers) {
      // One message: one topic-partition ack, carrying its offset.
      const [ack] = await publishBatch([{ topic, key, event, headers }])
      return { partition: ack!.partition, offset: Number(ack!.baseOffset) }
    },

    publishBatch: async (events) => void (await publishBatch(events)),

    async connect(timeoutMs) {
      if (closing) throw new Error('the service is shutting down')
      const slot = currentSlot()
      const deadline = Date.now() + timeoutMs
      try {
        await withDeadline(slot.ready, deadline, 'connect')
      } catch (err) {
        throw new Error(`kafka producer not connected: ${(err as Error).message}`, { cause: err })
      }
    },

    isConnected: () => Boolean(current?.connected && !current.retired),

    async close() {
      closing = true
      await queueTail
      if (current) retire(current)
      await Promise.all([...retiring])
      metrics.producerConnected.set(0)
      logger.info('kafka producer closed')
    },
  }
}
