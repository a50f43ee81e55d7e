import { expect, it } from 'vitest'
import { loadMigrations, migrate } from '../../lib/db/migrate.ts'
import { useTestDatabase } from '../helpers/infra.ts'

const testDb = useTestDatabase()

const snapshot = async () => {
  const counts: Record<string, number> = {}
  for (const table of ['users', 'movies', 'movie_genres', 'payments', 'subscriptions', 'outbox', 'schema_migrations']) {
    counts[table] = Number((await testDb.db.query<{ n: string }>(`SELECT count(*) AS n FROM ${table}`)).rows[0].n)
  }
  return counts
}

it('the test database is migrated and seeded like init.sql (the seed publishes no events)', async () => {
  expect(await snapshot()).toEqual({ users: 3, movies: 5, movie_genres: 10, payments: 3, subscriptions: 3, outbox: 0, schema_migrations: 7 })
})

it('running migrate again applies nothing and changes nothing', async () => {
  const before = await snapshot()
  expect(await migrate(testDb.db)).toEqual([])
  expect(await migrate(testDb.db)).toEqual([])
  expect(await snapshot()).toEqual(before)
})

it('the seed itself is idempotent, even run outside the version table', async () => {
  const seed = (await loadMigrations()).find((m) => m.version === '002_seed')!
  const before = await snapshot()
  await testDb.db.exec(seed.sql)
  expect(await snapshot()).toEqual(before)
})

it('concurrent migrators do not apply a migration twice', async () => {
  await testDb.db.exec('DELETE FROM schema_migrations WHERE version = $$002_seed$$')
  const results = await Promise.all([migrate(testDb.db), migrate(testDb.db), migrate(testDb.db)])
  expect(results.flat()).toEqual(['002_seed'])
  expect((await snapshot()).movies).toBe(5)
})
