// Several proxy replicas on the suite's real Redis: the lease (expiry, fencing: a holder with a
// stale token cannot write), exactly one proxy driving a ramp, a takeover when it stops, and
// the ramp state kept in Redis across a restart.
import { randomUUID } from 'node:crypto'
import { once } from 'node:events'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { createRedis, type Redis } from '../../lib/redis.ts'
import { redisCoordination } from '../../proxy/rollout/ramp/coordination.ts'
import { planOf, startRamp } from '../../proxy/rollout/ramp/state.ts'
import { redisUrl } from '../helpers/infra.ts'
import { captureLogs } from '../helpers/logs.ts'
import { metric } from '../helpers/metrics.ts'
import { eventually } from '../helpers/poll.ts'
import { admin, flagsFileAt, startProxy, startStubs, type ProxyUnderTest, type Stubs } from './proxy-harness.ts'

let redis: Redis
let stubs: Stubs
const prefixes: string[] = []
const newPrefix = () => {
  const prefix = `test:ramp:${randomUUID()}:`
  prefixes.push(prefix)
  return prefix
}
beforeAll(async () => {
  redis = createRedis(redisUrl(), captureLogs().logger, { commandTimeoutMs: 2_000 })
  await once(redis, 'ready')
  stubs = await startStubs()
})
afterAll(async () => {
  for (const prefix of prefixes) {
    const keys = await redis.keys(`${prefix}*`)
    if (keys.length) await redis.del(...keys)
  }
  redis?.disconnect()
  await stubs?.close()
})

describe('the ramp lease in Redis', () => {
  const ramp = (route: string, version: number) =>
    startRamp({ id: randomUUID(), route, plan: planOf({ steps: [10, 100] }), actor: 'test', version, now: Date.now() }).ramp

  it('one holder at a time; expiry hands it over with a higher fencing token; a stale holder cannot write', async () => {
    const keyPrefix = newPrefix()
    const a = redisCoordination({ redis, keyPrefix, leaseTtlMs: 300, owner: 'a' })
    const b = redisCoordination({ redis, keyPrefix, leaseTtlMs: 300, owner: 'b' })
    const tokenA = await a.lease.hold('movies')
    expect(tokenA).toBe(1)
    expect(await b.lease.hold('movies')).toBeUndefined()
    expect(await a.lease.hold('movies')).toBe(1) // a renewal keeps the token
    expect(await a.store.save({ ...ramp('movies', 1), fence: 1 }, 0, tokenA)).toBe('saved')

    await new Promise((r) => setTimeout(r, 450)) // a stops renewing: the lease expires
    const tokenB = await b.lease.hold('movies')
    expect(tokenB).toBe(2)
    expect(await a.lease.hold('movies')).toBeUndefined()
    // a still believes in token 1: its writes are refused, b's go through.
    expect(await a.store.save({ ...ramp('movies', 2), fence: 1 }, 1, tokenA)).toBe('fenced')
    expect(await b.store.save({ ...ramp('movies', 2), fence: 2 }, 1, tokenB)).toBe('saved')
    expect((await a.store.load('movies'))!.fence).toBe(2)
    // Compare-and-set on the version, for admins and drivers alike.
    expect(await a.store.save(ramp('movies', 3), 1)).toBe('conflict')
    expect(await a.store.save({ ...ramp('movies', 3), fence: 2 }, 2)).toBe('saved')
    // Given up at shutdown: the other replica takes it at once.
    await b.lease.releaseAll()
    expect(await a.lease.hold('movies')).toBe(3)
  })

  it('a holder cut off from Redis does not hold anything', async () => {
    const dead = createRedis('redis://127.0.0.1:1', captureLogs().logger, { commandTimeoutMs: 100 })
    try {
      const c = redisCoordination({ redis: dead, keyPrefix: newPrefix(), leaseTtlMs: 1_000 })
      expect(await c.lease.hold('movies')).toBeUndefined()
    } finally {
      dead.disconnect()
    }
  })
})

describe('two proxies sharing Redis', () => {
  const proxies: ProxyUnderTest[] = []
  afterEach(async () => {
    await Promise.all(proxies.splice(0).map((p) => p.close()))
  })
  async function replica(keyPrefix: string, flagsFile: string): Promise<ProxyUnderTest> {
    const p = await startProxy(stubs, { FLAGS_FILE: flagsFile, RAMP_KEY_PREFIX: keyPrefix, RAMP_TICK_MS: '100', RAMP_LEASE_TTL_MS: '5000' }, { redis })
    proxies.push(p)
    return p
  }
  const leaseHeld = async (p: ProxyUnderTest) => metric((await p.ops.inject({ url: '/metrics' })).body, 'proxy_ramp_lease_held{route="movies"}') ?? 0
  const view = async (p: ProxyUnderTest) => (await p.ops.inject({ url: '/admin/routes/movies/ramp', headers: admin })).json()
  const stored = async (keyPrefix: string) => JSON.parse((await redis.get(`${keyPrefix}movies:state`))!)

  it('exactly one drives the ramp; when it stops, the other takes over and drives on', async () => {
    const keyPrefix = newPrefix()
    const flagsFile = flagsFileAt(0) // one flags file: the two replicas follow the same flag
    const a = await replica(keyPrefix, flagsFile)
    const b = await replica(keyPrefix, flagsFile)
    // A step needs far more requests than come: the holder keeps pushing nextStepAt ("staying").
    const put = await b.ops.inject({ method: 'PUT', url: '/admin/routes/movies/ramp', headers: admin, payload: { steps: [10, 100], intervalSeconds: 1, minRequests: 1_000_000 } })
    expect(put.statusCode).toBe(200)
    await eventually('one replica holds the lease', async () => (await leaseHeld(a)) + (await leaseHeld(b)) === 1)
    const [holder, other] = (await leaseHeld(a)) === 1 ? [a, b] : [b, a]
    await eventually('the holder drives the ramp', async () => (await stored(keyPrefix)).fence > 0 && /staying at 10 %/.test((await view(other)).reason))
    const fenceBefore = (await stored(keyPrefix)).fence
    // Still exactly one, the same, a while later (the holder renews every tick).
    await new Promise((r) => setTimeout(r, 500))
    expect([await leaseHeld(holder), await leaseHeld(other)]).toEqual([1, 0])
    expect((await stored(keyPrefix)).fence).toBe(fenceBefore)

    await holder.close()
    proxies.splice(proxies.indexOf(holder), 1)
    await eventually('the other replica took the lease', async () => (await leaseHeld(other)) === 1, 10_000)
    const nextBefore = (await view(other)).nextStepAt
    await eventually('the new holder drives the ramp with a newer fencing token', async () => {
      const s = await stored(keyPrefix)
      return s.fence > fenceBefore && (await view(other)).nextStepAt !== nextBefore
    })
    expect(await view(other)).toMatchObject({ state: 'running', percent: 10 })
    // An admin action on the survivor still works.
    const back = await other.ops.inject({ method: 'POST', url: '/admin/routes/movies/rollback', headers: admin })
    expect(back.json()).toMatchObject({ state: 'rolled_back', percent: 0 })
  })

  it('a holder cut off from Redis stops driving; the other takes over after the expiry', async () => {
    const keyPrefix = newPrefix()
    const flagsFile = flagsFileAt(0)
    // The first replica has a Redis connection of its own, to cut.
    const own = createRedis(redisUrl(), captureLogs().logger, { commandTimeoutMs: 1_000 })
    await once(own, 'ready')
    const env = { FLAGS_FILE: flagsFile, RAMP_KEY_PREFIX: keyPrefix, RAMP_TICK_MS: '100', RAMP_LEASE_TTL_MS: '1500' }
    const a = await startProxy(stubs, env, { redis: own })
    proxies.push(a)
    await a.ops.inject({ method: 'PUT', url: '/admin/routes/movies/ramp', headers: admin, payload: { steps: [10, 100], intervalSeconds: 1, minRequests: 1_000_000 } })
    await eventually('the first replica holds the lease', async () => (await leaseHeld(a)) === 1)
    const b = await replica(keyPrefix, flagsFile)
    const fenceA = (await redis.get(`${keyPrefix}movies:lease`))!.split(' ')[1]
    own.disconnect() // a keeps running but can no longer renew, nor write
    await eventually('the second replica took the lease after the expiry', async () => (await leaseHeld(b)) === 1, 10_000)
    expect(await leaseHeld(a)).toBe(0)
    const fenceB = (await redis.get(`${keyPrefix}movies:lease`))!.split(' ')[1]
    expect(Number(fenceB)).toBeGreaterThan(Number(fenceA))
    await eventually('the new holder drives the ramp', async () => (await stored(keyPrefix)).fence === Number(fenceB))
    expect(await view(b)).toMatchObject({ state: 'running', percent: 10 })
  })

  it('the ramp state is kept in Redis across a restart', async () => {
    const keyPrefix = newPrefix()
    const first = await replica(keyPrefix, flagsFileAt(0))
    await first.ops.inject({ method: 'PUT', url: '/admin/routes/movies/ramp', headers: admin, payload: { steps: [25, 100], intervalSeconds: 3600, reason: 'kept in redis' } })
    await first.close()
    proxies.splice(proxies.indexOf(first), 1)
    // A new process with a flags file of its own: the ramp comes from Redis, not from a file.
    const second = await replica(keyPrefix, flagsFileAt(25))
    expect(await view(second)).toMatchObject({ state: 'running', percent: 25, startedBy: { reason: 'kept in redis' } })
    expect((await second.ops.inject({ method: 'POST', url: '/admin/routes/movies/ramp/pause', headers: admin })).json()).toMatchObject({ state: 'paused' })
    expect((await stored(keyPrefix)).state).toBe('paused')
  })
})
