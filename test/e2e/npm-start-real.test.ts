// `npm start` with the infrastructure variables set: each embedded piece is replaced by the
// real one, and the banner says so.
import { randomUUID } from 'node:crypto'
import { Redis } from 'ioredis'
import { afterAll, beforeAll, expect, inject, it } from 'vitest'
import { pgAdminUrl, redisUrl, testDatabase } from '../helpers/infra.ts'
import { createEmptyDatabase, type TestDatabase } from '../../dev/pg-admin.ts'
import { eventually } from '../helpers/poll.ts'
import { freePort } from '../helpers/processes.ts'
import { runStartCommand, type StartedSystem } from './start-command.ts'

let system: StartedSystem
let database: TestDatabase
let catalog: TestDatabase
let proxy: string
const cachePrefix = `npm-start-real:${randomUUID()}:`
const output = () => system.output()

beforeAll(async () => {
  database = await testDatabase()
  // catalog-db: an empty database npm start migrates and replication fills.
  catalog = await createEmptyDatabase(pgAdminUrl(), 'npm_start_catalog')
  const ports = { PROXY_PORT: await freePort(), MONOLITH_PORT: await freePort(), MOVIES_PORT: await freePort(), EVENTS_PORT: await freePort() }
  system = await runStartCommand(
    {
      ...Object.fromEntries(Object.entries(ports).map(([k, v]) => [k, String(v)])),
      DB_CONNECTION_STRING: database.url,
      CATALOG_DB_CONNECTION_STRING: catalog.url,
      KAFKA_BROKERS: inject('kafkaBrokers'),
      REDIS_URL: redisUrl(),
      CACHE_KEY_PREFIX: cachePrefix,
      KAFKA_CONSUMER_GROUP: `npm-start-real-${randomUUID()}`,
      // Topics of this run's own: the movie-state replay must see only this system's movies.
      KAFKA_TOPIC_PREFIX: `npm-start-real-${randomUUID().slice(0, 8)}.`,
    },
    90_000,
  )
  proxy = `http://127.0.0.1:${ports.PROXY_PORT}`
}, 120_000)

afterAll(async () => {
  await system?.interrupt()
  const redis = new Redis(redisUrl())
  const keys = await redis.keys(`${cachePrefix}*`)
  if (keys.length) await redis.del(...keys)
  redis.disconnect()
  await database?.drop()
  await catalog?.drop()
})

it('says which pieces are real', () => {
  expect(output()).toMatch(/PostgreSQL\s+real: real PostgreSQL \(postgres:\/\/postgres:\*\*\*@/)
  expect(output()).toMatch(new RegExp(`catalog-db\\s+real: real PostgreSQL \\(postgres://postgres:\\*\\*\\*@[^)]*/${catalog.name}\\)`))
  expect(output()).toContain(`Kafka               real: real Kafka (${inject('kafkaBrokers')})`)
  expect(output()).toMatch(/Redis\s+real: real Redis/)
})

it('uses them: movies from the real database, cached in the real Redis; events in the real Kafka', async () => {
  // The cache belongs to the movies service, which the proxy reaches only at rollout > 0: ask it directly.
  const moviesPort = /movies-service\s+http:\/\/127\.0\.0\.1:(\d+)/.exec(output())![1]
  // The movies service's own catalog-db was empty: the legacy's movies reach it through Kafka.
  let title: unknown
  await eventually('movie 3 replicated to catalog-db', async () => {
    const res = await fetch(`http://127.0.0.1:${moviesPort}/api/movies?id=3`)
    title = res.status === 200 ? (await res.json()).title : undefined
    return title !== undefined
  }, 30_000)
  expect(title).toBe('The Dark Knight')
  const redis = new Redis(redisUrl())
  expect(await redis.exists(`${cachePrefix}movies:id:3`)).toBe(1)
  redis.disconnect()

  const event = await fetch(`${proxy}/api/events/user`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ user_id: 5, action: 'registered', timestamp: '2026-11-22T10:00:00Z' }),
  })
  expect(event.status).toBe(201)
})
