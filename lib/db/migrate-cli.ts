// `npm run db:migrate`: applies pending migrations (schema + seed) to DB_CONNECTION_STRING / DATABASE_URL.
import { databaseEnv, parseEnv } from '../config.ts'
import { migrate } from './migrate.ts'
import { createPgDatabaseFromConfig } from './pg-database.ts'

let config
try {
  config = parseEnv(databaseEnv)
} catch (error) {
  console.error(`db:migrate: ${(error as Error).message}`)
  process.exit(1)
}
const db = createPgDatabaseFromConfig(config)
try {
  const applied = await migrate(db)
  console.log(applied.length ? `applied ${applied.join(', ')}` : 'database is up to date')
} catch (error) {
  console.error(`db:migrate failed: ${(error as Error).message}`)
  process.exitCode = 1
} finally {
  await db.close()
}
