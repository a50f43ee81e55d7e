// Publishes one event at a time through an idempotent kafkajs producer, bounded in time.
//
// Why one at a time, and why a failed producer is never reused: kafkajs assigns the
// idempotent sequence number when a request is built and rolls it back when the request
// fails. If the broker did store that request (e.g. the response was lost when it went down),
// the next batch would get the same sequence number and the broker would drop it as a
// "duplicate" while acknowledging it: a 201 for an event that is not stored. So sends never
// overlap, and after any failed or timed-out send the producer is retired (its late outcome
// is logged) and the next send starts a new producer with a new producer id.
import type { Kafka, Producer, RecordMetadata } from 'kafkajs'
import { Partitioners } from 'kafkajs'
import type { Logger } from '../lib/logger.ts'
import type { EventEnvelope } from './events.ts'
import type { EventsMetrics } from './metrics.ts'
import type { Topics } from './topics.ts'

export class PublishError extends Error {
  override readonly name = 'PublishError'
  constructor(
    message: string,
    /** timeout: the outcome is unknown (the event may still get stored); unavailable: it was not sent. */
    readonly kind: 'timeout' | 'unavailable',
  ) {
    super(message)
  }
}

export interface PublishResult {
  partition: number
  offset: number
}

export interface PublisherOptions {
  kafka: Kafka
  topics: Topics
  logger: Logger
  metrics: EventsMetrics
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
  publish(topic: string, key: string, event: EventEnvelope): Promise<PublishResult>
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

  async function send(slot: ProducerSlot, topic: string, key: string, event: EventEnvelope, deadline: number): Promise<PublishResult> {
    const sending = slot.producer.send({
      topic,
      acks: -1,
      timeout: options.sendTimeoutMs,
      messages: [{ key, value: JSON.stringify(event), headers: { 'event-id': event.id, 'event-type': event.type } }],
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
        sending.then(
          ([late]) => {
            metrics.lateAcks.inc({ topic })
            logger.warn({ topic, id: event.id, partition: late?.partition, offset: late?.baseOffset }, 'event stored after its publish had timed out (the client got 503)')
          },
          (lateErr: Error) => logger.info({ topic, id: event.id, err: lateErr.message }, 'timed-out send failed in the end'),
        )
        throw err
      }
      throw new PublishError(`kafka rejected the event: ${(err as Error).message}`, 'unavailable')
    }
    const [ack] = metadata
    if (!ack || ack.errorCode !== 0 || ack.baseOffset === undefined) {
      retire(slot)
      throw new PublishError(`kafka did not acknowledge the event (error code ${ack?.errorCode})`, 'unavailable')
    }
    return { partition: ack.partition, offset: Number(ack.baseOffset) }
  }

  return {
    async publish(topic, key, event) {
      if (closing) throw new PublishError('the service is shutting down', 'unavailable')
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
        return await send(slot, topic, key, event, deadline)
      } finally {
        release()
      }
    },

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
