// `npm start` with the infrastructure variables set: each embedded piece is replaced by the
// real one, and the banner says so.
import { randomUUID } from 'node:crypto'
import { Redis } from 'ioredis'
import { afterAll, beforeAll, expect, inject, it } from 'vitest'
import { redisUrl, testDatabase } from '../helpers/infra.ts'
import type { TestDatabase } from '../../dev/pg-admin.ts'
import { freePort } from '../helpers/processes.ts'
import { runStartCommand, type StartedSystem } from './start-command.ts'

let system: StartedSystem
let database: TestDatabase
let proxy: string
const cachePrefix = `npm-start-real:${randomUUID()}:`
const output = () => system.output()

beforeAll(async () => {
  database = await testDatabase()
  const ports = { PROXY_PORT: await freePort(), MONOLITH_PORT: await freePort(), MOVIES_PORT: await freePort(), EVENTS_PORT: await freePort() }
  system = await runStartCommand(
    {
      ...Object.fromEntries(Object.entries(ports).map(([k, v]) => [k, String(v)])),
      DB_CONNECTION_STRING: database.url,
      KAFKA_BROKERS: inject('kafkaBrokers'),
      REDIS_URL: redisUrl(),
      CACHE_KEY_PREFIX: cachePrefix,
      KAFKA_CONSUMER_GROUP: `npm-start-real-${randomUUID()}`,
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
})

it('says which pieces are real', () => {
  expect(output()).toMatch(/PostgreSQL\s+real: real PostgreSQL \(postgres:\/\/postgres:\*\*\*@/)
  expect(output()).toContain(`Kafka               real: real Kafka (${inject('kafkaBrokers')})`)
  expect(output()).toMatch(/Redis\s+real: real Redis/)
})

it('uses them: movies from the real database, cached in the real Redis; events in the real Kafka', async () => {
  // The cache belongs to the movies service, which the proxy reaches only at rollout > 0: ask it directly.
  const moviesPort = /movies-service\s+http:\/\/127\.0\.0\.1:(\d+)/.exec(output())![1]
  const res = await fetch(`http://127.0.0.1:${moviesPort}/api/movies?id=3`)
  expect((await res.json()).title).toBe('The Dark Knight')
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
