import { createPgDatabaseFromConfig } from '../lib/db/pg-database.ts'
import { pgRelayDeps } from '../lib/outbox/pg-relay.ts'
import { runService } from '../lib/server.ts'
import { buildApp } from './app.ts'
import { loadConfig } from './config.ts'

await runService('monolith', () => loadConfig(), (config, logger) => {
  const db = createPgDatabaseFromConfig(config)
  // Unlike the Go program, a database that is down at start is not fatal: requests answer 503
  // until it is back, and /ready reports it.
  db.ping().catch((err) => logger.warn({ err: err.message }, 'database not reachable yet'))
  return { app: buildApp(config, { db, logger, outbox: pgRelayDeps(config, logger) }), close: () => db.close() }
})
