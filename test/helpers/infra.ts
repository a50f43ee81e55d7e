// What the global setup started, for test files: `const db = await testDatabase()`.
import { inject } from 'vitest'
import { cloneDatabase, type TestDatabase } from './pg-admin.ts'

export const pgAdminUrl = () => inject('pgAdminUrl')
export const redisUrl = () => inject('redisUrl')

/** A fresh migrated and seeded database of this test file's own; drop() it in afterAll. */
export function testDatabase(): Promise<TestDatabase> {
  return cloneDatabase(inject('pgAdminUrl'), inject('pgTemplateDb'))
}
