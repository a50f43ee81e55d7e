// The outbox relay: publishes the outbox's pending rows to Kafka, in order, and marks them sent.
//
//   claim   one statement: the oldest pending rows not claimed by anyone (FOR UPDATE SKIP
//           LOCKED, so any number of relays share one table), leased for `leaseMs`. A row whose
//           key still has an earlier pending row claimed by another relay waits, so one
//           entity's events are published in the order they were written even with replicas.
//           A barrier row (a writer handover) is claimed only once every earlier row is sent.
//   publish one request through the idempotent producer (acks=all), bounded by its send timeout.
//   mark    sent_at = now; sent rows are deleted after the retention period.
//
// A relay that dies between publish and mark leaves its rows leased; when the lease runs out
// another relay (or the restarted one) publishes them again with the same envelope id:
// at-least-once, and consumers drop duplicates by id. No claim holds a transaction open while
// Kafka is slow, so writes never wait for Kafka (PGlite serialises transactions, too).
import type { Database } from '../db/database.ts'
import type { EventEnvelope } from '../events/events.ts'
import { PublishError, type OutgoingEvent, type Publisher } from '../kafka/publisher.ts'
import type { Logger } from '../logger.ts'
import { startProducerSpans, type TraceCarrier } from '../tracing/messaging.ts'
import type { Tracer } from '@opentelemetry/api'
import type { OutboxMetrics } from './metrics.ts'

/** Something that says "the outbox has new rows" (LISTEN/NOTIFY); the relay also polls. */
export interface WakeupSource {
  start(onWake: () => void): void
  stop(): Promise<void>
}

export interface RelayOptions {
  db: Database
  publisher: Pick<Publisher, 'publishBatch'>
  logger: Logger
  metrics: OutboxMetrics
  /** Prepended to the row's topic (KAFKA_TOPIC_PREFIX). */
  topicPrefix: string
  batchSize: number
  /** Longest pause between two looks at the table when no wake-up came. */
  pollIntervalMs: number
  /** How long a claim holds a row; longer than one publish may take. */
  leaseMs: number
  /** Sent rows older than this are deleted. */
  retentionMs: number
  wakeups?: WakeupSource
  /** Pause after a failed round, doubled up to maxMs while Kafka (or the database) stays down. */
  backoff?: { initialMs: number; maxMs: number }
  /** Tracing on: each publish is a PRODUCER span continuing the trace its row stored (lib/tracing/). */
  tracer?: Tracer
  /** Fault injection for tests: runs after a batch was published and before it is marked sent. */
  beforeMark?: (ids: string[]) => Promise<void>
}

export interface Relay {
  start(): void
  /** Lets the round in progress finish (bounded by the send timeout), then stops. */
  stop(): Promise<void>
}

interface ClaimedRow {
  position: string
  id: string
  aggregate_id: string
  topic: string
  payload: EventEnvelope
  trace_context: TraceCarrier | null
}

const CLAIM = `
  WITH candidate AS MATERIALIZED (
    SELECT position, topic, aggregate_id, barrier FROM outbox
     WHERE sent_at IS NULL AND (lease_until IS NULL OR lease_until < clock_timestamp())
     ORDER BY position
     LIMIT $1
     FOR UPDATE SKIP LOCKED
  ), claimable AS (
    SELECT c.position FROM candidate c
     WHERE NOT EXISTS (
       SELECT 1 FROM outbox e
        WHERE e.sent_at IS NULL AND e.topic = c.topic AND e.aggregate_id = c.aggregate_id
          AND e.position < c.position AND e.position NOT IN (SELECT position FROM candidate))
       -- A barrier goes alone, once everything before it is acknowledged.
       AND (NOT c.barrier OR NOT EXISTS (SELECT 1 FROM outbox e WHERE e.sent_at IS NULL AND e.position < c.position))
  )
  UPDATE outbox o
     SET lease_until = clock_timestamp() + make_interval(secs => $2::float8 / 1000), attempts = o.attempts + 1
    FROM claimable
   WHERE o.position = claimable.position
  RETURNING o.position::text AS position, o.id::text AS id, o.aggregate_id, o.topic, o.payload, o.trace_context`

const MARK_SENT = 'UPDATE outbox SET sent_at = clock_timestamp(), lease_until = NULL WHERE id = ANY($1::uuid[])'
const RELEASE = 'UPDATE outbox SET lease_until = NULL WHERE id = ANY($1::uuid[]) AND sent_at IS NULL'
const DELETE_SENT = `
  DELETE FROM outbox WHERE position IN (
    SELECT position FROM outbox
     WHERE sent_at IS NOT NULL AND sent_at < clock_timestamp() - make_interval(secs => $1::float8 / 1000)
     ORDER BY sent_at LIMIT 1000)`

type Round = 'idle' | 'more' | 'failed'

/** true: stored after all; false: surely not stored; undefined: still unknown after `waitMs` (or at shutdown). */
async function lateOutcome(err: unknown, waitMs: number, stopped: Promise<void>): Promise<boolean | undefined> {
  if (!(err instanceof PublishError)) return false
  if (err.kind === 'unavailable' || !err.lateOutcome) return false
  let timer: NodeJS.Timeout | undefined
  const giveUp = new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), Math.max(0, waitMs))))
  try {
    return await Promise.race([err.lateOutcome, giveUp, stopped.then(() => undefined)])
  } finally {
    clearTimeout(timer)
  }
}

export function createRelay(options: RelayOptions): Relay {
  const { db, publisher, metrics } = options
  const logger = options.logger.child({ component: 'outbox-relay' })
  const backoff = options.backoff ?? { initialMs: 500, maxMs: 10_000 }
  const cleanupEveryMs = Math.min(options.retentionMs, 60_000)
  let stopping = false
  let signalStop!: () => void
  const stopped = new Promise<void>((resolve) => (signalStop = resolve))
  let loop: Promise<void> | undefined
  let woken = false
  let wake: (() => void) | undefined

  /** Resolves after `ms`, on stop(), or (if `byNotification`) on the next wake-up. */
  function pause(ms: number, byNotification: boolean): Promise<void> {
    if (stopping) return Promise.resolve()
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms)
      function done() {
        clearTimeout(timer)
        wake = undefined
        resolve()
      }
      wake = () => {
        if (byNotification || stopping) done()
      }
    })
  }

  function onWake(): void {
    woken = true
    wake?.()
  }

  async function round(): Promise<Round> {
    let rows: ClaimedRow[]
    try {
      rows = (await db.query<ClaimedRow>(CLAIM, [options.batchSize, options.leaseMs])).rows
    } catch (err) {
      logger.warn({ err: (err as Error).message }, 'cannot claim outbox rows')
      return 'failed'
    }
    if (rows.length === 0) return 'idle'
    // RETURNING has no order: publish in outbox order.
    rows.sort((a, b) => (BigInt(a.position) < BigInt(b.position) ? -1 : 1))
    const ids = rows.map((r) => r.id)
    const events: OutgoingEvent[] = rows.map((r) => ({ topic: options.topicPrefix + r.topic, key: r.aggregate_id, event: r.payload }))
    // TRACING: the rows' contexts continue in PRODUCER spans and the messages' headers.
    const spans = options.tracer && startProducerSpans(options.tracer, rows.map((r, i) => ({ topic: events[i]!.topic, key: r.aggregate_id, stored: r.trace_context })))
    if (spans) events.forEach((e, i) => (e.headers = spans.headers[i]))
    const claimedAt = Date.now()
    try {
      await publisher.publishBatch(events)
      spans?.end()
    } catch (err) {
      spans?.end(err as Error)
      // A timed-out send may still be stored (a broker that just restarted answers slowly):
      // sending again now would duplicate and reorder. Wait for its outcome while the lease holds.
      const stored = await lateOutcome(err, options.leaseMs - (Date.now() - claimedAt) - 1_000, stopped)
      if (stored !== true) {
        for (const e of events) metrics.failed.inc({ topic: e.topic })
        logger.warn({ err: (err as Error).message, events: rows.length }, 'outbox events not published, will retry')
        // Not stored as far as the producer knows: the next round (of any relay) takes them at once.
        // Unknown: they stay leased, and go out again (same ids) when the lease runs out.
        if (stored === false) await db.query(RELEASE, [ids]).catch(() => {})
        return 'failed'
      }
      logger.info({ events: rows.length }, 'timed-out outbox publish was stored after all')
    }
    try {
      await options.beforeMark?.(ids)
      await db.query(MARK_SENT, [ids])
    } catch (err) {
      // Published but not marked: they go out again once the lease ends (same ids).
      logger.warn({ err: (err as Error).message, events: rows.length }, 'outbox events published but not marked sent')
      return 'failed'
    }
    for (const e of events) metrics.sent.inc({ topic: e.topic })
    logger.debug({ events: rows.length }, 'outbox events published')
    return rows.length >= options.batchSize ? 'more' : 'idle'
  }

  async function cleanup(): Promise<void> {
    let deleted = 0
    for (;;) {
      const { rowCount } = await db.query(DELETE_SENT, [options.retentionMs])
      deleted += rowCount
      if (rowCount < 1000 || stopping) break
    }
    if (deleted > 0) logger.info({ deleted }, 'deleted sent outbox rows past retention')
  }

  async function run(): Promise<void> {
    let backoffMs = backoff.initialMs
    let nextCleanup = 0
    while (!stopping) {
      if (Date.now() >= nextCleanup) {
        nextCleanup = Date.now() + cleanupEveryMs
        await cleanup().catch((err: Error) => logger.warn({ err: err.message }, 'cannot delete sent outbox rows'))
      }
      woken = false
      const outcome = await round()
      if (outcome === 'failed') {
        // Kafka or the database is down: new writes must not make the relay hammer them.
        await pause(backoffMs, false)
        backoffMs = Math.min(backoffMs * 2, backoff.maxMs)
        continue
      }
      backoffMs = backoff.initialMs
      if (outcome === 'more' || woken) continue
      await pause(options.pollIntervalMs, true)
    }
  }

  return {
    start() {
      if (loop || stopping) return
      options.wakeups?.start(onWake)
      loop = run()
      logger.info({ batchSize: options.batchSize, pollIntervalMs: options.pollIntervalMs }, 'outbox relay started')
    },
    async stop() {
      stopping = true
      signalStop()
      wake?.()
      await loop
      await options.wakeups?.stop()
      logger.info('outbox relay stopped')
    },
  }
}
