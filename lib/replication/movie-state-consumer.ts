// This store's consumer of the movie-state topic: every change written on the other side is
// applied here (lib/movies/movie-replica.ts), up to 100 per transaction in partition order, with
// the offset after them recorded in the same transaction (replication_offsets), then committed to
// Kafka too (for tools and lag). The store's own record is the one that counts: a batch that
// starts past it (a store restored from a backup) is read again from there, messages before it
// are skipped (already applied).
//
// The consumer group is this store's own, named once in the store itself (replication_state):
// a new store, or one rebuilt from nothing, has no group and no offsets yet, so it reads the
// compacted topic from the beginning — the latest state of every movie — and then follows it.
//
// Writes (lib/replication/write-authority.ts): when it starts, a process marks the store as
// catching up; every few seconds, and at once after a writer handover to this store was applied,
// it reads the topic's end offsets and makes them the store's catch-up target (taking the
// handover up): the store writes again once it has applied that far.
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
import { MOVIES_ENTITY, parseMovieTopicMessage, type StoreSide } from '../movies/movie-state.ts'
import type { ReplicaMetrics } from './metrics.ts'
import { appliedOffsets, authorityState, needsStreamEnd, recordApplied, startCatchUp, takeUpHandover, type AuthorityState } from './write-authority.ts'

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
  /** 0 when caught up; else the age of the oldest change not applied here yet (at least). */
  behindSeconds?: number
  lastAppliedAt?: string
  /** The store's write authority as last read (undefined before the first check). */
  authority?: AuthorityState
  /** This process has seen its store caught up with the stream at least once since it started (a restored or rebuilt store: not yet). */
  caughtUpSinceStart: boolean
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
  let authority: AuthorityState | undefined
  let catchUpStarted = false
  let caughtUpSinceStart = false
  /** Per partition, when the oldest change fetched and not applied yet was written. */
  const unappliedSince = new Map<number, number>()
  /** Wakes the checker at once (a handover to this store was applied). */
  let checkNow = () => {}

  /** Keeps a message that can never be applied in replication_parked (retried while the database is away). */
  async function park(topicName: string, partition: number, message: KafkaMessage, error: string, heartbeat: () => Promise<void>): Promise<void> {
    for (let attempt = 1; !stopping; attempt++) {
      try {
        await db.transaction(async (tx) => {
          await tx.query(
            `INSERT INTO replication_parked (topic, partition, message_offset, message_key, message_value, error) VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (topic, partition, message_offset) DO NOTHING`,
            [topicName, partition, message.offset, message.key?.toString('utf8') ?? null, message.value?.toString('utf8').replace(/\0/g, '\uFFFD') ?? null, error],
          )
          await recordApplied(tx, topicName, partition, (BigInt(message.offset) + 1n).toString())
        })
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
      const change = changes[i]
      if ('handover' in change) {
        metrics.events.inc({ origin: change.handover.from, result: 'handover' })
        logger.info({ handover: change.handover }, 'writer handover read from the stream')
        if (change.handover.to === self) checkNow()
        return
      }
      const { state } = change
      metrics.events.inc({ origin: state.origin, result: outcome })
      if (outcome === 'conflict') logger.error({ movieId: state.movie.id, version: state.version, origin: state.origin }, 'replication conflict: change parked in replication_conflicts, the record keeps what this store holds')
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
  async function applyAll(changes: Array<IncomingState & { message: KafkaMessage }>, topicName: string, partition: number, heartbeat: () => Promise<void>, nextOffset: string): Promise<number[] | undefined> {
    for (let attempt = 1; !stopping; attempt++) {
      try {
        return counted(changes, await applyMovieStates(db, changes, self, { topic: topicName, partition, nextOffset }))
      } catch (err) {
        if (refusedByDatabase(err) && changes.length > 1) {
          const applied: number[] = []
          for (const change of changes) {
            const ids = await applyAll([change], topicName, partition, heartbeat, (BigInt(change.message.offset) + 1n).toString())
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

  /** Per partition, the offset this process last sought to (once per offset: a gap after it is compaction's). */
  const sought = new Map<number, bigint>()

  /**
   * Where this store's own record says the partition goes on: a batch that starts past it (a
   * store restored from a backup, or one whose record was lost) is read again from there (seek;
   * undefined returned); else the messages not applied yet.
   */
  async function unappliedOf(batch: EachBatchPayload['batch']): Promise<KafkaMessage[] | undefined> {
    if (batch.messages.length === 0) return []
    const next = (await appliedOffsets(db, batch.topic)).get(batch.partition) ?? BigInt(await logStart(batch.topic, batch.partition))
    const first = BigInt(batch.messages[0].offset)
    if (first > next && sought.get(batch.partition) !== next) {
      sought.set(batch.partition, next)
      logger.warn({ partition: batch.partition, recorded: next.toString(), batchStart: first.toString() }, 'this store has applied less than the consumer group committed (restored from a backup?): reading the partition again from its own record')
      consumer!.seek({ topic: batch.topic, partition: batch.partition, offset: next.toString() })
      return undefined
    }
    return batch.messages.filter((m) => BigInt(m.offset) >= next)
  }

  async function seekToOwnRecord(c: Consumer, partitions: readonly number[]): Promise<void> {
    const own = await appliedOffsets(db, topic)
    for (const partition of partitions) {
      const next = own.get(partition) ?? BigInt(await logStart(topic, partition))
      sought.set(partition, next)
      c.seek({ topic, partition, offset: next.toString() })
    }
  }

  /** The partition's first offset still in the log. */
  async function logStart(topicName: string, partition: number): Promise<string> {
    const offsets = await (await connectedAdmin()).fetchTopicOffsets(topicName)
    return offsets.find((p) => p.partition === partition)?.low ?? '0'
  }

  // One partition's batch: applied in chunks, each in one transaction with its offset, committed to Kafka after.
  async function eachBatch({ batch, heartbeat, isRunning, isStale, resolveOffset }: EachBatchPayload): Promise<void> {
    const messages = await unappliedOf(batch)
    if (messages === undefined) return
    if (messages.length > 0) unappliedSince.set(batch.partition, changedAtOf(messages[0]))
    for (let i = 0; i < messages.length; i += APPLY_CHUNK) {
      if (!isRunning() || isStale() || stopping) return
      const chunk = messages.slice(i, i + APPLY_CHUNK)
      unappliedSince.set(batch.partition, changedAtOf(chunk[0]))
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
    unappliedSince.delete(batch.partition)
  }

  /** Parses the chunk's messages (parking the unreadable ones) and applies the rest. */
  async function applyChunk(chunk: readonly KafkaMessage[], topicName: string, partition: number, heartbeat: () => Promise<void>): Promise<number[] | undefined> {
    const changes: Array<IncomingState & { message: KafkaMessage }> = []
    for (const message of chunk) {
      try {
        const parsed = parseMovieTopicMessage(message.key, message.value)
        if (parsed.kind === 'handover') changes.push({ handover: parsed.envelope.payload, eventId: parsed.envelope.id, message })
        else changes.push({ state: parsed.envelope.payload, eventId: parsed.envelope.id, message })
      } catch (err) {
        await park(topicName, partition, message, (err as Error).message, heartbeat)
      }
    }
    return applyAll(changes, topicName, partition, heartbeat, (BigInt(chunk[chunk.length - 1].offset) + 1n).toString())
  }

  /**
   * The distance to the topic's end, from this store's own record; and, when the store waits for
   * the stream's end (a handover to take up, a process that just started), its catch-up target.
   */
  async function checkBehind(admin: Admin): Promise<void> {
    try {
      const [ends, done] = await Promise.all([admin.fetchTopicOffsets(topic), appliedOffsets(db, topic)])
      behindMessages = ends.reduce((sum, p) => {
        const position = done.get(p.partition)
        return sum + Math.max(0, Number(p.high) - Number(position ?? BigInt(p.low)))
      }, 0)
      if (behindMessages === 0) behindSince = undefined
      else behindSince ??= Date.now()
      if (await needsStreamEnd(db, MOVIES_ENTITY)) {
        await takeUpHandover(db, MOVIES_ENTITY, ends.map((p) => ({ topic, partition: p.partition, offset: Number(p.high) })))
        logger.info({ end: ends.map((p) => `${p.partition}:${p.high}`).join(',') }, 'catch-up target set from the stream\'s end (writes wait until it is applied)')
      }
    } catch (err) {
      behindMessages = undefined
      logger.debug({ err: (err as Error).message }, 'cannot read the movie-state offsets')
    }
    authority = await authorityState(db, MOVIES_ENTITY, self).catch(() => authority)
    if (catchUpStarted && authority && !authority.catchingUp) caughtUpSinceStart = true
    const seconds = behindSecondsNow()
    metrics.behindMessages.set(behindMessages ?? Number.NaN)
    metrics.behindSeconds.set(seconds ?? Number.NaN)
  }

  /** When the change in a message was written (its envelope's changed_at, else the message's own time). */
  function changedAtOf(message: KafkaMessage): number {
    const at = /"changed_at":"([^"]+)"/.exec(message.value?.toString('utf8') ?? '')?.[1]
    const parsed = at ? Date.parse(at) : Number.NaN
    return Number.isNaN(parsed) ? Number(message.timestamp) : parsed
  }

  /** 0 when caught up; else the age of the oldest change fetched and not applied (or, none fetched, for how long this store has been behind). */
  function behindSecondsNow(): number | undefined {
    if (behindMessages === undefined) return undefined
    if (behindMessages === 0) return 0
    const oldest = unappliedSince.size > 0 ? Math.min(...unappliedSince.values()) : behindSince
    return oldest === undefined ? 0 : Math.max(0, Date.now() - oldest) / 1000
  }

  // One admin client for the offsets this consumer asks for.
  const admin = kafka.admin()
  let connecting: Promise<void> | undefined
  async function connectedAdmin(): Promise<Admin> {
    connecting ??= admin.connect().catch((err: unknown) => {
      connecting = undefined
      throw err
    })
    await connecting
    return admin
  }

  function startChecking(): void {
    let ticking: Promise<void> | undefined
    let again = false
    const tick = async () => {
      clearTimeout(checker)
      try {
        await checkBehind(await connectedAdmin())
      } catch {
        behindMessages = undefined
        metrics.behindMessages.set(Number.NaN)
      }
      // While this store waits to write (catching up), checked often: writes wait for nothing else.
      const every = authority?.catchingUp !== false ? Math.min(200, options.behindCheckMs ?? 2_000) : (options.behindCheckMs ?? 2_000)
      if (!stopping) checker = setTimeout(() => void run(), again ? 0 : every)
      again = false
    }
    const run = () => {
      if (ticking) return void (again = true)
      ticking = tick().finally(() => (ticking = undefined))
    }
    checkNow = run
    run()
    stopChecking = async () => {
      clearTimeout(checker)
      await admin.disconnect().catch(() => {})
    }
  }
  let stopChecking = async () => {}

  async function runOnce(): Promise<void> {
    groupId ??= await consumerGroup(db, self)
    // Once per process, not per reconnect (a Kafka outage must not stop the writes): no write
    // (nor retired read) here until this process knows it has applied the stream's end.
    if (!catchUpStarted) {
      await startCatchUp(db, MOVIES_ENTITY)
      catchUpStarted = true
      checkNow()
    }
    await options.topics.ensure()
    checkNow() // the topic exists now: its end can be read
    if (stopping) return
    const c = kafka.consumer({
      groupId,
      allowAutoTopicCreation: false,
      maxWaitTimeInMs: 500,
      sessionTimeout: sessionTimeoutMs,
      heartbeatInterval: Math.min(3_000, Math.floor(sessionTimeoutMs / 3)),
    })
    consumer = c
    // Each partition this member is given goes on from this store's own record, not from the
    // group's committed offset: a store restored from a backup reads again what it lost, also on
    // a partition where nothing new arrives (no batch would ever show the gap there).
    c.on(c.events.GROUP_JOIN, (event) => {
      const partitions = event.payload.memberAssignment[topic] ?? []
      void seekToOwnRecord(c, partitions).catch((err: Error) => logger.warn({ err: err.message }, 'cannot seek to this store\'s own offsets yet (a batch that starts past them will)'))
    })
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
      behindSeconds: behindSecondsNow(),
      lastAppliedAt,
      authority,
      caughtUpSinceStart,
    }),
  }
}
