// Shared pieces of the outbox tests: the monolith built in-process as server.ts builds it (LISTEN/NOTIFY wake-ups and the relay's own pool included) with a topic prefix of their own,
// and reading the outbox topics back with an independent consumer.
import type { FastifyInstance } from 'fastify'
import type { Database } from '../../lib/db/database.ts'
import { pgRelayDeps } from '../../lib/outbox/pg-relay.ts'
import type { OutboxDeps } from '../../lib/outbox/service.ts'
import { buildApp as buildMonolith } from '../../monolith/app.ts'
import { loadConfig as monolithConfig } from '../../monolith/config.ts'
import { captureLogs } from '../helpers/logs.ts'
import { kafkaClient, metric, readTopics, uniqueName, waitFor, type ReadMessage } from '../events-service/support.ts'

export { kafkaClient, metric, readTopics, uniqueName, waitFor, type ReadMessage }

export interface ServiceUnderTest {
  app: FastifyInstance
  lines: Array<Record<string, unknown>>
}

export interface ServiceSetup {
  db: Database
  dbUrl: string
  brokers: string[]
  prefix: string
  env?: Record<string, string>
  relay?: OutboxDeps['relay']
}

function envOf(setup: ServiceSetup): Record<string, string> {
  return {
    KAFKA_BROKERS: setup.brokers.join(','),
    KAFKA_TOPIC_PREFIX: setup.prefix,
    KAFKA_LOG_LEVEL: 'error',
    KAFKA_SEND_TIMEOUT_MS: '2000',
    ...setup.env,
  }
}

/** The monolith with its relay, ready (the relay runs in the background). */
export async function startMonolith(setup: ServiceSetup): Promise<ServiceUnderTest> {
  const { logger, lines } = captureLogs('info')
  const config = monolithConfig({ ...envOf(setup), DB_CONNECTION_STRING: setup.dbUrl })
  const app = buildMonolith(config, { db: setup.db, logger, outbox: { ...pgRelayDeps(config, logger), relay: setup.relay } })
  await app.ready()
  return { app, lines }
}

export const topicsOf = (prefix: string) => ({
  movie: `${prefix}movie-events`,
  user: `${prefix}user-events`,
  payment: `${prefix}payment-events`,
})

/** Outbox rows not yet sent. */
export async function pendingCount(db: Database): Promise<number> {
  const { rows } = await db.query<{ n: number }>('SELECT count(*)::int AS n FROM outbox WHERE sent_at IS NULL')
  return rows[0]!.n
}
