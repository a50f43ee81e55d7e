// The two implementations of the Database interface, for data-access tests that must hold on
// both: the real PostgreSQL (a throw-away database of the file's own) and embedded PGlite.
import type { FastifyInstance } from 'fastify'
import { afterAll, beforeAll } from 'vitest'
import type { Database } from '../../lib/db/database.ts'
import { migrate } from '../../lib/db/migrate.ts'
import { createPgliteDatabase } from '../../lib/db/pglite-database.ts'
import { openDb } from './apps.ts'
import { testDatabase } from './infra.ts'

export interface OpenBackend {
  db: Database
  close(): Promise<void>
}

export const backends: Array<[name: string, open: () => Promise<OpenBackend>]> = [
  [
    'postgresql',
    async () => {
      const database = await testDatabase()
      const db = openDb(database.url)
      return { db, close: async () => (await db.close(), await database.drop()) }
    },
  ],
  [
    'pglite',
    async () => {
      const db = await createPgliteDatabase()
      await migrate(db)
      return { db, close: () => db.close() }
    },
  ],
]

/**
 * Opens `open`'s backend and builds an app on it in beforeAll, closes both in afterAll.
 * Read `.app` / `.db` inside tests and hooks.
 */
export function useBackendApp(
  open: () => Promise<OpenBackend>,
  build: (db: Database) => FastifyInstance,
): { readonly app: FastifyInstance; readonly db: Database } {
  let backend: OpenBackend | undefined
  let app: FastifyInstance | undefined
  beforeAll(async () => {
    backend = await open()
    app = build(backend.db)
    await app.ready()
  })
  afterAll(async () => {
    await app?.close()
    await backend?.close()
  })
  const ready = <T>(value: T | undefined): T => {
    if (value === undefined) throw new Error('useBackendApp: available inside tests and hooks only')
    return value
  }
  return {
    get app() {
      return ready(app)
    },
    get db() {
      return ready(backend).db
    },
  }
}
