// Redis keeps what must last: the rollout ledger, ramp state and fencing counters live in the
// same Redis as the movie cache and the rate-limit counters. Run with exactly the arguments
// docker-compose.yml and the chart give redis-server (read from those files, only the port,
// address and folder added), a `kill -9` loses no acknowledged ledger entry and no ramp, and a
// memory full of cache keys evicts cache keys, never the ledger.
import { randomUUID } from 'node:crypto'
import { once } from 'node:events'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { ChildProcess } from 'node:child_process'
import { afterEach, describe, expect, it } from 'vitest'
import { parse } from 'yaml'
import { Redis as RedisClient } from 'ioredis'
import { freePort } from '../../dev/free-port.ts'
import { spawnTied, which } from '../../dev/tied-process.ts'
import { createRedis, type Redis } from '../../lib/redis.ts'
import { withMovieCache } from '../../lib/movies/movie-cache.ts'
import type { Movie, MovieRepository } from '../../lib/movies/movie-repository.ts'
import { createLedger } from '../../proxy/rollout/ledger.ts'
import { redisCoordination } from '../../proxy/rollout/ramp/coordination.ts'
import { planOf, startRamp } from '../../proxy/rollout/ramp/state.ts'
import { RedisRateLimitStore } from '../../proxy/edge/rate-limit-store.ts'
import { COMPOSE_DOT_ENV, find, interpolate, podSpec, readRepoFile, renderChart } from '../deploy/support.ts'
import { captureLogs } from '../helpers/logs.ts'

/** redis-server's arguments as shipped (after the program name). */
/** The password the shipped arguments get: from .env (compose) or the Secret through $(REDIS_PASSWORD) (the chart). */
const PASSWORD = 'durability0123456789abcdef'

function shippedArgs(): Record<'compose' | 'chart', string[]> {
  const compose = (parse(readRepoFile('docker-compose.yml')).services.redis.command as string[]).map((a) => interpolate(a, { ...COMPOSE_DOT_ENV, REDIS_PASSWORD: PASSWORD }))
  // Kubernetes expands $(NAME) in args from the container's env (the Secret's REDIS_PASSWORD).
  const chart = (podSpec(find(renderChart(), 'StatefulSet', 'redis')).containers[0].args as string[]).map((a) => a.replace('$(REDIS_PASSWORD)', PASSWORD))
  for (const args of [compose, chart]) expect(args[0]).toBe('redis-server')
  return { compose: compose.slice(1), chart: chart.slice(1) }
}

interface RunningRedis {
  url: string
  child: ChildProcess
  output(): string
}

const running = new Set<ChildProcess>()
const folders: string[] = []
const clients: Redis[] = []
afterEach(async () => {
  for (const client of clients.splice(0)) client.disconnect()
  for (const child of running) {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL')
      await once(child, 'exit')
    }
  }
  running.clear()
  for (const dir of folders.splice(0)) rmSync(dir, { recursive: true, force: true })
})

/** The shipped arguments, then only what places this server: port, 127.0.0.1, its data folder. */
async function startRedis(args: string[], dir: string, port?: number): Promise<RunningRedis> {
  const bin = which('redis-server')
  if (!bin) throw new Error('redis-server is not on PATH: apt-get install -y redis-server')
  port ??= await freePort()
  const child = spawnTied(bin, [...args, '--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--daemonize', 'no'], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] })
  running.add(child)
  let output = ''
  child.stdout!.on('data', (d) => (output = (output + d).slice(-10_000)))
  child.stderr!.on('data', (d) => (output = (output + d).slice(-10_000)))
  // Shipped with --requirepass: the clients authenticate as every service does (REDIS_URL).
  const url = args.includes('--requirepass') ? `redis://:${PASSWORD}@127.0.0.1:${port}` : `redis://127.0.0.1:${port}`
  const deadline = Date.now() + 30_000
  for (;;) {
    if (child.exitCode !== null) throw new Error(`redis-server exited (${child.exitCode}):\n${output}`)
    const probe = new RedisClient(url, { lazyConnect: true, connectTimeout: 1_000, maxRetriesPerRequest: 0, retryStrategy: () => null })
    probe.on('error', () => {}) // refused until it listens: connect() rejects with it too
    try {
      await probe.connect()
      // PING answers while the append-only file is still loading: wait for the data set.
      if (/loading:0/.test(await probe.info('persistence'))) break
    } catch {
    } finally {
      probe.disconnect()
    }
    if (Date.now() > deadline) throw new Error(`redis-server did not start:\n${output}`)
    await new Promise((r) => setTimeout(r, 50))
  }
  return { url, child, output: () => output }
}

async function client(url: string): Promise<Redis> {
  const redis = createRedis(url, captureLogs().logger, { commandTimeoutMs: 5_000 })
  clients.push(redis)
  await once(redis, 'ready')
  return redis
}

const ROUTE = 'movies'

/** Ledger entries (the proxy's ledger code) and a running ramp with its lease (the proxy's coordination code). */
async function writeWhatMustLast(redis: Redis, prefix: string, entries: number) {
  let storeErrors = 0
  const ledger = createLedger(
    { maxEntries: 10_000, redisKey: `${prefix}ledger`, file: '/nonexistent/ledger.jsonl', claimTtlMs: 60_000 },
    { logger: captureLogs().logger, redis, onStoreError: () => storeErrors++ },
  )
  for (let i = 0; i < entries; i++) {
    await ledger.append({ route: ROUTE, flag: 'movies-migration', from: i, to: i + 1, actor: 'alice', reason: `entry ${i}`, source: 'admin' })
  }
  expect(storeErrors).toBe(0) // every entry acknowledged by Redis
  const coordination = redisCoordination({ redis, keyPrefix: `${prefix}ramp:`, leaseTtlMs: 300, owner: 'replica-a' })
  const token = await coordination.lease.hold(ROUTE)
  expect(token).toBe(1)
  const ramp = { ...startRamp({ id: randomUUID(), route: ROUTE, plan: planOf({ steps: [10, 50, 100] }), actor: 'alice', version: 1, now: Date.now() }).ramp, fence: token! }
  expect(await coordination.store.save(ramp, 0, token)).toBe('saved')
  return { ramp, token: token! }
}

/** What writeWhatMustLast wrote is all there, the fencing counter goes on from where it was. */
async function expectItLasted(redis: Redis, prefix: string, entries: number, written: Awaited<ReturnType<typeof writeWhatMustLast>>) {
  const ledger = createLedger(
    { maxEntries: 10_000, redisKey: `${prefix}ledger`, file: '/nonexistent/ledger.jsonl', claimTtlMs: 60_000 },
    { logger: captureLogs().logger, redis, onStoreError: () => expect.fail('no store error') },
  )
  const listed = await ledger.list({ limit: entries + 10 })
  expect(listed.map((e) => e.reason)).toEqual(Array.from({ length: entries }, (_, i) => `entry ${entries - 1 - i}`))
  const other = redisCoordination({ redis, keyPrefix: `${prefix}ramp:`, leaseTtlMs: 300, owner: 'replica-b' })
  expect(await other.store.load(ROUTE)).toEqual(written.ramp)
  expect((await other.store.load(ROUTE))!.state).toBe('running')
  // The first holder's lease expires (300 ms); the next holder's token is higher, so the first
  // one's saves stay fenced. A lost counter would start again at 1.
  await new Promise((r) => setTimeout(r, 400))
  expect(await other.lease.hold(ROUTE)).toBe(written.token + 1)
}

describe('Redis as shipped (docker-compose.yml and the chart)', () => {
  it('compose and the chart give redis-server the same arguments: AOF, volatile-lru, a memory bound', () => {
    const { compose, chart } = shippedArgs()
    expect(chart).toEqual(compose)
    const setting = (name: string) => compose[compose.indexOf(`--${name}`) + 1]
    expect(setting('appendonly')).toBe('yes')
    expect(setting('maxmemory-policy')).toBe('volatile-lru')
    expect(setting('maxmemory')).toMatch(/^\d+mb$/)
  })

  for (const source of ['compose', 'chart'] as const) {
    it(`with ${source}'s arguments, kill -9 and a restart lose no acknowledged ledger entry, no ramp, no fencing counter`, async () => {
      const args = shippedArgs()[source]
      const dir = mkdtempSync(join(tmpdir(), 'test-redis-aof-'))
      folders.push(dir)
      const first = await startRedis(args, dir)
      const prefix = `cinemaabyss:${randomUUID()}:`
      const entries = 300
      const written = await writeWhatMustLast(await client(first.url), prefix, entries)
      // No shutdown, no save: the process dies at once, right after the last acknowledgement.
      process.kill(first.child.pid!, 'SIGKILL')
      await once(first.child, 'exit')
      expect(first.child.signalCode).toBe('SIGKILL')

      const second = await startRedis(args, dir, Number(new URL(first.url).port))
      const redis = await client(second.url)
      await expectItLasted(redis, prefix, entries, written)
      // None of them has a time to live, so volatile-lru never picks them.
      for (const key of [`${prefix}ledger`, `${prefix}ramp:${ROUTE}:state`, `${prefix}ramp:${ROUTE}:fence`]) expect(await redis.ttl(key), key).toBe(-1)
    }, 60_000)
  }

  it('a memory full of cache keys (with their TTL, as the movie cache writes them) evicts cache keys, never the ledger or the ramp', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'test-redis-full-'))
    folders.push(dir)
    const args = shippedArgs().chart
    const maxMemory = Number(/^(\d+)mb$/.exec(args[args.indexOf('--maxmemory') + 1]!)![1]) * 1024 * 1024
    const server = await startRedis(args, dir)
    const redis = await client(server.url)
    const prefix = `cinemaabyss:${randomUUID()}:`
    const entries = 500
    const written = await writeWhatMustLast(redis, prefix, entries)

    // The movies service's own cache code fills Redis: each read of a movie not cached yet
    // writes `movies:id:<id>` with CACHE_TTL_SECONDS. 16 KiB movies, twice maxmemory of them.
    const description = 'x'.repeat(16 * 1024)
    const repo: MovieRepository = {
      list: async () => [],
      get: async (id) => ({ id, title: `movie ${id}`, description } as unknown as Movie),
      create: async () => expect.fail('not used'),
    }
    const cached = withMovieCache(repo, redis, captureLogs().logger, 3_600)
    const movies = Math.ceil((2 * maxMemory) / description.length)
    for (let id = 1; id <= movies; id += 200) {
      await Promise.all(Array.from({ length: Math.min(200, movies - id + 1) }, (_, i) => cached.get(id + i)))
      await redis.ping() // the cache writes are fire-and-forget: let them land before the next batch
    }
    const stats = await redis.info('stats')
    const evicted = Number(/evicted_keys:(\d+)/.exec(stats)![1])
    expect(evicted).toBeGreaterThan(movies / 4) // memory was full: Redis had to evict
    expect(await redis.exists('movies:id:1')).toBe(0) // the oldest cache keys went first
    expect(await redis.ttl(`movies:id:${movies}`)).toBeGreaterThan(0)
    await expectItLasted(redis, prefix, entries, written)
  }, 120_000)

  it('the cache and rate-limit keys do have a time to live (else volatile-lru could never free their memory)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'test-redis-ttl-'))
    folders.push(dir)
    const server = await startRedis(shippedArgs().compose, dir)
    const redis = await client(server.url)
    const repo: MovieRepository = {
      list: async () => [{ id: 1, title: 'one' } as unknown as Movie],
      get: async (id) => ({ id, title: `movie ${id}` } as unknown as Movie),
      create: async () => expect.fail('not used'),
    }
    const cached = withMovieCache(repo, redis, captureLogs().logger, 60)
    await cached.list()
    await cached.get(7)
    const limits = new RedisRateLimitStore({ redis, keyPrefix: 'cinemaabyss:rl:', onError: (error) => expect.fail(error.message) })
    await new Promise((done) => limits.incr('client-1', done, 60_000))
    await limits.close() // its last sync
    await redis.ping()
    const keys = (await redis.keys('*')).sort()
    expect(keys).toEqual(['cinemaabyss:rl:client-1', 'movies:id:7', 'movies:list'])
    for (const key of keys) {
      const ttl = await redis.pttl(key)
      expect(ttl, key).toBeGreaterThan(0)
      expect(ttl, key).toBeLessThanOrEqual(60_000)
    }
  }, 60_000)
})
