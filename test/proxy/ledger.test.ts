// The rollout ledger and named admin tokens: who changed a rollout is recorded by the name of
// the token they used; hand edits of the flags file are recorded once as "flags-file"; the
// ledger is a capped JSON-lines file without Redis and a capped stream in the real Redis with
// it; and a Redis that is down costs the ledger entry its store (logged, counted), never the
// rollout change.
import { randomUUID } from 'node:crypto'
import { once } from 'node:events'
import { mkdtempSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createRedis } from '../../lib/redis.ts'
import { loadConfig } from '../../proxy/config.ts'
import { createLedger, type LedgerEntry } from '../../proxy/rollout/ledger.ts'
import { redisUrl } from '../helpers/infra.ts'
import { captureLogs } from '../helpers/logs.ts'
import { metric } from '../helpers/metrics.ts'
import { eventually } from '../helpers/poll.ts'
import { startTcpForwarder } from '../helpers/tcp-forwarder.ts'
import { admin, flagsFileAt, startProxy, startStubs, writeFlagsFile, type ProxyUnderTest, type Stubs } from './proxy-harness.ts'

const ALICE = 'alice-token-0123456789abcdef'
const BOB = 'bob-token-0123456789abcdef'
const NAMED = { ADMIN_TOKENS: `alice:${ALICE}, bob:${BOB}` }
const as = (token: string) => ({ authorization: `Bearer ${token}` })

let stubs: Stubs
beforeAll(async () => {
  stubs = await startStubs()
})
afterAll(() => stubs?.close())

const entryShape = (e: LedgerEntry) => ({ route: e.route, flag: e.flag, from: e.from, to: e.to, actor: e.actor, reason: e.reason, source: e.source })
async function ledgerOf(proxy: ProxyUnderTest, query = '') {
  const res = await proxy.ops.inject({ url: `/admin/ledger${query}`, headers: admin })
  expect(res.statusCode).toBe(200)
  return res.json() as { store: string; location: string; entries: LedgerEntry[] }
}
const put = (proxy: ProxyUnderTest, headers: Record<string, string>, payload: object) =>
  proxy.ops.inject({ method: 'PUT', url: '/admin/routes/movies/rollout', headers, payload })

describe('named admin tokens', () => {
  it('are validated at start, naming the variable and never echoing a token', () => {
    const bad: Array<[string, RegExp]> = [
      [`alice:${ALICE},alice:${BOB}`, /ADMIN_TOKENS: the name "alice" appears twice/],
      [`alice:${ALICE},bob:${ALICE}`, /ADMIN_TOKENS: two names share one token/],
      [`alice:${ALICE},,bob:${BOB}`, /ADMIN_TOKENS part 2 must be name:token/],
      [`:${ALICE}`, /ADMIN_TOKENS part 1 must be name:token/],
      ['alice:', /ADMIN_TOKENS part 1 must be name:token/],
      [ALICE, /ADMIN_TOKENS part 1 must be name:token/],
      ['alice:short', /ADMIN_TOKENS: the token of "alice" must be at least 24 characters/],
      ['alice:change-me-alice-0123456789', /ADMIN_TOKENS: the token of "alice" is a known placeholder/],
      [`al ice:${ALICE}`, /ADMIN_TOKENS part 1: name "al ice" must be/],
    ]
    for (const [value, message] of bad) {
      let error: Error | undefined
      try {
        loadConfig({ ADMIN_TOKENS: value })
      } catch (e) {
        error = e as Error
      }
      expect(error?.message, value).toMatch(message)
      expect(error!.message).not.toContain(ALICE)
    }
    expect(() => loadConfig({ ADMIN_TOKEN: ALICE, ADMIN_TOKENS: `admin:${BOB}` })).toThrow(/ADMIN_TOKENS repeats ADMIN_TOKEN/)
    expect(() => loadConfig({ ADMIN_TOKEN: ALICE, ADMIN_TOKENS: `carol:${ALICE}` })).toThrow(/ADMIN_TOKENS repeats ADMIN_TOKEN/)
    expect(loadConfig({ ADMIN_TOKEN: 'x'.repeat(16) + '0123456789', ...NAMED }).adminTokens.map((t) => t.name)).toEqual(['admin', 'alice', 'bob'])
  })

  it('open the admin API alone (without ADMIN_TOKEN); a wrong token is 401', async () => {
    const proxy = await startProxy(stubs, { ADMIN_TOKEN: '', ...NAMED })
    try {
      expect((await proxy.ops.inject({ url: '/admin/state', headers: as(BOB) })).statusCode).toBe(200)
      for (const headers of [admin, as('not-a-token-0123456789'), as(`${ALICE}x`), {}]) {
        const res = await proxy.ops.inject({ url: '/admin/ledger', headers })
        expect([res.statusCode, res.headers['www-authenticate']]).toEqual([401, 'Bearer realm="proxy-admin"'])
      }
      const res = await put(proxy, as('wrong-token-0123456789'), { percent: 90 })
      expect(res.statusCode).toBe(401)
      expect((await proxy.ops.inject({ url: '/admin/state', headers: as(ALICE) })).json().routes[0].percent).toBe(30)
      expect(JSON.stringify(proxy.logs.lines)).not.toContain(ALICE)
    } finally {
      await proxy.close()
    }
  })
})

describe('the ledger in file mode', () => {
  let proxy: ProxyUnderTest
  beforeAll(async () => {
    proxy = await startProxy(stubs, { FLAGS_FILE: flagsFileAt(30), ...NAMED })
  })
  afterAll(() => proxy?.close())

  it('records admin changes once, with the token name and the reason, and hand edits once as flags-file', async () => {
    expect(await ledgerOf(proxy)).toMatchObject({ store: 'file', location: join(proxy.flagsFile, '..', 'rollout-ledger.jsonl'), entries: [] })

    const res = await put(proxy, as(ALICE), { percent: 50, reason: 'movies-service p99 fine for a week' })
    expect([res.statusCode, res.json().percent]).toEqual([200, 50])
    expect((await put(proxy, admin, { percent: 60 })).statusCode).toBe(200)

    writeFlagsFile(proxy.flagsFile, 70)
    await eventually('the hand edit to be noticed', async () => (await ledgerOf(proxy)).entries.length === 3)
    expect((await put(proxy, as(BOB), { percent: 20, reason: 'target 5xx after deploy' })).statusCode).toBe(200)
    // A last hand edit: once it is recorded, every reload the earlier writes caused is done.
    writeFlagsFile(proxy.flagsFile, 25)
    await eventually('the second hand edit to be noticed', async () => (await ledgerOf(proxy)).entries[0]?.to === 25)

    const movies = { route: 'movies', flag: 'movies-migration' }
    expect((await ledgerOf(proxy)).entries.map(entryShape)).toEqual([
      { ...movies, from: 20, to: 25, actor: 'flags-file', reason: 'flags file changed', source: 'flags-file' },
      { ...movies, from: 70, to: 20, actor: 'bob', reason: 'target 5xx after deploy', source: 'admin' },
      { ...movies, from: 60, to: 70, actor: 'flags-file', reason: 'flags file changed', source: 'flags-file' },
      { ...movies, from: 50, to: 60, actor: 'admin', reason: 'admin API', source: 'admin' },
      { ...movies, from: 30, to: 50, actor: 'alice', reason: 'movies-service p99 fine for a week', source: 'admin' },
    ])
    const { entries } = await ledgerOf(proxy, '?route=movies&limit=2')
    expect(entries.map((e) => e.to)).toEqual([25, 20])
    expect(Date.parse(entries[0]!.at)).toBeGreaterThanOrEqual(Date.parse(entries[1]!.at))
    expect((await ledgerOf(proxy, '?route=events')).entries).toEqual([])

    // One structured log line per entry.
    const logged = proxy.logs.lines.filter((l) => l.ledger !== undefined).map((l) => (l.ledger as LedgerEntry).to)
    expect(logged).toEqual([50, 60, 70, 20, 25])
    // The file holds the same entries, oldest first.
    const lines = readFileSync(join(proxy.flagsFile, '..', 'rollout-ledger.jsonl'), 'utf8').trim().split('\n')
    expect(lines.map((l) => JSON.parse(l).to)).toEqual([50, 60, 70, 20, 25])
  })

  it('concurrent changes are made one at a time, each recorded once from the previous one', async () => {
    const before = (await ledgerOf(proxy)).entries.length
    const percents = [11, 12, 13, 14, 15, 16, 17, 18]
    const answers = await Promise.all(percents.map((percent, i) => put(proxy, as(i % 2 ? ALICE : BOB), { percent, reason: `burst ${i}` })))
    expect(answers.map((a) => a.statusCode)).toEqual(percents.map(() => 200))
    // Barrier: a hand edit, recorded once every reload the burst caused is done.
    writeFlagsFile(proxy.flagsFile, 40)
    await eventually('the hand edit after the burst', async () => (await ledgerOf(proxy)).entries[0]?.to === 40)
    const burst = (await ledgerOf(proxy)).entries.slice(1, 1 + percents.length).reverse()
    expect(burst.length).toBe(percents.length)
    expect((await ledgerOf(proxy)).entries.length).toBe(before + percents.length + 1)
    expect(burst.every((e) => e.source === 'admin')).toBe(true)
    expect(burst.map((e) => e.to).sort()).toEqual(percents)
    for (let i = 1; i < burst.length; i++) expect(burst[i]!.from).toBe(burst[i - 1]!.to)
  })

  it('validates its query', async () => {
    for (const query of ['?limit=0', '?limit=1001', '?limit=x', '?limit=-1', '?route=', '?route=movies&other=1']) {
      const res = await proxy.ops.inject({ url: `/admin/ledger${query}`, headers: admin })
      expect([res.statusCode, typeof res.json().error], query).toEqual([400, 'string'])
    }
  })

  it('a rollout change that fails is not recorded', async () => {
    const before = (await ledgerOf(proxy)).entries.length
    const res = await proxy.ops.inject({ method: 'PUT', url: '/admin/routes/events/rollout', headers: admin, payload: { percent: 5 } })
    expect(res.statusCode).toBe(409)
    const long = await put(proxy, admin, { percent: 5, reason: 'x'.repeat(501) })
    expect(long.statusCode).toBe(400)
    expect((await ledgerOf(proxy)).entries.length).toBe(before)
  })
})

describe('ledger stores', () => {
  const entry = (i: number, route = 'movies') => ({ route, flag: 'movies-migration', from: i, to: i + 1, actor: 'ramp', reason: `step ${i}`, source: 'ramp' as const })

  it('file: rotates at maxEntries, keeping the newest entries in order', async () => {
    const file = join(mkdtempSync(join(tmpdir(), 'ledger-')), 'rollout-ledger.jsonl')
    const ledger = createLedger({ maxEntries: 10, redisKey: 'unused', file, claimTtlMs: 60_000 }, { logger: captureLogs().logger, onStoreError: () => expect.fail('no store error') })
    for (let i = 0; i < 25; i++) await ledger.append(entry(i, i % 5 === 0 ? 'events' : 'movies'))
    const all = await ledger.list({ limit: 1000 })
    expect(all.length).toBeLessThanOrEqual(20)
    expect(all.map((e) => e.from)).toEqual(Array.from({ length: all.length }, (_, k) => 24 - k))
    expect(readFileSync(file, 'utf8').trim().split('\n').length).toBeLessThanOrEqual(10)
    expect(readFileSync(`${file}.1`, 'utf8').trim().split('\n').length).toBe(10)
    expect((await ledger.list({ route: 'events', limit: 2 })).map((e) => e.from)).toEqual([20, 15])
  })

  it('redis: a stream capped near maxEntries, read newest first and by route', async () => {
    const redis = createRedis(redisUrl(), captureLogs().logger, { commandTimeoutMs: 2_000 })
    const key = `test:ledger:${randomUUID()}`
    await once(redis, 'ready')
    try {
      const ledger = createLedger({ maxEntries: 200, redisKey: key, file: '/nonexistent/ledger.jsonl', claimTtlMs: 60_000 }, { logger: captureLogs().logger, redis, onStoreError: () => expect.fail('no store error') })
      for (let i = 0; i < 700; i++) await ledger.append(entry(i, i % 7 === 0 ? 'events' : 'movies'))
      const length = await redis.xlen(key)
      // MAXLEN ~ trims whole stream nodes (100 entries each): near the cap, far below what was added.
      expect(length).toBeGreaterThanOrEqual(200)
      expect(length).toBeLessThan(400)
      expect((await ledger.list({ limit: 3 })).map((e) => e.from)).toEqual([699, 698, 697])
      // The route filter pages through the stream (100 entries a page) to its oldest kept entry.
      const events = await ledger.list({ route: 'events', limit: 1000 })
      expect(events.map((e) => e.from)).toEqual(Array.from({ length: events.length }, (_, k) => 693 - 7 * k))
      expect(events.length).toBe(Math.floor((693 - (700 - length)) / 7) + 1)
      // A change several replicas notice is claimed by the first one only.
      expect([await ledger.claim('movies:30:50'), await ledger.claim('movies:30:50'), await ledger.claim('movies:50:30')]).toEqual([true, false, true])
      // A change that failed gives its claim back.
      await ledger.unclaim('movies:50:30')
      expect(await ledger.claim('movies:50:30')).toBe(true)
    } finally {
      await redis.del(key, `${key}:claim:movies:30:50`, `${key}:claim:movies:50:30`)
      redis.disconnect()
    }
  })
})

describe('the ledger in Redis mode', () => {
  it('shared by the proxy through Redis', async () => {
    const redis = createRedis(redisUrl(), captureLogs().logger, { commandTimeoutMs: 2_000 })
    const key = `test:ledger:${randomUUID()}`
    await once(redis, 'ready')
    const proxy = await startProxy(stubs, { LEDGER_REDIS_KEY: key, ...NAMED }, { redis })
    try {
      expect((await put(proxy, as(BOB), { percent: 40, reason: 'canary' })).statusCode).toBe(200)
      const ledger = await ledgerOf(proxy)
      expect(ledger).toMatchObject({ store: 'redis', location: key })
      expect(ledger.entries.map(entryShape)).toEqual([{ route: 'movies', flag: 'movies-migration', from: 30, to: 40, actor: 'bob', reason: 'canary', source: 'admin' }])
      expect(await redis.xlen(key)).toBe(1)
      // A change of the shadow settings is an entry too (stage shadow), with the token's name and the settings in force.
      const shadow = await proxy.ops.inject({ method: 'PUT', url: '/admin/routes/movies/shadow', headers: as(BOB), payload: { percent: 10, detectNoise: true, reason: 'compare 10 %' } })
      expect(shadow.statusCode).toBe(200)
      const [latest] = (await ledgerOf(proxy)).entries
      expect(latest).toMatchObject({ route: 'movies', flag: 'movies-migration', from: 0, to: 10, actor: 'bob', reason: 'compare 10 %', source: 'admin', stage: 'shadow', shadow: { change: 'settings', settings: { percent: 10, detectNoise: true, noiseConfirmations: 3 } } })
      expect(await redis.xlen(key)).toBe(2)
    } finally {
      await proxy.close()
      await redis.del(key)
      redis.disconnect()
    }
  })

  it('Redis down: the rollout still changes; the entry is logged, counted, and stored once Redis is back', async () => {
    const url = new URL(redisUrl())
    const forwarder = await startTcpForwarder(url.hostname, Number(url.port || 6379))
    const redis = createRedis(`redis://127.0.0.1:${forwarder.port}`, captureLogs().logger, { commandTimeoutMs: 200 })
    const key = `test:ledger:${randomUUID()}`
    const proxy = await startProxy(stubs, { LEDGER_REDIS_KEY: key, ...NAMED }, { redis })
    try {
      await forwarder.cut()
      const res = await put(proxy, as(ALICE), { percent: 80, reason: 'while redis is down' })
      expect([res.statusCode, res.json().percent]).toEqual([200, 80])
      expect((await proxy.ops.inject({ url: '/admin/state', headers: admin })).json().routes[0].percent).toBe(80)
      expect(metric((await proxy.ops.inject('/metrics')).body, 'proxy_ledger_store_errors_total')).toBe(1)
      const waiting = proxy.logs.lines.find((l) => l.msg === 'ledger entry not stored yet: kept in memory and stored again once the store answers')
      expect(waiting).toMatchObject({ store: 'redis', ledger: { route: 'movies', from: 30, to: 80, actor: 'alice', reason: 'while redis is down', source: 'admin' } })
      const read = await proxy.ops.inject({ url: '/admin/ledger', headers: admin })
      expect([read.statusCode, read.json().error]).toEqual([503, expect.stringMatching(/^the ledger cannot be read \(redis: /)])
      // Redis back: the entry is stored by the retry, nothing lost.
      await forwarder.restore()
      await expect.poll(async () => (await proxy.ops.inject({ url: '/admin/ledger', headers: admin })).json().entries?.map(entryShape), { timeout: 15_000 }).toEqual([
        { route: 'movies', flag: 'movies-migration', from: 30, to: 80, actor: 'alice', reason: 'while redis is down', source: 'admin' },
      ])
      await redis.del(key)
    } finally {
      await proxy.close()
      redis.disconnect()
      await forwarder.close()
    }
  })
})
