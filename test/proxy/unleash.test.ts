// The proxy following a real Unleash server (npm unleash-server 7, on a throw-away PostgreSQL
// database): the flag is created and its rollout changed through Unleash's Admin API, and the
// proxy follows without a restart; rollout changes through the proxy are written to Unleash
// and recorded in the ledger; with Unleash stopped it keeps the last flags it had, and a replica
// restarted while Unleash is down routes by the last state known to the replicas (Redis) — the
// writer side and retirement included — or, with none, is not ready and answers split routes 503.
import { randomUUID } from 'node:crypto'
import { once } from 'node:events'
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createRedis, type Redis } from '../../lib/redis.ts'
import { captureLogs } from '../helpers/logs.ts'
import { pgAdminUrl, redisUrl } from '../helpers/infra.ts'
import { createEmptyDatabase, type TestDatabase } from '../../dev/pg-admin.ts'
import { startService, type ServiceProcess } from '../helpers/processes.ts'
import { eventually } from '../helpers/poll.ts'
import { metric } from '../helpers/metrics.ts'
import { admin, flagsFileAt, startProxy, startStubs, type ProxyUnderTest, type Stubs } from './proxy-harness.ts'

const ADMIN = '*:*.suite-admin-0123456789abcdef'
const CLIENT = 'default:development.proxy-client-0123456789abcdef'

let database: TestDatabase
let unleash: ServiceProcess
let stubs: Stubs
let proxy: ProxyUnderTest

async function unleashApi(method: string, path: string, body?: unknown) {
  const res = await fetch(`${unleash.url}/api/admin${path}`, {
    method,
    headers: { authorization: ADMIN, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(10_000),
  })
  const text = await res.text()
  if (!res.ok) throw new Error(`Unleash ${method} ${path}: ${res.status} ${text}`)
  return text ? JSON.parse(text) : undefined
}

const FEATURE = '/projects/default/features/movies-migration'
let strategyId: string
const rollout = (percent: number) => ({ name: 'flexibleRollout', constraints: [], parameters: { groupId: 'movies-migration', rollout: String(percent), stickiness: 'default' } })

beforeAll(async () => {
  database = await createEmptyDatabase(pgAdminUrl(), 'cinemaabyss_unleash')
  unleash = await startService('test/proxy/unleash-server-main.ts', { UNLEASH_DB_URL: database.url, ADMIN_TOKEN: ADMIN, CLIENT_TOKEN: CLIENT }, { timeoutMs: 150_000 })

  await unleashApi('POST', '/projects/default/features', { name: 'movies-migration', type: 'release', description: 'movies route rollout' })
  strategyId = (await unleashApi('POST', `${FEATURE}/environments/development/strategies`, rollout(30))).id
  await unleashApi('POST', `${FEATURE}/environments/development/on`)

  stubs = await startStubs()
  // The flags file says 0 %: anything else the proxy does comes from Unleash.
  proxy = await startProxy(stubs, {
    FLAGS_FILE: flagsFileAt(0),
    UNLEASH_URL: `${unleash.url}/api`,
    UNLEASH_API_TOKEN: CLIENT,
    UNLEASH_REFRESH_INTERVAL_MS: '300',
    UNLEASH_TIMEOUT_MS: '2000',
  })
}, 180_000)

afterAll(async () => {
  await proxy?.close()
  await stubs?.close()
  await unleash?.stop()
  await database?.drop()
})

const state = async () => (await proxy.ops.inject({ url: '/admin/state', headers: admin })).json()
const ids = Array.from({ length: 2_000 }, (_, i) => `unleash-user-${i}`)
async function sides(): Promise<Map<string, string>> {
  const out = new Map<string, string>()
  for (const id of ids) out.set(id, (await proxy.app.inject({ url: '/api/movies', headers: { 'x-user-id': id } })).headers['x-upstream'] as string)
  return out
}
const share = (m: Map<string, string>) => [...m.values()].filter((s) => s === 'movies-service').length / m.size

describe('flags from a real Unleash server', () => {
  let at30: Map<string, string>

  it('routes by the rollout set in Unleash', { timeout: 90_000 }, async () => {
    await eventually('the proxy to fetch movies-migration at 30 % from Unleash', async () => {
      const route = (await state()).routes[0]
      return route.source === 'unleash' && route.percent === 30
    })
    const s = await state()
    expect(s.flags).toMatchObject({ kind: 'unleash', loaded: true, healthy: true, location: `${unleash.url}/api` })
    at30 = await sides()
    expect(share(at30)).toBeGreaterThan(0.26)
    expect(share(at30)).toBeLessThan(0.34)
    expect(metric((await proxy.ops.inject('/metrics')).body, 'proxy_rollout_percent{route="movies",flag="movies-migration",source="unleash"}')).toBe(30)
    expect(metric((await proxy.ops.inject('/metrics')).body, 'proxy_flag_source_up{source="unleash"}')).toBe(1)
  })

  it('follows a rollout change made in Unleash, moving users only from legacy to the target', async () => {
    await unleashApi('PUT', `${FEATURE}/environments/development/strategies/${strategyId}`, rollout(60))
    await eventually('the proxy to follow the change to 60 %', async () => (await state()).routes[0].percent === 60)
    const at60 = await sides()
    expect(share(at60)).toBeGreaterThan(0.56)
    expect(share(at60)).toBeLessThan(0.64)
    const movedBack = ids.filter((id) => at30.get(id) === 'movies-service' && at60.get(id) !== 'movies-service')
    expect(movedBack).toEqual([])
  })

  it('refuses rollout changes through the proxy: they belong in Unleash', async () => {
    const res = await proxy.ops.inject({ method: 'PUT', url: '/admin/routes/movies/rollout', headers: admin, payload: { percent: 5 } })
    expect(res.statusCode).toBe(409)
    expect(res.json().error).toMatch(/change the rollout of movies-migration in Unleash/)
  })
})

// Rollout changes through the proxy written to Unleash (UNLEASH_ADMIN_TOKEN), and the ledgers:
// the first proxy above (its own ledger file) sees the writer's change as an Unleash change; the
// writer and a peer replica share a ledger in Redis, where each change is recorded once.
describe('rollout changes through the Unleash Admin API', () => {
  const CAROL = 'carol-token-0123456789abcdef'
  const carol = { authorization: `Bearer ${CAROL}` }
  const ledgerKey = `test:unleash-ledger:${randomUUID()}`
  let redis: Redis
  let writer: ProxyUnderTest
  let peer: ProxyUnderTest
  beforeAll(async () => {
    redis = createRedis(redisUrl(), captureLogs().logger, { commandTimeoutMs: 2_000 })
    await once(redis, 'ready')
    const replica = { FLAGS_FILE: flagsFileAt(0), UNLEASH_URL: `${unleash.url}/api`, UNLEASH_API_TOKEN: CLIENT, UNLEASH_REFRESH_INTERVAL_MS: '300', UNLEASH_TIMEOUT_MS: '2000', LEDGER_REDIS_KEY: ledgerKey, FLAGS_LAST_KNOWN_KEY: `${ledgerKey}:flags` }
    writer = await startProxy(stubs, { ...replica, UNLEASH_ADMIN_TOKEN: ADMIN, ADMIN_TOKENS: `carol:${CAROL}` }, { redis })
    peer = await startProxy(stubs, replica, { redis })
    // Fetched from this Unleash (not a last known state another test left in Redis).
    for (const p of [writer, peer]) await eventually('the replicas to follow Unleash', async () => (await p.ops.inject({ url: '/admin/state', headers: admin })).json().flags.servedFrom === 'unleash')
  })
  afterAll(async () => {
    await writer?.close()
    await peer?.close()
    const claims = await redis.keys(`${ledgerKey}*`)
    if (claims.length) await redis.del(...claims)
    redis?.disconnect()
  })

  const percentIn = async (p: ProxyUnderTest) => (await p.ops.inject({ url: '/admin/state', headers: admin })).json().routes[0].percent
  const strategies = async () => (await unleashApi('GET', FEATURE)).environments.find((e: { name: string }) => e.name === 'development').strategies
  const ledger = async (p: ProxyUnderTest) => (await p.ops.inject({ url: '/admin/ledger?route=movies', headers: admin })).json().entries
  const shape = (e: Record<string, unknown>) => ({ from: e.from, to: e.to, actor: e.actor, source: e.source, reason: e.reason })

  it('PUT rollout writes the flexibleRollout strategy in Unleash and applies at once', async () => {
    expect(await percentIn(writer)).toBe(60)
    const res = await writer.ops.inject({ method: 'PUT', url: '/admin/routes/movies/rollout', headers: carol, payload: { percent: 45, reason: 'ramp by hand' } })
    expect([res.statusCode, res.json().percent, res.json().source]).toEqual([200, 45, 'unleash'])
    // The proxy's own state moved with the answer, before any fetch.
    expect(await percentIn(writer)).toBe(45)
    const [strategy, ...others] = await strategies()
    expect(others).toEqual([])
    expect(strategy).toMatchObject({ id: strategyId, name: 'flexibleRollout', parameters: { rollout: '45', groupId: 'movies-migration', stickiness: 'default' } })
    // The other proxy (no admin token) follows Unleash and records the change it noticed.
    await eventually('the follower to fetch 45 %', async () => (await percentIn(proxy)) === 45)
    // Its ledger: the change made in Unleash earlier (30 → 60), then this one; its start (the
    // bootstrap file's 0 %, then Unleash's 30 %) is the proxy learning, not a change.
    await eventually('the follower to record it', async () => (await ledger(proxy)).length === 2)
    expect((await ledger(proxy)).map(shape)).toEqual([
      { from: 60, to: 45, actor: 'unleash', source: 'unleash', reason: 'Unleash changed' },
      { from: 30, to: 60, actor: 'unleash', source: 'unleash', reason: 'Unleash changed' },
    ])
  })

  it("a change made in Unleash is recorded once as actor unleash; the proxy's own write once, as carol", async () => {
    await unleashApi('PUT', `${FEATURE}/environments/development/strategies/${strategyId}`, rollout(20))
    for (const p of [writer, peer]) await eventually('the replicas to follow the change to 20 %', async () => (await percentIn(p)) === 20)
    await eventually('the change to be recorded', async () => (await ledger(writer)).length === 2)
    expect(await ledger(peer)).toEqual(await ledger(writer))
    expect((await ledger(writer)).map(shape)).toEqual([
      { from: 45, to: 20, actor: 'unleash', source: 'unleash', reason: 'Unleash changed' },
      { from: 60, to: 45, actor: 'carol', source: 'admin', reason: 'ramp by hand' },
    ])
  })

  it('creates the strategy when the flag has none in the environment', async () => {
    await unleashApi('DELETE', `${FEATURE}/environments/development/strategies/${strategyId}`)
    const res = await writer.ops.inject({ method: 'PUT', url: '/admin/routes/movies/rollout', headers: admin, payload: { percent: 60 } })
    expect([res.statusCode, res.json().percent]).toEqual([200, 60])
    const [strategy, ...others] = await strategies()
    expect(others).toEqual([])
    expect(strategy).toMatchObject({ name: 'flexibleRollout', parameters: { rollout: '60', groupId: 'movies-migration' } })
    strategyId = strategy.id
    await eventually('the follower to fetch 60 %', async () => (await percentIn(proxy)) === 60)
    await eventually('the peer to fetch 60 %', async () => (await percentIn(peer)) === 60)
    expect((await ledger(writer)).map(shape)[0]).toEqual({ from: 20, to: 60, actor: 'admin', source: 'admin', reason: 'admin API' })
    expect((await ledger(writer)).length).toBe(3)
  })

  it('refuses (409) a flag that is more than a plain rollout, and changes nothing', async () => {
    const extra = (await unleashApi('POST', `${FEATURE}/environments/development/strategies`, { name: 'default', constraints: [], parameters: {} })).id
    try {
      const res = await writer.ops.inject({ method: 'PUT', url: '/admin/routes/movies/rollout', headers: admin, payload: { percent: 10 } })
      expect([res.statusCode, res.json().error]).toEqual([409, expect.stringMatching(/more than a plain rollout \(flexibleRollout, default\): change it in Unleash/)])
      expect((await strategies()).find((s: { id: string }) => s.id === strategyId).parameters.rollout).toBe('60')
    } finally {
      await unleashApi('DELETE', `${FEATURE}/environments/development/strategies/${extra}`)
    }
  })

  it('answers 502 when Unleash cannot be written: unreachable, or the token refused', async () => {
    for (const [env, message] of [
      [{ UNLEASH_ADMIN_URL: 'http://127.0.0.1:9/api/admin' }, /^Unleash Admin API unreachable \(GET \/projects\/default\/features\/movies-migration\)/],
      [{ UNLEASH_ADMIN_TOKEN: '*:*.not-a-token-of-this-unleash' }, /^Unleash refused the admin token \(UNLEASH_ADMIN_TOKEN\) with 401/],
    ] as const) {
      const broken = await startProxy(stubs, { FLAGS_FILE: flagsFileAt(0), UNLEASH_URL: `${unleash.url}/api`, UNLEASH_API_TOKEN: CLIENT, UNLEASH_ADMIN_TOKEN: ADMIN, UNLEASH_TIMEOUT_MS: '2000', ...env })
      try {
        const res = await broken.ops.inject({ method: 'PUT', url: '/admin/routes/movies/rollout', headers: admin, payload: { percent: 5 } })
        expect([res.statusCode, res.json().error]).toEqual([502, expect.stringMatching(message)])
        expect((await ledger(broken))).toEqual([])
      } finally {
        await broken.close()
      }
    }
    expect((await strategies()).find((s: { id: string }) => s.id === strategyId).parameters.rollout).toBe('60')
  })

  it('a guarded ramp in Unleash mode writes each step through the Admin API, and the ledger has them', { timeout: 90_000 }, async () => {
    // Its own ramp keys: the lease and ramp state are this proxy's alone.
    const ramper = await startProxy(
      stubs,
      { FLAGS_FILE: flagsFileAt(0), UNLEASH_URL: `${unleash.url}/api`, UNLEASH_API_TOKEN: CLIENT, UNLEASH_ADMIN_TOKEN: ADMIN, UNLEASH_TIMEOUT_MS: '2000', UNLEASH_REFRESH_INTERVAL_MS: '300', RAMP_TICK_MS: '200', RAMP_KEY_PREFIX: `test:unleash-ramp:${randomUUID()}:`, LEDGER_REDIS_KEY: `${ledgerKey}:ramp`, ADMIN_TOKENS: `carol:${CAROL}` },
      { redis },
    )
    try {
      await eventually('the ramping proxy to follow Unleash', async () => (await percentIn(ramper)) === 60)
      const seen: string[] = []
      const rolloutInUnleash = async () => (await strategies()).find((s: { id: string }) => s.id === strategyId).parameters.rollout as string
      const start = await ramper.ops.inject({ method: 'PUT', url: '/admin/routes/movies/ramp', headers: carol, payload: { steps: [70, 90], intervalSeconds: 1, minRequests: 5, maxLatencyRatio: 1000, reason: 'movies v2 in Unleash' } })
      expect([start.statusCode, start.json().state]).toEqual([200, 'running'])
      seen.push(await rolloutInUnleash())
      await eventually(
        'the ramp to complete',
        async () => {
          for (let i = 0; i < 10; i++) await ramper.app.inject({ url: '/api/movies', headers: { 'x-user-id': `unleash-ramp-${randomUUID()}` } })
          const current = await rolloutInUnleash()
          if (seen.at(-1) !== current) seen.push(current)
          return (await ramper.ops.inject({ url: '/admin/routes/movies/ramp', headers: admin })).json().state === 'completed'
        },
        60_000,
      )
      // Every step went to Unleash (what its UI shows), in order.
      expect(seen).toEqual(['70', '90'])
      const entries = (await ramper.ops.inject({ url: '/admin/ledger?route=movies', headers: admin })).json().entries
      expect(entries.map(shape).slice(0, 2)).toEqual([
        { from: 70, to: 90, actor: 'ramp', source: 'ramp', reason: 'ramp step 2 of 2: the guard held at 70 %' },
        { from: 60, to: 70, actor: 'carol', source: 'admin', reason: 'ramp started: step 1 of 2 (movies v2 in Unleash)' },
      ])
    } finally {
      await ramper.ops.inject({ method: 'PUT', url: '/admin/routes/movies/rollout', headers: admin, payload: { percent: 60, reason: 'back where the next test expects it' } })
      await ramper.close()
    }
    for (const p of [proxy, writer, peer]) await eventually('the replicas to be back at 60 %', async () => (await percentIn(p)) === 60)
  })

  it("switches the writer side through Unleash (movies-migration-writes): every replica follows, the ledger says who and why", async () => {
    const WRITES = '/projects/default/features/movies-migration-writes'
    await unleashApi('POST', '/projects/default/features', { name: 'movies-migration-writes', type: 'release', description: 'movies route writer side: 100 % = target' })
    await unleashApi('POST', `${WRITES}/environments/development/strategies`, { ...rollout(0), parameters: { groupId: 'movies-migration-writes', rollout: '0', stickiness: 'default' } })
    await unleashApi('POST', `${WRITES}/environments/development/on`)
    const writesIn = async (p: ProxyUnderTest) => (await p.ops.inject({ url: '/admin/routes/movies/stage', headers: admin })).json().writes
    for (const p of [writer, peer]) await eventually('the replicas to see the writer side in Unleash', async () => (await writesIn(p)) === 'legacy')
    // The stubs serve no parity digest: the guard cannot compare, so the switch is forced, with a reason.
    const res = await writer.ops.inject({ method: 'PUT', url: '/admin/routes/movies/writes', headers: carol, payload: { side: 'target', reason: 'stubs: no parity', force: true } })
    expect([res.statusCode, res.json().writes]).toEqual([200, 'target'])
    const strategy = (await unleashApi('GET', WRITES)).environments.find((e: { name: string }) => e.name === 'development').strategies[0]
    expect(strategy.parameters.rollout).toBe('100')
    await eventually('the peer to follow Unleash', async () => (await writesIn(peer)) === 'target')
    const write = await peer.app.inject({ method: 'POST', url: '/api/movies', headers: { 'x-user-id': 'unleash-writer' }, payload: {} })
    expect([write.headers['x-upstream'], write.headers['x-route-reason']]).toEqual(['movies-service', 'writes'])
    expect((await ledger(writer))[0]).toMatchObject({ stage: 'writes', fromSide: 'legacy', toSide: 'target', actor: 'carol', reason: 'stubs: no parity', forced: true })
    // Back as the other tests expect it: writes follow no writer side once the flag is gone.
    await unleashApi('DELETE', `${WRITES}`).catch(async () => {
      await unleashApi('POST', `${WRITES}/environments/development/off`)
    })
  })
})

describe('Unleash going away', () => {
  // A route of its own (flag catalog-split), so the flags made here touch no other test: reads on
  // the target, writes on the target, legacy retired, all in Unleash, none in the flags file.
  const key = `test:flags-last-known:${randomUUID()}`
  let redis: Redis
  let routesFile: string
  let replica: ProxyUnderTest | undefined
  const replicaEnv = (lastKnownKey: string) => ({
    FLAGS_FILE: flagsFileAt(0),
    ROUTES_FILE: routesFile,
    UNLEASH_URL: `${unleash.url}/api`,
    UNLEASH_API_TOKEN: CLIENT,
    UNLEASH_REFRESH_INTERVAL_MS: '300',
    UNLEASH_TIMEOUT_MS: '2000',
    FLAGS_LAST_KNOWN_KEY: lastKnownKey,
    LEDGER_REDIS_KEY: `${key}:ledger`,
    WRITES_FENCE_KEY_PREFIX: `${key}:writes:`,
    RAMP_KEY_PREFIX: `${key}:ramp:`,
  })
  const stageOf = async (p: ProxyUnderTest) => (await p.ops.inject({ url: '/admin/routes/movies/stage', headers: admin })).json()

  beforeAll(async () => {
    redis = createRedis(redisUrl(), captureLogs().logger, { commandTimeoutMs: 2_000 })
    await once(redis, 'ready')
    const routes = JSON.parse(readFileSync(new URL('../../proxy/routes.json', import.meta.url), 'utf8'))
    routes.routes.find((r: { name: string }) => r.name === 'movies').flag = 'catalog-split'
    routesFile = join(mkdtempSync(join(tmpdir(), 'unleash-routes-')), 'routes.json')
    writeFileSync(routesFile, JSON.stringify(routes))
    for (const name of ['catalog-split', 'catalog-split-writes', 'catalog-split-retired']) {
      const feature = `/projects/default/features/${name}`
      await unleashApi('POST', '/projects/default/features', { name, type: 'release', description: `test: ${name}` })
      await unleashApi('POST', `${feature}/environments/development/strategies`, { ...rollout(100), parameters: { groupId: name, rollout: '100', stickiness: 'default' } })
      await unleashApi('POST', `${feature}/environments/development/on`)
    }
    // A replica that reaches Unleash keeps what it fetched in Redis.
    replica = await startProxy(stubs, replicaEnv(key), { redis })
    await eventually('the replica to fetch the route\'s flags from Unleash', async () => {
      const stage = await stageOf(replica!)
      return stage.readPercent === 100 && stage.writes === 'target' && stage.retired === true
    })
    await eventually('the state to be kept in Redis', async () => (await redis.get(key))?.includes('catalog-split-retired') === true)
  }, 60_000)

  afterAll(async () => {
    await replica?.close()
    const keys = await redis.keys(`${key}*`)
    if (keys.length) await redis.del(...keys)
    redis?.disconnect()
  })

  // Stopping the Unleash server and the proxy noticing take up to 30 s each on a loaded machine.
  it('keeps the last flags from Unleash when Unleash goes away, and says so', { timeout: 90_000 }, async () => {
    const before = await sides()
    await unleash.stop()
    await eventually('the proxy to notice Unleash is gone', async () => (await state()).flags.healthy === false)
    expect((await state()).routes[0]).toMatchObject({ percent: 60, source: 'unleash' })
    expect(await sides()).toEqual(before)
    expect(metric((await proxy.ops.inject('/metrics')).body, 'proxy_flag_source_up{source="unleash"}')).toBe(0)
    expect((await proxy.app.inject('/ready')).statusCode).toBe(200)
    expect(proxy.logs.lines.some((l) => l.msg === 'Unleash unavailable' && l.keeping === 'last flags from Unleash')).toBe(true)
  })

  it('a replica restarted while Unleash is down routes by the last state known to the replicas: writer side and retirement kept, ready', { timeout: 60_000 }, async () => {
    // Unleash was stopped above. The replica restarts.
    await replica!.close()
    replica = await startProxy(stubs, replicaEnv(key), { redis })
    await eventually('the restarted replica to load the last known state', async () => (await replica!.ops.inject({ url: '/admin/state', headers: admin })).json().flags.servedFrom === 'last-known')
    expect((await replica.ops.inject({ url: '/admin/state', headers: admin })).json().flags).toMatchObject({ kind: 'unleash', loaded: true, healthy: false })
    expect((await replica.app.inject('/ready')).statusCode).toBe(200)
    expect(await stageOf(replica)).toMatchObject({ readPercent: 100, writes: 'target', retired: true })
    // Retired: reads and writes go to the target, with no fallback to legacy; the file (0 %) is not used.
    for (const [method, id] of [['GET', 'restart-1'], ['POST', 'restart-2']] as const) {
      const res = await replica.app.inject({ method, url: '/api/movies', headers: { 'x-user-id': id }, ...(method === 'POST' ? { payload: { title: 'x' } } : {}) })
      expect([res.statusCode, res.headers['x-upstream']], method).toEqual([200, 'movies-service'])
    }
    const explained = (await replica.ops.inject({ url: '/admin/explain?path=/api/movies&method=GET&user_id=u1', headers: admin })).json()
    expect(explained).toMatchObject({ upstream: 'movies-service', fallback: 'none' })
  })

  it('a replica with no last known state while Unleash is down: /ready 503 naming why, split routes 503 with Retry-After', { timeout: 60_000 }, async () => {
    const blank = await startProxy(stubs, replicaEnv(`${key}:none`), { redis })
    try {
      await eventually('the replica to find no last known state', async () => /none in redis/.test((await blank.ops.inject({ url: '/admin/state', headers: admin })).json().flags.notLoaded ?? ''))
      expect((await blank.app.inject('/ready')).statusCode).toBe(503)
      const ready = await blank.ops.inject('/ready')
      expect(ready.statusCode).toBe(503)
      expect(ready.json().error).toMatch(/flags not loaded from .*: no answer from Unleash yet.* and no last known state \(none in redis test:flags-last-known:/)
      const read = await blank.app.inject({ url: '/api/movies', headers: { 'x-user-id': 'blank-1' } })
      expect([read.statusCode, read.json().code, read.headers['retry-after']]).toEqual([503, 'CA_ERR_FLAGS_NOT_LOADED', expect.any(String)])
    } finally {
      await blank.close()
    }
  })
})
