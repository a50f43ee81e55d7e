// The rate limit's counter stores (proxy/edge/rate-limit-store.ts): Redis (a real redis-server of
// this file's own, so its INFO commandstats count only these tests' round trips) and in-process:
// every request answered at once with its own count, fixed windows, syncs with Redis at most once
// per interval, two replicas seeing each other's counts, Redis failing mid-run, bounded memory.
import { once } from 'node:events'
import { setTimeout as sleep } from 'node:timers/promises'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createRedis, type Redis } from '../../lib/redis.ts'
import { LocalRateLimitStore, RedisRateLimitStore, type RateLimitResult, type RateLimitStore } from '../../proxy/edge/rate-limit-store.ts'
import { freePort } from '../helpers/processes.ts'
import { captureLogs } from '../helpers/logs.ts'
import { eventually } from '../helpers/poll.ts'
import { startPrivateRedis, type PrivateServer } from '../helpers/private-servers.ts'
import { startTcpForwarder } from '../helpers/tcp-forwarder.ts'

/** Counts one request; the store must call back before incr returns (no request waits for Redis). */
function incr(store: RateLimitStore, key: string, timeWindow = 60_000): RateLimitResult {
  let result: RateLimitResult | undefined
  store.incr(key, (r) => (result = r), timeWindow)
  if (!result) throw new Error('the store did not call back at once')
  return result
}
const counts = (store: RateLimitStore, key: string, n: number, timeWindow = 60_000) => Array.from({ length: n }, () => incr(store, key, timeWindow).current)
const upTo = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i)

describe('RedisRateLimitStore on a real Redis', () => {
  let server: PrivateServer
  let redis: Redis
  const errors: Error[] = []
  const clients: Redis[] = []
  const connect = async (url: string, commandTimeoutMs = 1_000) => {
    const client = createRedis(url, captureLogs().logger, { commandTimeoutMs })
    clients.push(client)
    await once(client, 'ready') // no offline queue: commands before the connection fail
    return client
  }
  const storeOn = (client: Redis, more: { syncIntervalMs?: number; maxKeys?: number } = {}, onError = (e: Error) => void errors.push(e)) =>
    new RedisRateLimitStore({ redis: client, keyPrefix: 'rl:', onError, ...more })
  /** Script calls Redis has run since the last CONFIG RESETSTAT: the stores' round trips. */
  const scriptCalls = async () => {
    const stats = await redis.info('commandstats')
    return ['evalsha', 'eval'].reduce((sum, cmd) => sum + Number(new RegExp(`^cmdstat_${cmd}:calls=(\\d+)`, 'm').exec(stats)?.[1] ?? 0), 0)
  }
  /** Redis knows the script (no NOSCRIPT retry) and counts script calls from zero. */
  const resetStats = async (store: RedisRateLimitStore) => {
    incr(store, 'warm-up')
    await store.flush()
    await redis.config('RESETSTAT')
  }

  beforeAll(async () => {
    server = await startPrivateRedis()
    redis = await connect(server.url)
  })
  afterAll(async () => {
    for (const client of clients) client.disconnect()
    await server?.stop()
  })

  it('answers at once with each request its own count, and syncs them to a window that expires in Redis', async () => {
    const store = storeOn(redis)
    const first = incr(store, '10.0.0.1')
    const second = incr(store, '10.0.0.1')
    expect([first.current, second.current]).toEqual([1, 2])
    expect(second.ttl).toBeGreaterThan(0)
    expect(second.ttl).toBeLessThanOrEqual(60_000)
    expect(incr(store, '10.0.0.2').current).toBe(1)
    await store.flush()
    expect(await redis.get('rl:10.0.0.1')).toBe('2')
    const pttl = await redis.pttl('rl:10.0.0.1')
    expect(pttl).toBeGreaterThan(0)
    expect(pttl).toBeLessThanOrEqual(60_000)
    expect(errors).toEqual([])
  })

  it('one replica: a burst past the limit in one tick gets exactly max passes, each request its own count', async () => {
    const store = storeOn(redis)
    const max = 10
    const burst = counts(store, 'burst', 25)
    expect(burst).toEqual(upTo(1, 25))
    expect([burst.filter((c) => c <= max).length, burst.filter((c) => c > max).length]).toEqual([10, 15])
    await store.flush()
    expect(await redis.get('rl:burst')).toBe('25')
    expect(incr(store, 'burst').current).toBe(26)
    await store.flush() // nothing left to sync into the next test's round trips
  })

  it('counts the requests that arrive while a sync is in flight at once, and sends them with one more sync', async () => {
    const url = new URL(server.url)
    const slowNetwork = await startTcpForwarder(url.hostname, Number(url.port))
    try {
      const store = storeOn(await connect(`redis://127.0.0.1:${slowNetwork.port}`, 5_000))
      await resetStats(store)
      slowNetwork.delay(100)
      expect(incr(store, 'in-flight').current).toBe(1)
      const firstSync = store.flush()
      await sleep(20) // its sync is on the way (200 ms there and back)
      const later = []
      for (let turn = 0; turn < 10; turn++) {
        later.push(incr(store, 'in-flight').current)
        await new Promise((r) => setImmediate(r))
      }
      expect(later).toEqual(upTo(2, 11))
      await firstSync
      await store.flush()
      expect(await scriptCalls()).toBe(2)
      expect(await redis.get('rl:in-flight')).toBe('11')
      expect(errors).toEqual([])
    } finally {
      await slowNetwork.close()
    }
  })

  it('syncs one client\'s tight loop of 1000 requests at most once per interval', async () => {
    const syncIntervalMs = 25
    const store = storeOn(redis, { syncIntervalMs })
    await resetStats(store)
    const started = Date.now()
    const seen: number[] = []
    for (let turn = 0; turn < 200; turn++) {
      seen.push(...counts(store, 'tight-loop', 5))
      await sleep(1)
    }
    const elapsed = Date.now() - started
    await store.flush() // what the last interval counted
    expect(seen).toEqual(upTo(1, 1000))
    expect(await redis.get('rl:tight-loop')).toBe('1000')
    const calls = await scriptCalls()
    // A tick at once, then at most one per interval while the loop ran, and the flush.
    expect(calls).toBeGreaterThanOrEqual(2)
    expect(calls, `${calls} round trips in ${elapsed} ms`).toBeLessThanOrEqual(Math.floor(elapsed / syncIntervalMs) + 2)
  })

  it('two replicas: each sees the other\'s counts once it has synced after them', async () => {
    const a = storeOn(redis)
    const b = storeOn(redis)
    expect(counts(a, 'two', 3)).toEqual([1, 2, 3])
    await a.flush()
    expect(counts(b, 'two', 2)).toEqual([1, 2]) // b has not synced yet: it counts alone
    await b.flush() // Redis answers 5: a's and b's
    expect(incr(b, 'two').current).toBe(6)
    await b.flush()
    expect(incr(a, 'two').current).toBe(4) // a's last sync was before b's requests
    await a.flush() // Redis answers 7
    expect(incr(a, 'two').current).toBe(8)
    await a.flush()
    expect(await redis.get('rl:two')).toBe('8')
  })

  it('two replicas, requests alternating and each synced before the next: a decision misses only what the other admitted since its own last sync', async () => {
    const replicas = [storeOn(redis), storeOn(redis)]
    const max = 5
    const seen = []
    for (let i = 0; i < 8; i++) {
      const replica = replicas[i % 2]!
      seen.push(incr(replica, 'alternating').current)
      await replica.flush()
    }
    // Requests 1..8 in Redis; from the second on, each replica's estimate lacks the other's one request.
    expect(seen).toEqual([1, 1, 2, 3, 4, 5, 6, 7])
    expect(seen.filter((c) => c <= max).length).toBe(max + 1)
    expect(await redis.get('rl:alternating')).toBe('8')
  })

  it('starts a new window once the old one ended', async () => {
    const store = storeOn(redis)
    expect(incr(store, 'short', 50).current).toBe(1)
    await sleep(120)
    expect(incr(store, 'short', 50).current).toBe(1)
  })

  it('sends its script again when Redis has forgotten it (restart, SCRIPT FLUSH)', async () => {
    const store = storeOn(redis)
    incr(store, 'flushed')
    await store.flush()
    await redis.script('FLUSH')
    expect(incr(store, 'flushed').current).toBe(2)
    await store.flush()
    expect(await redis.get('rl:flushed')).toBe('2')
    expect(errors).toEqual([])
  })

  it('Redis gone mid-run: counts on alone, reports each failed sync, loses nothing while the window lasts', async () => {
    const url = new URL(server.url)
    const forwarder = await startTcpForwarder(url.hostname, Number(url.port))
    try {
      const client = await connect(`redis://127.0.0.1:${forwarder.port}`, 500)
      const failures: Error[] = []
      const store = storeOn(client, {}, (e) => void failures.push(e))
      expect(counts(store, 'outage', 3)).toEqual([1, 2, 3])
      await store.flush()
      await forwarder.cut()
      // Under a limit of 6: 4..6 pass on the last known count plus this replica's own, the 7th would not.
      expect(counts(store, 'outage', 4)).toEqual([4, 5, 6, 7])
      await store.flush()
      expect(failures).toHaveLength(1) // one failed sync for the four
      await sleep(150) // a failed sync is retried with the client's next request, not by a timer
      expect(failures).toHaveLength(1)
      expect(counts(store, 'outage', 2)).toEqual([8, 9])
      await store.flush()
      expect(failures).toHaveLength(2)
      expect(await redis.get('rl:outage')).toBe('3')
      await forwarder.restore()
      await eventually('the client reconnected', () => client.status === 'ready', 10_000)
      expect(incr(store, 'outage').current).toBe(10)
      await store.flush()
      expect(await redis.get('rl:outage')).toBe('10') // every request counted, once
      expect(failures).toHaveLength(2)
    } finally {
      await forwarder.close()
    }
  })

  it('Redis gone: the requests it never heard of are dropped when their window ends', async () => {
    const url = new URL(server.url)
    const forwarder = await startTcpForwarder(url.hostname, Number(url.port))
    try {
      const client = await connect(`redis://127.0.0.1:${forwarder.port}`, 500)
      const failures: Error[] = []
      const store = storeOn(client, {}, (e) => void failures.push(e))
      incr(store, 'ending', 300)
      await store.flush()
      await forwarder.cut()
      expect(counts(store, 'ending', 5, 300)).toEqual(upTo(2, 6))
      await store.flush()
      expect(failures).toHaveLength(1)
      await sleep(400) // the window ended, in Redis too
      await forwarder.restore()
      await eventually('the client reconnected', () => client.status === 'ready', 10_000)
      expect(incr(store, 'ending', 300).current).toBe(1)
      await store.flush()
      expect(await redis.get('rl:ending')).toBe('1') // the old window's five did not leak into this one
      expect(failures).toHaveLength(1)
    } finally {
      await forwarder.close()
    }
  })

  it('never reaching Redis: counts alone from the start and reports each failed sync once', async () => {
    const dead = createRedis(`redis://127.0.0.1:${await freePort()}`, captureLogs().logger, { commandTimeoutMs: 200 })
    clients.push(dead)
    const failures: Error[] = []
    const store = storeOn(dead, {}, (e) => void failures.push(e))
    const first = incr(store, 'x', 1_000)
    expect(first.ttl).toBeGreaterThan(900)
    expect(first.ttl).toBeLessThanOrEqual(1_000)
    expect([first.current, ...counts(store, 'x', 4, 1_000)]).toEqual([1, 2, 3, 4, 5])
    await store.flush()
    expect(failures).toHaveLength(1)
    expect(incr(store, 'x', 1_000).current).toBe(6)
    await store.flush()
    expect(failures).toHaveLength(2)
  })

  it('close() sends what was counted since the last sync', async () => {
    const store = storeOn(redis)
    counts(store, 'closing', 3)
    await store.close()
    expect(await redis.get('rl:closing')).toBe('3')
  })

  it('checks its options', () => {
    expect(() => storeOn(redis, { syncIntervalMs: 0 })).toThrow(/rate-limit store: invalid options: \/syncIntervalMs/)
    expect(() => storeOn(redis, { syncIntervalMs: 1.5 })).toThrow(/syncIntervalMs/)
    expect(() => storeOn(redis, { maxKeys: 0 })).toThrow(/maxKeys/)
  })

  it('holds at most maxKeys clients: ended windows go first, then the oldest', async () => {
    await expectBoundedMemory(storeOn(redis, { maxKeys: 10 }))
  })
})

describe('LocalRateLimitStore (no REDIS_URL)', () => {
  it('counts requests of one key in a window, then starts a new one', async () => {
    const store = new LocalRateLimitStore()
    expect(incr(store, 'a', 80).current).toBe(1)
    const second = incr(store, 'a', 80)
    expect(second.current).toBe(2)
    expect(second.ttl).toBeGreaterThan(0)
    expect(second.ttl).toBeLessThanOrEqual(80)
    expect(incr(store, 'b', 80).current).toBe(1)
    await sleep(120)
    expect(incr(store, 'a', 80).current).toBe(1)
  })

  it('holds at most maxKeys clients: ended windows go first, then the oldest', async () => {
    await expectBoundedMemory(new LocalRateLimitStore(10))
  })
})

/** A store of 10 clients at most (proxy/edge/rate-limit-windows.ts, the rule both stores share). */
async function expectBoundedMemory(store: RateLimitStore) {
  for (let i = 0; i < 10; i++) incr(store, `short-${i}`, 20)
  await sleep(40)
  incr(store, 'kept')
  for (let i = 0; i < 30; i++) incr(store, `long-${i}`)
  // 'kept' was among the oldest and is gone (a fresh window), the newest are still counted.
  expect(incr(store, 'long-29').current).toBe(2)
  expect(incr(store, 'kept').current).toBe(1)
}
