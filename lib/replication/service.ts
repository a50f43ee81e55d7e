// Movie replication in a service process (the monolith on legacy-db, the movies service on
// catalog-db): at start, this store's never-published movies go to the movie-state topic
// (through the outbox); the replica consumer applies the other store's changes; GET
// /internal/parity answers this store's digest with its replication facts; the metrics go on the
// service's /metrics. Kafka off (KAFKA_BROKERS unset): no consumer, changes wait in the outbox.
import type { Tracer } from '@opentelemetry/api'
import type { FastifyInstance } from 'fastify'
import type { Registry } from 'prom-client'
import type { Database } from '../db/database.ts'
import type { Logger } from '../logger.ts'
import { publishUnpublishedMovies } from '../movies/movie-replica.ts'
import { MOVIE_PARITY } from '../movies/movie-parity.ts'
import { MOVIE_STATE_TOPIC, type StoreSide } from '../movies/movie-state.ts'
import type { OutboxKafka } from '../outbox/service.ts'
import { parityRoutes } from '../parity/parity-routes.ts'
import { sqlParitySource } from '../parity/sql-parity.ts'
import { createReplicaMetrics } from './metrics.ts'
import { createReplicaConsumer, type ReplicaConsumer } from './movie-state-consumer.ts'
import { writerRoutes } from './writer-routes.ts'
import { openConflicts } from './conflicts.ts'

/** What the outbox must create besides its event topics: the compacted movie-state topic. */
export const MOVIE_STATE_TOPICS = { names: [MOVIE_STATE_TOPIC], compacted: true }

export interface MovieReplicationDeps {
  db: Database
  logger: Logger
  registry: Registry
  /** The store this service owns. */
  self: StoreSide
  /** The outbox's Kafka client and topics; undefined = Kafka off. */
  kafka: OutboxKafka | undefined
  topicPrefix?: string
  /** After a change was applied here (cache invalidation). */
  onApplied?: (movieId: number) => Promise<void>
  /** Tracing on: the replica's CONSUMER spans continue the writer's trace. */
  tracer?: Tracer
}

const MOVIE_STATE_PENDING = `
  SELECT count(*)::int AS pending,
         COALESCE(EXTRACT(EPOCH FROM clock_timestamp() - min(created_at)), 0)::float8 AS oldest_seconds
    FROM outbox WHERE sent_at IS NULL AND topic = $1`

const VERSION_COUNTS = `
  SELECT count(*) FILTER (WHERE applied_at IS NULL)::int AS written_here,
         count(*) FILTER (WHERE applied_at IS NOT NULL)::int AS applied_here
    FROM movie_versions`

/** What the service's movie routes need of replication. */
export interface MovieReplication {
  /** Writes only as the movies' writer (another store holds movies too): the repository's writerOnly. */
  writerOnly: boolean
  /**
   * True until this process has seen its store caught up with the stream once (just started,
   * rebuilt, restored from a backup). A handover's catch-up later does not count: the reads
   * are as complete as before it, only the writes wait.
   */
  catchingUp(): boolean
}

export function registerMovieReplication(app: FastifyInstance, deps: MovieReplicationDeps): MovieReplication {
  const { db, self } = deps
  const logger = deps.logger.child({ component: 'movie-replication', store: self })
  const metrics = createReplicaMetrics(deps.registry)
  let consumer: ReplicaConsumer | undefined
  if (deps.kafka) {
    consumer = createReplicaConsumer({
      kafka: deps.kafka.kafka,
      topics: deps.kafka.topics,
      topic: (deps.topicPrefix ?? '') + MOVIE_STATE_TOPIC,
      db,
      self,
      logger: deps.logger,
      metrics,
      onApplied: deps.onApplied,
      tracer: deps.tracer,
    })
  }

  let stopped = false
  let backfill: Promise<void> | undefined
  /** One attempt at publishing this store's movies from before replication; true when done. */
  async function publishExisting(attempt: number): Promise<boolean> {
    try {
      const published = await publishUnpublishedMovies(db, self)
      if (published > 0) logger.info({ published }, 'published the movies this store held before replication (movie-state)')
      return true
    } catch (err) {
      logger.warn({ err: (err as Error).message, attempt }, 'cannot publish this store\'s existing movies yet, retrying')
      return false
    }
  }
  async function keepTrying(): Promise<void> {
    for (let attempt = 2; !stopped && !(await publishExisting(attempt)); attempt++) {
      await new Promise((resolve) => setTimeout(resolve, Math.min(500 * 2 ** attempt, 10_000)))
    }
  }

  app.addHook('onReady', async () => {
    // Only where replication runs (Kafka configured): the movies from before it are published
    // once, before the service takes requests when the database answers (so they precede
    // anything written after), else in the background until it does.
    if (!consumer) return
    if (!(await publishExisting(1))) backfill = keepTrying()
    consumer.start()
  })
  app.addHook('onClose', async () => {
    stopped = true
    await consumer?.stop()
    await backfill
  })

  app.register(parityRoutes, {
    // Computed by PostgreSQL in one snapshot: no table in this process's memory.
    source: sqlParitySource(db, MOVIE_PARITY),
    replication: async () => {
      const [pending, versions, conflicts] = await Promise.all([
        db.query<{ pending: number; oldest_seconds: number }>(MOVIE_STATE_PENDING, [MOVIE_STATE_TOPIC]),
        db.query<{ written_here: number; applied_here: number }>(VERSION_COUNTS),
        openConflicts(db, 0),
      ])
      const status = consumer?.status()
      const outboxSeconds = pending.rows[0].oldest_seconds
      const behindSeconds = status?.behindSeconds
      return {
        store: self,
        // This store's changes not yet on the topic (Kafka down, relay behind).
        unpublished_changes: pending.rows[0].pending,
        oldest_unpublished_seconds: outboxSeconds,
        // The topic's changes not yet applied here; null when Kafka cannot be asked.
        unapplied_messages: status?.behindMessages ?? null,
        behind_seconds: behindSeconds ?? null,
        // The larger of the two: how old the oldest change is that has not reached the other store or this one.
        lag_seconds: behindSeconds === undefined && consumer ? null : Math.max(outboxSeconds, behindSeconds ?? 0),
        consumer: consumer ? { running: status!.connected, group: status!.groupId ?? null, last_applied_at: status!.lastAppliedAt ?? null } : null,
        movies_written_here: versions.rows[0].written_here,
        movies_applied_here: versions.rows[0].applied_here,
        // Changes this store refused to merge (replication_conflicts): they refuse the writes switch and retirement.
        conflicts: conflicts.count,
        writer: status?.authority ? { writer: status.authority.writer, epoch: status.authority.epoch, catching_up: status.authority.catchingUp } : null,
      }
    },
  })
  app.register(writerRoutes, { db, self, replicating: consumer !== undefined, caughtUpSinceStart: () => consumer === undefined || consumer.status().caughtUpSinceStart })

  return {
    writerOnly: consumer !== undefined,
    catchingUp: () => consumer !== undefined && !consumer.status().caughtUpSinceStart,
  }
}
