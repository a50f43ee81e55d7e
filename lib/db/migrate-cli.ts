// `npm run db:migrate`: applies pending migrations to DB_CONNECTION_STRING / DATABASE_URL:
// legacy-db's schema and seed, or catalog-db's with DB_MIGRATIONS=catalog.
import { parseEnv } from '../config.ts'
import { loadMigrationSet, migrate, migrateEnv } from './migrate.ts'
import { createPgDatabaseFromConfig } from './pg-database.ts'

let config
try {
  config = parseEnv(migrateEnv)
} catch (error) {
  console.error(`db:migrate: ${(error as Error).message}`)
  process.exit(1)
}
const db = createPgDatabaseFromConfig(config)
try {
  const applied = await migrate(db, await loadMigrationSet(config.migrations))
  console.log(applied.length ? `applied ${applied.join(', ')}` : 'database is up to date')
} catch (error) {
  console.error(`db:migrate failed: ${(error as Error).message}`)
  process.exitCode = 1
} finally {
  await db.close()
}
