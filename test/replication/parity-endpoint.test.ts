// GET /internal/parity on the movies service (catalog-db) and the monolith (legacy-db), in
// process on the test database: the summary, one bucket, documents by id, and bad queries
// answered 400 with a reason (never a 500).
import { expect, it } from 'vitest'
import { bucketOf, digest, recordHash } from '../../lib/parity/digest.ts'
import { monolithApp, moviesServiceApp } from '../helpers/apps.ts'
import { useTestDatabase } from '../helpers/infra.ts'

const test = useTestDatabase()

it('both services answer the same digest over the same store, and it is the canonical JSON the API answers', async () => {
  const monolith = monolithApp(test.db)
  const movies = moviesServiceApp(test.db)
  try {
    const list = (await movies.inject({ method: 'GET', url: '/api/movies' })).json() as Array<{ id: number }>
    const [a, b] = await Promise.all([monolith.inject({ method: 'GET', url: '/internal/parity?buckets=8' }), movies.inject({ method: 'GET', url: '/internal/parity?buckets=8' })])
    expect([a.statusCode, b.statusCode]).toEqual([200, 200])
    const expected = digest(list.map((m) => ({ id: String(m.id), document: m })), 8)
    expect(a.json()).toMatchObject(expected)
    expect(b.json()).toMatchObject(expected)
    expect(a.json().replication).toMatchObject({ store: 'legacy', unpublished_changes: expect.any(Number) })
    expect(b.json().replication).toMatchObject({ store: 'catalog' })

    const first = list[0]
    const bucket = bucketOf(String(first.id), 8)
    const items = (await movies.inject({ method: 'GET', url: `/internal/parity?buckets=8&bucket=${bucket}` })).json().items
    expect(items[String(first.id)]).toBe(recordHash(first))
    const docs = (await movies.inject({ method: 'GET', url: `/internal/parity?ids=${first.id},999999` })).json()
    expect(docs).toEqual({ documents: { [String(first.id)]: first } })
  } finally {
    await monolith.close()
    await movies.close()
  }
})

it('refuses bad queries with a reason', async () => {
  const movies = moviesServiceApp(test.db)
  try {
    for (const url of ['/internal/parity?buckets=0', '/internal/parity?buckets=5000', '/internal/parity?buckets=4&bucket=4', '/internal/parity?bucket=x', '/internal/parity?ids=a;b', '/internal/parity?nope=1']) {
      const res = await movies.inject({ method: 'GET', url })
      expect(res.statusCode, url).toBe(400)
      expect(res.json().error, url).toEqual(expect.any(String))
    }
  } finally {
    await movies.close()
  }
})
