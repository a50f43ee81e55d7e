// The two implementations of the Database interface, for data-access tests that must hold on
// both: the real PostgreSQL (a throw-away database of the file's own) and embedded PGlite.
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
