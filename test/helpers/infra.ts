// What the global setup started, for test files: `const db = await testDatabase()`.
import { afterAll, beforeAll, inject } from 'vitest'
import type { Database } from '../../lib/db/database.ts'
import { openDb } from './apps.ts'
import { cloneDatabase, type TestDatabase } from '../../dev/pg-admin.ts'

export const pgAdminUrl = () => inject('pgAdminUrl')
export const redisUrl = () => inject('redisUrl')

/** A fresh migrated and seeded database of this test file's own; drop() it in afterAll. */
export function testDatabase(): Promise<TestDatabase> {
  return cloneDatabase(inject('pgAdminUrl'), inject('pgTemplateDb'))
}

/**
 * A database of this file's own with a pool on it, opened in beforeAll and dropped in afterAll.
 * Read `.db` inside tests and hooks (it is set once beforeAll ran).
 */
export function useTestDatabase(): { readonly db: Database; readonly database: TestDatabase } {
  let database: TestDatabase | undefined
  let db: Database | undefined
  beforeAll(async () => {
    database = await testDatabase()
    db = openDb(database.url)
  })
  afterAll(async () => {
    await db?.close()
    await database?.drop()
  })
  return {
    get db() {
      if (!db) throw new Error('useTestDatabase: .db is available inside tests and hooks only')
      return db
    },
    get database() {
      if (!database) throw new Error('useTestDatabase: .database is available inside tests and hooks only')
      return database
    },
  }
}
