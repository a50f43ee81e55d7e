// The outbox's Prometheus metrics, in the service's registry. Pending rows and the age of the
// oldest one are read from the table at scrape time, so they are right whether or not this
// process runs a relay (KAFKA_BROKERS unset: the outbox only fills, and the age alert fires).
import { Counter, Gauge, type Registry } from 'prom-client'
import type { Database } from '../db/database.ts'
import type { Logger } from '../logger.ts'

export type OutboxMetrics = ReturnType<typeof createOutboxMetrics>

const PENDING = `
  SELECT count(*)::int AS pending,
         COALESCE(EXTRACT(EPOCH FROM clock_timestamp() - min(created_at)), 0)::float8 AS oldest_seconds
    FROM outbox WHERE sent_at IS NULL`

export interface OutboxMetricsOptions {
  registry: Registry
  /** Where pending rows are counted at scrape time; without it the two gauges stay unset. */
  db?: Database
  logger?: Logger
}

export function createOutboxMetrics({ registry, db, logger }: OutboxMetricsOptions) {
  // One query per scrape, shared by both gauges (they are collected one after the other).
  let reading: Promise<{ pending: number; oldest_seconds: number } | undefined> | undefined
  const read = () => {
    if (!db) return Promise.resolve(undefined)
    reading ??= db
      .query<{ pending: number; oldest_seconds: number }>(PENDING)
      .then((r) => r.rows[0])
      .catch((err: Error) => {
        logger?.warn({ err: err.message }, 'cannot read the outbox for metrics')
        return undefined
      })
      .finally(() => setTimeout(() => (reading = undefined), 100).unref())
    return reading
  }
  // A scrape whose read failed reports NaN, not the last value read: a stale 0 would say "nothing
  // waiting" exactly while nobody can tell. outbox_pending_read_ok says which it is (alerted on).
  new Gauge({
    name: 'outbox_pending_read_ok',
    help: '1 when this scrape read the outbox table; 0 when it could not (the two outbox_*pending* gauges are NaN then). Alerted on',
    registers: [registry],
    async collect() {
      this.set((await read()) ? 1 : 0)
    },
  })
  return {
    registry,
    pending: new Gauge({
      name: 'outbox_pending_events',
      help: 'Events in the outbox not yet published to Kafka (all services sharing the database); NaN when the table could not be read',
      registers: [registry],
      async collect() {
        const row = await read()
        if (db) this.set(row ? row.pending : Number.NaN)
      },
    }),
    oldestAge: new Gauge({
      name: 'outbox_oldest_pending_age_seconds',
      help: 'Age of the oldest unpublished outbox event; 0 when none is pending, NaN when the table could not be read. Alerted on',
      registers: [registry],
      async collect() {
        const row = await read()
        if (db) this.set(row ? row.oldest_seconds : Number.NaN)
      },
    }),
    sent: new Counter({
      name: 'outbox_events_sent_total',
      help: 'Outbox events this process published (acknowledged by Kafka) and marked sent, by topic',
      labelNames: ['topic'] as const,
      registers: [registry],
    }),
    failed: new Counter({
      name: 'outbox_events_failed_total',
      help: 'Outbox events whose publish attempt failed (retried later), by topic',
      labelNames: ['topic'] as const,
      registers: [registry],
    }),
    producerConnected: new Gauge({
      name: 'outbox_producer_connected',
      help: '1 when the relay\'s Kafka producer is connected',
      registers: [registry],
    }),
    lateAcks: new Counter({
      name: 'outbox_late_acks_total',
      help: 'Outbox events whose publish timed out but which Kafka stored afterwards (they are sent again: same id)',
      labelNames: ['topic'] as const,
      registers: [registry],
    }),
  }
}
