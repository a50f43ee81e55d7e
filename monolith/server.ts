import { runService } from '../lib/server.ts'
import { loadConfig } from './config.ts'

await runService('monolith', () => loadConfig(), async (config, logger, tracing) => {
  // Imported once tracing has started (lib/server.ts): the pg instrumentation sees pg load.
  const [{ createPgDatabaseFromConfig }, { pgRelayDeps }, { buildApp }] = await Promise.all([
    import('../lib/db/pg-database.ts'),
    import('../lib/outbox/pg-relay.ts'),
    import('./app.ts'),
  ])
  const db = createPgDatabaseFromConfig(config)
  // Unlike the Go program, a database that is down at start is not fatal: requests answer 503
  // until it is back, and /ready reports it.
  db.ping().catch((err) => logger.warn({ err: err.message }, 'database not reachable yet'))
  return { app: buildApp(config, { db, logger, outbox: pgRelayDeps(config, logger), tracing }), close: () => db.close() }
})
