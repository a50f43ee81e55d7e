// This store's consumer of the movie-state topic: every change written on the other side is
// applied here (lib/movies/movie-replica.ts), up to 100 per transaction in partition order, then
// their offset committed (at-least-once delivery, applied once: the version check makes a
// re-delivery a no-op).
//
// The consumer group is this store's own, named once in the store itself (replication_state):
// a new store, or one rebuilt from nothing, has no group yet, so it reads the compacted topic
// from the beginning — the latest state of every movie — and then follows it, with no gap.
//
// A message that can never be applied (unreadable, invalid, refused by a constraint) is parked
// in replication_parked and counted, and the stream goes on. A database that is down is not the
// message's fault: the message is retried (with a backoff) until the database is back.
import { randomUUID } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import type { Tracer } from '@opentelemetry/api'
import type { Admin, Consumer, EachBatchPayload, Kafka, KafkaMessage } from 'kafkajs'
import { sqlState, type Database } from '../db/database.ts'
import { keepConsumerRunning, untilCrash } from '../kafka/consumer-crash.ts'
import type { Topics } from '../kafka/topics.ts'
import type { Logger } from '../logger.ts'
import { withConsumerSpans } from '../tracing/messaging.ts'
import { applyMovieStates, type ApplyOutcome, type IncomingState } from '../movies/movie-replica.ts'
import { parseMovieState, type StoreSide } from '../movies/movie-state.ts'
import type { ReplicaMetrics } from './metrics.ts'

export interface ReplicaConsumerOptions {
  kafka: Kafka
  /** Ensures the topic exists (the outbox's topics, movie-state among them). */
  topics: Topics
  /** movie-state with KAFKA_TOPIC_PREFIX. */
  topic: string
  db: Database
  self: StoreSide
  logger: Logger
  metrics: ReplicaMetrics
  /** Called after a change was applied (the movies service drops its cached reads). */
  onApplied?: (movieId: number) => Promise<void>
  /** Tracing on (lib/tracing/): each message is applied in a CONSUMER span continuing its headers' trace. */
  tracer?: Tracer
  sessionTimeoutMs?: number
  /** How often the distance to the topic's end is checked. */
  behindCheckMs?: number
}

export interface ReplicaStatus {
  groupId?: string
  connected: boolean
  /** Messages on the topic not consumed yet; undefined when Kafka could not be asked. */
  behindMessages?: number
  /** 0 when caught up; else for how long this store has been behind. */
  behindSeconds?: number
  lastAppliedAt?: string
}

export interface ReplicaConsumer {
  start(): void
  stop(): Promise<void>
  status(): ReplicaStatus
}

const GROUP_STATE = 'movie_state_consumer_group'
/** Changes applied per transaction (and per offset commit). */
const APPLY_CHUNK = 100

/** This store's consumer group, created at its first start (a rebuilt store gets a new one). */
async function consumerGroup(db: Database, self: StoreSide): Promise<string> {
  await db.query('INSERT INTO replication_state (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING', [
    GROUP_STATE,
    `movie-replica-${self}-${randomUUID().slice(0, 8)}`,
  ])
  const { rows } = await db.query<{ value: string }>('SELECT value FROM replication_state WHERE name = $1', [GROUP_STATE])
  return rows[0].value
}

/** A constraint or data error: this message will never apply (class 22 data exception, 23 integrity). */
const refusedByDatabase = (err: unknown) => /^2[23]/.test(sqlState(err) ?? '')

export function createReplicaConsumer(options: ReplicaConsumerOptions): ReplicaConsumer {
  const { kafka, db, metrics, self, topic } = options
  const logger = options.logger.child({ component: 'movie-replica', topic })
  const sessionTimeoutMs = options.sessionTimeoutMs ?? 10_000
  let stopping = false
  let running: { loop: Promise<void>; wake: () => void } | undefined
  let consumer: Consumer | undefined
  let crashed: (() => void) | undefined
  let groupId: string | undefined
  let connected = false
  let behindMessages: number | undefined
  let behindSince: number | undefined
  let lastAppliedAt: string | undefined
  let checker: NodeJS.Timeout | undefined

  /** Keeps a message that can never be applied in replication_parked (retried while the database is away). */
  async function park(topicName: string, partition: number, message: KafkaMessage, error: string, heartbeat: () => Promise<void>): Promise<void> {
    for (let attempt = 1; !stopping; attempt++) {
      try {
        await db.query(
          `INSERT INTO replication_parked (topic, partition, message_offset, message_key, message_value, error) VALUES ($1, $2, $3, $4, $5, $6)
           ON CONFLICT (topic, partition, message_offset) DO NOTHING`,
          [topicName, partition, message.offset, message.key?.toString('utf8') ?? null, message.value?.toString('utf8').replace(/\0/g, '\uFFFD') ?? null, error],
        )
        break
      } catch (err) {
        logger.warn({ err: (err as Error).message, attempt }, 'cannot park a poison message yet, retrying')
        await retryPause(attempt, heartbeat)
      }
    }
    metrics.events.inc({ origin: 'unknown', result: 'parked' })
    logger.error({ partition, offset: message.offset, key: message.key?.toString('utf8'), err: error }, 'movie-state message parked (replication_parked)')
  }

  async function retryPause(attempt: number, heartbeat: () => Promise<void>): Promise<void> {
    await sleep(Math.min(200 * 2 ** attempt, 5_000))
    // Long retries must not cost this member its partitions.
    await heartbeat().catch(() => {})
  }

  function counted(changes: readonly IncomingState[], outcomes: readonly ApplyOutcome[]): number[] {
    const applied: number[] = []
    outcomes.forEach((outcome, i) => {
      const { state } = changes[i]
      metrics.events.inc({ origin: state.origin, result: outcome })
      if (outcome !== 'applied') return
      applied.push(state.movie.id)
      metrics.lag.observe({ origin: state.origin }, Math.max(0, Date.now() - Date.parse(state.changed_at)) / 1000)
    })
    if (applied.length > 0) lastAppliedAt = new Date().toISOString()
    return applied
  }

  /**
   * Applies `changes` (in partition order) in one transaction; if the database refuses one,
   * one by one, parking the refused ones. A database that is away is waited for. Returns the
   * ids applied, or undefined when stopping before they were.
   */
  async function applyAll(changes: Array<IncomingState & { message: KafkaMessage }>, topicName: string, partition: number, heartbeat: () => Promise<void>): Promise<number[] | undefined> {
    for (let attempt = 1; !stopping; attempt++) {
      try {
        return counted(changes, await applyMovieStates(db, changes, self))
      } catch (err) {
        if (refusedByDatabase(err) && changes.length > 1) {
          const applied: number[] = []
          for (const change of changes) {
            const ids = await applyAll([change], topicName, partition, heartbeat)
            if (!ids) return undefined
            applied.push(...ids)
          }
          return applied
        }
        if (refusedByDatabase(err)) {
          await park(topicName, partition, changes[0].message, `refused by the database: ${(err as Error).message}`, heartbeat)
          return []
        }
        logger.warn({ err: (err as Error).message, partition, attempt }, 'cannot apply movie changes yet, retrying')
        await retryPause(attempt, heartbeat)
      }
    }
    return undefined
  }

  // One partition's batch: applied in chunks, each in one transaction, its offset committed after.
  async function eachBatch({ batch, heartbeat, isRunning, isStale, resolveOffset }: EachBatchPayload): Promise<void> {
    for (let i = 0; i < batch.messages.length; i += APPLY_CHUNK) {
      if (!isRunning() || isStale() || stopping) return
      const chunk = batch.messages.slice(i, i + APPLY_CHUNK)
      // TRACING: each message's processing continues the trace its headers carry (the writer's request).
      const consumed = chunk.map((message) => ({ topic: batch.topic, partition: batch.partition, message }))
      const applied = await withConsumerSpans(options.tracer, consumed, () => applyChunk(chunk, batch.topic, batch.partition, heartbeat))
      if (applied === undefined) return // stopping: not committed, delivered again after the restart
      for (const id of applied) await options.onApplied?.(id)
      const next = (BigInt(chunk[chunk.length - 1].offset) + 1n).toString()
      await consumer!.commitOffsets([{ topic: batch.topic, partition: batch.partition, offset: next }])
      resolveOffset(chunk[chunk.length - 1].offset)
      await heartbeat()
    }
  }

  /** Parses the chunk's messages (parking the unreadable ones) and applies the rest. */
  async function applyChunk(chunk: readonly KafkaMessage[], topicName: string, partition: number, heartbeat: () => Promise<void>): Promise<number[] | undefined> {
    const changes: Array<IncomingState & { message: KafkaMessage }> = []
    for (const message of chunk) {
      try {
        const envelope = parseMovieState(message.key, message.value)
        changes.push({ state: envelope.payload, eventId: envelope.id, message })
      } catch (err) {
        await park(topicName, partition, message, (err as Error).message, heartbeat)
      }
    }
    return applyAll(changes, topicName, partition, heartbeat)
  }

  async function checkBehind(admin: Admin): Promise<void> {
    if (!groupId) return
    try {
      const [ends, committed] = await Promise.all([admin.fetchTopicOffsets(topic), admin.fetchOffsets({ groupId, topics: [topic] })])
      const done = new Map(committed[0]?.partitions.map((p) => [p.partition, Number(p.offset)]) ?? [])
      behindMessages = ends.reduce((sum, p) => {
        const position = done.get(p.partition) ?? -1
        return sum + Math.max(0, Number(p.high) - (position >= 0 ? position : Number(p.low)))
      }, 0)
      if (behindMessages === 0) behindSince = undefined
      else behindSince ??= Date.now()
    } catch (err) {
      behindMessages = undefined
      logger.debug({ err: (err as Error).message }, 'cannot read the movie-state offsets')
    }
    metrics.behindMessages.set(behindMessages ?? Number.NaN)
    metrics.behindSeconds.set(behindSince === undefined ? (behindMessages === undefined ? Number.NaN : 0) : (Date.now() - behindSince) / 1000)
  }

  function startChecking(): void {
    const admin = kafka.admin()
    let connecting: Promise<void> | undefined
    const tick = async () => {
      try {
        connecting ??= admin.connect()
        await connecting
        await checkBehind(admin)
      } catch {
        connecting = undefined
        behindMessages = undefined
        metrics.behindMessages.set(Number.NaN)
      }
      if (!stopping) checker = setTimeout(() => void tick(), options.behindCheckMs ?? 2_000)
    }
    void tick()
    stopChecking = async () => {
      clearTimeout(checker)
      await admin.disconnect().catch(() => {})
    }
  }
  let stopChecking = async () => {}

  async function runOnce(): Promise<void> {
    groupId ??= await consumerGroup(db, self)
    await options.topics.ensure()
    if (stopping) return
    const c = kafka.consumer({
      groupId,
      allowAutoTopicCreation: false,
      maxWaitTimeInMs: 500,
      sessionTimeout: sessionTimeoutMs,
      heartbeatInterval: Math.min(3_000, Math.floor(sessionTimeoutMs / 3)),
    })
    consumer = c
    const { ended, end } = untilCrash(c, logger, 'movie-state consumer')
    crashed = end
    try {
      await c.connect()
      await c.subscribe({ topics: [topic], fromBeginning: true })
      await c.run({ autoCommit: false, eachBatchAutoResolve: false, eachBatch })
      connected = true
      metrics.consumerConnected.set(1)
      logger.info({ groupId }, 'movie-state consumer running')
      await ended
    } finally {
      connected = false
      metrics.consumerConnected.set(0)
      await Promise.race([c.disconnect().catch(() => {}), sleep(sessionTimeoutMs)])
    }
  }

  return {
    start() {
      if (running || stopping) return
      running = keepConsumerRunning(runOnce, { stopping: () => stopping, logger, what: 'movie-state consumer' })
      startChecking()
    },
    async stop() {
      stopping = true
      crashed?.()
      running?.wake()
      await running?.loop
      await stopChecking()
    },
    status: () => ({
      groupId,
      connected,
      behindMessages,
      behindSeconds: behindSince === undefined ? (behindMessages === undefined ? undefined : 0) : (Date.now() - behindSince) / 1000,
      lastAppliedAt,
    }),
  }
}
