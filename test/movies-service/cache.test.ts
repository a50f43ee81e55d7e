// The movies service's Redis read cache, against the real Redis: reads after a create see
// the new movie, and with Redis unreachable or stopped every read still succeeds.
import { randomUUID } from 'node:crypto'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createRedis, type Redis } from '../../lib/redis.ts'
import { moviesServiceApp } from '../helpers/apps.ts'
import { countingDb } from '../helpers/counting-db.ts'
import { redisUrl, useTestDatabase } from '../helpers/infra.ts'
import { captureLogs } from '../helpers/logs.ts'
import { freePort } from '../helpers/processes.ts'
import { startTcpForwarder } from '../helpers/tcp-forwarder.ts'

const testDb = useTestDatabase()

const waitReady = (redis: Redis) => (redis.status === 'ready' ? Promise.resolve() : new Promise((r) => redis.once('ready', r)))

describe('with Redis up', () => {
  let redis: Redis
  const prefix = `test:${randomUUID()}:`

  beforeAll(async () => {
    redis = createRedis(redisUrl(), captureLogs().logger, { keyPrefix: prefix })
    await waitReady(redis)
  })
  afterAll(async () => {
    const keys = await redis.keys(`${prefix}*`)
    if (keys.length) await redis.del(...keys.map((k) => k.slice(prefix.length)))
    redis.disconnect()
  })

  it('serves repeated reads from the cache and sees a created movie at once', async () => {
    const counted = countingDb(testDb.db)
    const app = moviesServiceApp(counted, { redis })
    const first = await app.inject('/api/movies')
    expect(first.json()).toHaveLength(5)
    const second = await app.inject('/api/movies')
    expect(second.json()).toEqual(first.json())
    expect(counted.statements).toHaveLength(1)
    expect(await redis.exists('movies:list')).toBe(1)

    const created = await app.inject({ method: 'POST', url: '/api/movies', payload: { title: 'Cached?', description: 'no', rating: 7 } })
    expect(created.statusCode).toBe(201)
    const after = await app.inject('/api/movies')
    expect(after.json().map((m: { title: string }) => m.title)).toContain('Cached?')

    const one = await app.inject(`/api/movies?id=${created.json().id}`)
    expect(one.json()).toEqual(created.json())
    const statementsAfterOne = counted.statements.length
    expect((await app.inject(`/api/movies?id=${created.json().id}`)).json()).toEqual(created.json())
    expect(counted.statements.length).toBe(statementsAfterOne)
    await app.close()
  })

  it('does not cache a missing movie', async () => {
    const app = moviesServiceApp(testDb.db, { redis })
    expect((await app.inject('/api/movies?id=424242')).statusCode).toBe(404)
    expect(await redis.exists('movies:id:424242')).toBe(0)
    await app.close()
  })
})

describe('with Redis unreachable', () => {
  it('answers from PostgreSQL when Redis is a closed port, and logs a warning', async () => {
    const port = await freePort()
    const logs = captureLogs('warn')
    const redis = createRedis(`redis://127.0.0.1:${port}`, logs.logger)
    const app = moviesServiceApp(testDb.db, { redis, logger: logs.logger })
    for (let i = 0; i < 3; i++) {
      const res = await app.inject('/api/movies')
      expect(res.statusCode).toBe(200)
      expect(res.json().length).toBeGreaterThanOrEqual(5)
    }
    const created = await app.inject({ method: 'POST', url: '/api/movies', payload: { title: 'No cache', description: '', rating: 1 } })
    expect(created.statusCode).toBe(201)
    expect((await app.inject(`/api/movies?id=${created.json().id}`)).json().title).toBe('No cache')
    expect(logs.lines.some((l) => l.level === 40 && /cache|redis/.test(String(l.msg)))).toBe(true)
    await app.close()
    redis.disconnect()
  })

  it('answers from PostgreSQL when Redis hangs (commands time out), and logs a warning', async () => {
    const target = new URL(redisUrl())
    const forwarder = await startTcpForwarder(target.hostname, Number(target.port || 6379))
    const logs = captureLogs('warn')
    const redis = createRedis(`redis://127.0.0.1:${forwarder.port}`, logs.logger, { keyPrefix: `test:${randomUUID()}:`, commandTimeoutMs: 100 })
    await waitReady(redis)
    const app = moviesServiceApp(testDb.db, { redis, logger: logs.logger })
    forwarder.stall()
    for (const path of ['/api/movies', '/api/movies?id=4']) {
      const res = await app.inject(path)
      expect(res.statusCode, path).toBe(200)
    }
    expect((await app.inject('/api/movies?id=4')).json().title).toBe('Pulp Fiction')
    expect(logs.lines.some((l) => l.msg === 'movie cache read failed, reading from the database' && /timed out/i.test(String(l.err)))).toBe(true)
    await app.close()
    redis.disconnect()
    await forwarder.close()
  })

  it('keeps answering when a working Redis goes away mid-flight, and uses it again when it is back', async () => {
    const target = new URL(redisUrl())
    const forwarder = await startTcpForwarder(target.hostname, Number(target.port || 6379))
    const prefix = `test:${randomUUID()}:`
    const redis = createRedis(`redis://127.0.0.1:${forwarder.port}`, captureLogs().logger, { keyPrefix: prefix })
    await waitReady(redis)
    const app = moviesServiceApp(testDb.db, { redis })
    expect((await app.inject('/api/movies')).statusCode).toBe(200)

    await forwarder.cut()
    for (let i = 0; i < 3; i++) expect((await app.inject('/api/movies?id=1')).json().title).toBe('The Shawshank Redemption')

    await forwarder.restore()
    await waitReady(redis)
    expect((await app.inject('/api/movies?id=2')).statusCode).toBe(200)
    await expect.poll(() => redis.exists('movies:id:2')).toBe(1)
    await redis.del('movies:list', 'movies:id:1', 'movies:id:2')
    await app.close()
    redis.disconnect()
    await forwarder.close()
  })
})
