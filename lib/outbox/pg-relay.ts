// What a service process on real PostgreSQL gives its outbox relay: LISTEN/NOTIFY wake-ups and
// a pool of two connections of its own (claims never queue behind the request pool).
import { createPgDatabase } from '../db/pg-database.ts'
import type { Logger } from '../logger.ts'
import { pgWakeups } from './pg-wakeups.ts'
import type { OutboxDeps } from './service.ts'

export function pgRelayDeps(
  config: { databaseUrl: string; dbConnectTimeoutMs: number; dbStatementTimeoutMs: number },
  logger: Logger,
): Pick<OutboxDeps, 'wakeups' | 'relayDb'> {
  return {
    wakeups: pgWakeups(config.databaseUrl, logger, { connectTimeoutMs: config.dbConnectTimeoutMs }),
    // Created lazily by pg: no connection is opened unless the relay runs.
    relayDb: createPgDatabase({
      connectionString: config.databaseUrl,
      max: 2,
      connectTimeoutMs: config.dbConnectTimeoutMs,
      statementTimeoutMs: config.dbStatementTimeoutMs,
    }),
  }
}
