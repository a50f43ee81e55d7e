// The rate limit's counter stores (proxy/edge/rate-limit-store.ts): Redis (against the real Redis) and in-process: fixed windows,
// batches counted exactly, bounded memory, and failing open when Redis is gone.
import { randomUUID } from 'node:crypto'
import { once } from 'node:events'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createRedis, type Redis } from '../../lib/redis.ts'
import { LocalRateLimitStore, RedisRateLimitStore, type RateLimitResult } from '../../proxy/edge/rate-limit-store.ts'
import { freePort } from '../helpers/processes.ts'
import { redisUrl } from '../helpers/infra.ts'
import { captureLogs } from '../helpers/logs.ts'
import { startTcpForwarder } from '../helpers/tcp-forwarder.ts'

const call = (fn: (cb: (res: RateLimitResult) => void) => void) => new Promise<RateLimitResult>((resolve) => fn(resolve))

describe('RedisRateLimitStore on the real Redis', () => {
  let redis: Redis
  let prefix: string
  const errors: Error[] = []
  let store: RedisRateLimitStore
  beforeAll(async () => {
    redis = createRedis(redisUrl(), captureLogs().logger, { commandTimeoutMs: 1_000 })
    await once(redis, 'ready') // no offline queue: commands before the connection fail (open)
    prefix = `test:rl-store:${randomUUID()}:`
    store = new RedisRateLimitStore({ redis, keyPrefix: prefix, onError: (e) => errors.push(e) })
  })
  afterAll(async () => {
    const keys = await redis.keys(`${prefix}*`)
    if (keys.length) await redis.del(...keys)
    redis.disconnect()
  })

  it('counts requests of one key in a window that expires', async () => {
    const first = await call((cb) => store.incr('10.0.0.1', cb, 60_000))
    const second = await call((cb) => store.incr('10.0.0.1', cb, 60_000))
    expect(first.current).toBe(1)
    expect(second.current).toBe(2)
    expect(second.ttl).toBeGreaterThan(0)
    expect(second.ttl).toBeLessThanOrEqual(60_000)
    const pttl = await redis.pttl(`${prefix}10.0.0.1`)
    expect(pttl).toBeGreaterThan(0)
    expect(pttl).toBeLessThanOrEqual(60_000)
    expect((await call((cb) => store.incr('10.0.0.2', cb, 60_000))).current).toBe(1)
  })

  it('counts requests arriving together exactly, each with its own count', async () => {
    const results = await Promise.all(Array.from({ length: 20 }, () => call((cb) => store.incr('burst', cb, 60_000))))
    expect(results.map((r) => r.current).sort((a, b) => a - b)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1))
    expect(await redis.get(`${prefix}burst`)).toBe('20')
    expect((await call((cb) => store.incr('burst', cb, 60_000))).current).toBe(21)
  })

  it('counts the requests that arrive while a batch is in flight by one more round trip, exactly', async () => {
    const url = new URL(redisUrl())
    const slowNetwork = await startTcpForwarder(url.hostname, Number(url.port || 6379))
    slowNetwork.delay(100)
    const slow = createRedis(`redis://127.0.0.1:${slowNetwork.port}`, captureLogs().logger, { commandTimeoutMs: 5_000 })
    await once(slow, 'ready')
    let roundTrips = 0
    // The real client, with its script calls counted.
    const counting = Object.assign(Object.create(slow) as Redis, {
      evalsha: (...args: Parameters<Redis['evalsha']>) => (roundTrips++, slow.evalsha(...args)),
      eval: (...args: Parameters<Redis['eval']>) => (roundTrips++, slow.eval(...args)),
    })
    const store = new RedisRateLimitStore({ redis: counting, keyPrefix: prefix, onError: (e) => errors.push(e) })
    try {
      await call((cb) => store.incr('script-loaded', cb, 60_000)) // Redis knows the script now: one call per round trip
      roundTrips = 0
      const first = call((cb) => store.incr('in-flight', cb, 60_000))
      await new Promise((r) => setTimeout(r, 20)) // its batch is on the way (200 ms there and back)
      const later: Array<Promise<RateLimitResult>> = []
      for (let turn = 0; turn < 10; turn++) {
        later.push(call((cb) => store.incr('in-flight', cb, 60_000)))
        await new Promise((r) => setImmediate(r))
      }
      const results = await Promise.all([first, ...later])
      expect(results.map((r) => r.current)).toEqual(Array.from({ length: 11 }, (_, i) => i + 1))
      expect(roundTrips).toBe(2)
      expect(await redis.get(`${prefix}in-flight`)).toBe('11')
      expect(errors).toEqual([])
    } finally {
      slow.disconnect()
      await slowNetwork.close()
    }
  })

  it('starts a new window once the old one expired', async () => {
    expect((await call((cb) => store.incr('short', cb, 50))).current).toBe(1)
    await new Promise((r) => setTimeout(r, 120))
    expect((await call((cb) => store.incr('short', cb, 50))).current).toBe(1)
  })

  it('sends its script again when Redis has forgotten it (restart, SCRIPT FLUSH)', async () => {
    await call((cb) => store.incr('flushed', cb, 60_000))
    await redis.script('FLUSH')
    expect((await call((cb) => store.incr('flushed', cb, 60_000))).current).toBe(2)
    expect(errors).toEqual([])
  })

  it('lets the request pass and reports the error when Redis is unreachable', async () => {
    const dead = createRedis(`redis://127.0.0.1:${await freePort()}`, captureLogs().logger, { commandTimeoutMs: 200 })
    const failures: Error[] = []
    const failing = new RedisRateLimitStore({ redis: dead, keyPrefix: prefix, onError: (e) => failures.push(e) })
    try {
      expect(await call((cb) => failing.incr('x', cb, 1_000))).toEqual({ current: 0, ttl: 1_000 })
      expect(await call((cb) => failing.incr('x', cb, 1_000))).toEqual({ current: 0, ttl: 1_000 })
      expect(failures).toHaveLength(2)
    } finally {
      dead.disconnect()
    }
  })

  it('lets every request of a burst pass when Redis is unreachable, reporting the failed round trip once', async () => {
    const dead = createRedis(`redis://127.0.0.1:${await freePort()}`, captureLogs().logger, { commandTimeoutMs: 200 })
    const failures: Error[] = []
    const failing = new RedisRateLimitStore({ redis: dead, keyPrefix: prefix, onError: (e) => failures.push(e) })
    try {
      const results = await Promise.all(Array.from({ length: 5 }, () => call((cb) => failing.incr('x', cb, 1_000))))
      expect(results).toEqual(Array.from({ length: 5 }, () => ({ current: 0, ttl: 1_000 })))
      expect(failures).toHaveLength(1)
    } finally {
      dead.disconnect()
    }
  })
})

describe('LocalRateLimitStore (no REDIS_URL)', () => {
  it('counts requests of one key in a window, then starts a new one', async () => {
    const store = new LocalRateLimitStore()
    expect((await call((cb) => store.incr('a', cb, 80))).current).toBe(1)
    const second = await call((cb) => store.incr('a', cb, 80))
    expect(second.current).toBe(2)
    expect(second.ttl).toBeGreaterThan(0)
    expect(second.ttl).toBeLessThanOrEqual(80)
    expect((await call((cb) => store.incr('b', cb, 80))).current).toBe(1)
    await new Promise((r) => setTimeout(r, 120))
    expect((await call((cb) => store.incr('a', cb, 80))).current).toBe(1)
  })

  it('holds at most maxKeys clients: ended windows go first, then the oldest', async () => {
    const store = new LocalRateLimitStore(10)
    for (let i = 0; i < 10; i++) await call((cb) => store.incr(`short-${i}`, cb, 20))
    await new Promise((r) => setTimeout(r, 40))
    await call((cb) => store.incr('kept', cb, 60_000))
    for (let i = 0; i < 30; i++) await call((cb) => store.incr(`long-${i}`, cb, 60_000))
    // 'kept' was among the oldest and is gone (a fresh window), the newest are still counted.
    expect((await call((cb) => store.incr('long-29', cb, 60_000))).current).toBe(2)
    expect((await call((cb) => store.incr('kept', cb, 60_000))).current).toBe(1)
  })
})
