// A small versioned migration runner: every file in ./migrations runs once, in name order,
// inside a transaction together with its row in schema_migrations. Running it again is a no-op.
import { readdir, readFile } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'
import { databaseEnv, env } from '../config.ts'
import type { Database } from './database.ts'

const MIGRATIONS_DIR = fileURLToPath(new URL('./migrations/', import.meta.url))
const CATALOG_MIGRATIONS_DIR = fileURLToPath(new URL('./catalog-migrations/', import.meta.url))
/** The legacy files catalog-db takes as they are: one outbox (with its trace context) and one replication schema for both stores. */
const SHARED_WITH_CATALOG = ['003_outbox', '004_movie_replication', '005_outbox_trace_context', '006_write_authority']
// Any constant: serialises concurrent migrators (several replicas starting at once).
const MIGRATION_LOCK_KEY = 7_316_2025

export interface Migration {
  version: string
  sql: string
}

export async function loadMigrations(dir = MIGRATIONS_DIR): Promise<Migration[]> {
  const files = (await readdir(dir)).filter((f) => f.endsWith('.sql')).sort()
  return Promise.all(files.map(async (f) => ({ version: f.replace(/\.sql$/, ''), sql: await readFile(dir + f, 'utf8') })))
}

/**
 * The two databases' schemas: `legacy` (legacy-db: the monolith's every table and seed) and
 * `catalog` (catalog-db: the movies service's movies, genres, outbox and replication
 * bookkeeping, no seed).
 */
export const MIGRATION_SETS = ['legacy', 'catalog'] as const
export type MigrationSet = (typeof MIGRATION_SETS)[number]

/** What `npm run db:migrate` (migrate-cli.ts) reads. */
export const migrateEnv = {
  ...databaseEnv,
  migrations: env.oneOf('DB_MIGRATIONS', MIGRATION_SETS, 'legacy', 'which schema: legacy (legacy-db, the monolith) or catalog (catalog-db, the movies service)'),
}

export async function loadMigrationSet(set: MigrationSet): Promise<Migration[]> {
  const legacy = await loadMigrations()
  if (set === 'legacy') return legacy
  const own = await loadMigrations(CATALOG_MIGRATIONS_DIR)
  return [...own, ...legacy.filter((m) => SHARED_WITH_CATALOG.includes(m.version))].sort((a, b) => a.version.localeCompare(b.version))
}

/** Applies the pending migrations; returns the versions it applied. */
export async function migrate(db: Database, migrations?: Migration[]): Promise<string[]> {
  const all = migrations ?? (await loadMigrations())
  await db.exec(`CREATE TABLE IF NOT EXISTS schema_migrations (
    version TEXT PRIMARY KEY,
    applied_at TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT CURRENT_TIMESTAMP
  )`)
  const applied: string[] = []
  for (const migration of all) {
    const done = await db.transaction(async (tx) => {
      await tx.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK_KEY])
      const seen = await tx.query('SELECT 1 FROM schema_migrations WHERE version = $1', [migration.version])
      if (seen.rowCount > 0) return false
      await tx.exec(migration.sql)
      await tx.query('INSERT INTO schema_migrations (version) VALUES ($1)', [migration.version])
      return true
    })
    if (done) applied.push(migration.version)
  }
  return applied
}
