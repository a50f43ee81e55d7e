// The stages of a route's migration (proxy/rollout/stages.ts, proxy/routing/recent-writes.ts):
// the writer side from the flags file and PUT /admin/routes/:name/writes, guarded by the parity
// check (drift, lag, changes legacy has not applied), read-your-writes, retirement. Two real HTTP
// sides serve the parity contract over records held in memory and answer /api/movies naming
// themselves; the proxy runs in process with a flags file of its own (no Redis: marks in process).
// Each side also keeps a write authority as the real stores do (lib/replication/write-authority.ts,
// tested against PostgreSQL in test/replication/write-authority.test.ts): a write reaching the side
// that is not the writer is refused (421 not-writer); a release hands the writes to the other side,
// which takes them up `takeUpMs` later (the stream's delay).
import { readFileSync } from 'node:fs'
import Fastify, { type FastifyInstance } from 'fastify'
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { parityRoutes } from '../../lib/parity/parity-routes.ts'
import type { LedgerEntry } from '../../proxy/rollout/ledger.ts'
import { createRedis } from '../../lib/redis.ts'
import { captureLogs } from '../helpers/logs.ts'
import { redisUrl } from '../helpers/infra.ts'
import { metric } from '../helpers/metrics.ts'
import { admin, flagsFileAt, startProxy, startStubs, writeFlagsFile, type ProxyUnderTest, type Stubs } from './proxy-harness.ts'

interface Side {
  app: FastifyInstance
  records: Array<{ id: number; title: string }>
  replication: Record<string, unknown>
  /** Answer /api/movies with 500. */
  failing: boolean
  writer: boolean
  epoch: number
  conflicts: number
  /** Writes this side took. */
  writes: number
  changedAt: string
  other?: Side
}

/** How long the side gaining the writes takes to apply the handover (the stream's delay). */
let takeUpMs = 50

function side(name: string, writer: boolean): Side {
  const s: Side = { app: Fastify(), records: [], replication: { lag_seconds: 0, unpublished_changes: 0, unapplied_messages: 0 }, failing: false, writer, epoch: writer ? 1 : 0, conflicts: 0, writes: 0, changedAt: new Date().toISOString() }
  s.app.register(parityRoutes, { records: async () => s.records.map((d) => ({ id: String(d.id), document: d })), replication: async () => s.replication })
  s.app.all('/api/movies', async (request, reply) => {
    if (s.failing) return reply.code(500).send({ error: 'down' })
    if (request.method === 'POST' && !s.writer) return reply.code(421).header('x-store-refused', 'not-writer').send({ error: 'not the writer' })
    if (request.method === 'POST') s.writes++
    return { upstream: name, method: request.method }
  })
  const state = () => ({ store: name, changedAt: s.changedAt, writer: s.writer, epoch: s.epoch, pendingEpoch: null, handedTo: null, catchingUp: false, conflicts: s.conflicts, replicating: true })
  s.app.get('/internal/writer', async () => state())
  s.app.post<{ Body: { expectEpoch?: number } }>('/internal/writer/release', async (request) => {
    if (!s.writer || (request.body?.expectEpoch !== undefined && request.body.expectEpoch !== s.epoch)) return { released: false, ...state() }
    s.writer = false
    s.epoch++
    s.changedAt = new Date().toISOString()
    const epoch = s.epoch
    setTimeout(() => Object.assign(s.other!, { writer: true, epoch, changedAt: new Date().toISOString() }), takeUpMs)
    return { released: true, ...state() }
  })
  return s
}

const docs = () => Array.from({ length: 20 }, (_, i) => ({ id: i + 1, title: `Movie ${i + 1}` }))
let legacy: Side
let target: Side
let stubs: Stubs
let proxy: ProxyUnderTest
let flagsFile: string

beforeAll(async () => {
  legacy = side('monolith', true)
  target = side('movies-service', false)
  legacy.other = target
  target.other = legacy
  await Promise.all([legacy.app.listen({ port: 0, host: '127.0.0.1' }), target.app.listen({ port: 0, host: '127.0.0.1' })])
  stubs = await startStubs()
  const url = (s: Side) => `http://127.0.0.1:${(s.app.server.address() as { port: number }).port}`
  flagsFile = flagsFileAt({ 'movies-migration': 0, 'movies-migration-writes': 0 })
  proxy = await startProxy(stubs, { MONOLITH_URL: url(legacy), MOVIES_SERVICE_URL: url(target), FLAGS_FILE: flagsFile, WRITES_SWITCH_MAX_LAG_SECONDS: '3', RETIRE_WINDOW_SECONDS: '0', ALLOW_BACKEND_OVERRIDE: 'true', WRITES_SWITCH_HOLD_MS: '5000' })
})

afterAll(async () => {
  await proxy?.close()
  await Promise.all([legacy?.app.close(), target?.app.close(), stubs?.close()])
})

beforeEach(() => {
  legacy.records = docs()
  target.records = docs()
  legacy.replication = { lag_seconds: 0, unpublished_changes: 0, unapplied_messages: 0 }
  target.replication = { lag_seconds: 0, unpublished_changes: 0, unapplied_messages: 0 }
  legacy.failing = target.failing = false
  legacy.conflicts = target.conflicts = 0
  takeUpMs = 50
})

const call = (method: 'GET' | 'POST', user: string, headers: Record<string, string> = {}) =>
  proxy.app.inject({ method, url: '/api/movies', headers: { 'x-user-id': user, ...headers }, ...(method === 'POST' ? { payload: { title: 'x' } } : {}) })
const switchWrites = (payload: object) => proxy.ops.inject({ method: 'PUT', url: '/admin/routes/movies/writes', headers: admin, payload })
const stage = async () => (await proxy.ops.inject({ url: '/admin/routes/movies/stage', headers: admin })).json()
const ledger = async (): Promise<LedgerEntry[]> => (await proxy.ops.inject({ url: '/admin/ledger?route=movies', headers: admin })).json().entries
const counter = async (name: string) => metric((await proxy.ops.inject({ url: '/metrics' })).body, `${name}{route="movies"}`) ?? 0
async function setReads(percent: number) {
  const res = await proxy.ops.inject({ method: 'PUT', url: '/admin/routes/movies/rollout', headers: admin, payload: { percent, reason: 'test' } })
  expect(res.statusCode).toBe(200)
}
async function forceWrites(side: 'legacy' | 'target') {
  expect((await switchWrites({ side, reason: 'test setup', force: true })).statusCode).toBe(200)
}

describe('the writer side', () => {
  it('sends every write to the writer side, reads by the read flag, whatever X-Backend says', async () => {
    await setReads(100)
    await forceWrites('legacy')
    const write = await call('POST', 'u-writer-1', { 'x-backend': 'target' })
    expect([write.statusCode, write.headers['x-upstream'], write.headers['x-route-reason']]).toEqual([200, 'monolith', 'writes'])
    expect((await call('GET', 'u-writer-2')).headers['x-upstream']).toBe('movies-service')
    const explained = (await proxy.ops.inject({ url: '/admin/explain?path=/api/movies&method=POST&user_id=u1', headers: admin })).json()
    expect(explained).toMatchObject({ route: 'movies', upstream: 'monolith', reason: 'writes', fallback: 'none' })
    expect(explained.why).toMatch(/writes of route "movies" go to legacy \(movies-migration-writes\)/)
  })

  it('switches through the admin API into the flags file, recorded with actor, reason and guard values', async () => {
    await forceWrites('legacy')
    const res = await switchWrites({ side: 'target', reason: 'catalog-db caught up' })
    expect(res.statusCode).toBe(200)
    expect(res.json()).toMatchObject({ route: 'movies', writes: 'target', parity: { drift: 0, lagSeconds: 0 } })
    const doc = JSON.parse(readFileSync(flagsFile, 'utf8'))
    expect(doc.featureStrategies.find((s: { featureName: string }) => s.featureName === 'movies-migration-writes').parameters.rollout).toBe('100')
    expect((await call('POST', 'u-writer-3')).headers['x-upstream']).toBe('movies-service')
    const [entry] = await ledger()
    expect(entry).toMatchObject({ stage: 'writes', fromSide: 'legacy', toSide: 'target', actor: 'admin', reason: 'catalog-db caught up', guard: { drift: 0, lagSeconds: 0, unreplicatedToLegacy: 0 } })
    expect(entry.forced).toBeUndefined()
    expect(await counter('proxy_writes_side')).toBe(1)
  })

  it('follows a hand edit of the flags file', async () => {
    await forceWrites('target')
    writeFlagsFile(flagsFile, { 'movies-migration': 0, 'movies-migration-writes': 0 })
    await expect.poll(async () => (await call('POST', 'u-writer-4')).headers['x-upstream'], { timeout: 5_000 }).toBe('monolith')
  })

  it('is refused while the stores differ (409 naming the guard and its value), unless forced with a reason', async () => {
    await forceWrites('legacy')
    target.records.pop()
    legacy.records[3].title = 'Changed'
    const refused = await switchWrites({ side: 'target', reason: 'go' })
    expect(refused.statusCode).toBe(409)
    expect(refused.json()).toMatchObject({ code: 'CA_ERR_STAGE_GUARD_REFUSED' })
    expect(refused.json().error).toMatch(/parity drift guard: 2 \(2 records differ, 0 \+ 0 changes in flight\) \(limit 0\)/)
    expect((await stage()).writes).toBe('legacy')
    expect((await switchWrites({ side: 'target', force: true })).statusCode).toBe(400) // forcing needs a reason
    const forced = await switchWrites({ side: 'target', reason: 'incident 42: legacy store is read-only', force: true })
    expect(forced.statusCode).toBe(200)
    expect((await ledger())[0]).toMatchObject({ stage: 'writes', toSide: 'target', forced: true, reason: 'incident 42: legacy store is read-only', guard: { drift: 2 } })
  })

  it('a write during the handover waits for the store that takes it, and lands on exactly one side', async () => {
    await forceWrites('legacy')
    takeUpMs = 2_000 // the gaining store applies the handover only after a while
    const [legacyWrites, targetWrites] = [legacy.writes, target.writes]
    const switching = switchWrites({ side: 'target', reason: 'clients keep writing' })
    // Released (after the guards' parity check): legacy refuses, the target has not taken the writes up yet; the write waits.
    await expect.poll(() => legacy.writer, { timeout: 10_000, interval: 10 }).toBe(false)
    expect(target.writer).toBe(false)
    const write = await call('POST', 'held-1')
    expect([write.statusCode, write.headers['x-upstream'], write.headers['x-route-reason']]).toEqual([200, 'movies-service', 'writes'])
    expect([legacy.writes - legacyWrites, target.writes - targetWrites]).toEqual([0, 1])
    expect((await switching).statusCode).toBe(200)
    expect((await ledger())[0]).toMatchObject({ stage: 'writes', toSide: 'target', guard: { heldMs: expect.any(Number), epoch: target.epoch, handover: 'settled' } })
    expect((await stage()).writers).toMatchObject({ desired: 'target', writer: 'target', handover: 'settled' })
  })

  it('sends a write the flags still send to the old writer to the store that writes now', async () => {
    await forceWrites('target')
    // The flag says legacy (a replica that has not seen the switch, a routing slip); the stores decide.
    writeFlagsFile(flagsFile, { 'movies-migration': 0, 'movies-migration-writes': 0 })
    target.writer = true
    legacy.writer = false
    const write = await proxy.app.inject({ method: 'POST', url: '/api/movies', headers: { 'x-user-id': 'slip-1' }, payload: { title: 'x' } })
    expect(write.statusCode).toBe(200)
    await forceWrites('legacy')
  })

  it('is refused while a store has open replication conflicts, even forced', async () => {
    await forceWrites('legacy')
    target.conflicts = 2
    await proxy.ops.inject({ url: '/admin/routes/movies/writers', headers: admin })
    const refused = await switchWrites({ side: 'target', reason: 'go', force: true })
    expect([refused.statusCode, refused.json().error]).toEqual([409, expect.stringMatching(/replication conflicts guard: 2 \(limit 0\)/)])
    expect((await stage()).writes).toBe('legacy')
    expect(await counter('migration_replication_conflicts')).toBe(2)
  })

  it('is refused while replication lags more than the bound', async () => {
    await forceWrites('legacy')
    legacy.replication = { lag_seconds: 12, unpublished_changes: 4, unapplied_messages: 0 }
    const refused = await switchWrites({ side: 'target', reason: 'go' })
    expect([refused.statusCode, refused.json().code]).toEqual([409, 'CA_ERR_STAGE_GUARD_REFUSED'])
    expect(refused.json().error).toMatch(/replication lag guard: 12 s \(limit 3 s\)/)
  })

  it('goes back to legacy only once legacy has applied everything the target wrote', async () => {
    await forceWrites('target')
    target.replication = { lag_seconds: 0, unpublished_changes: 3, unapplied_messages: 0 }
    legacy.replication = { lag_seconds: 1, unpublished_changes: 0, unapplied_messages: 2 }
    const refused = await switchWrites({ side: 'legacy', reason: 'back' })
    expect(refused.statusCode).toBe(409)
    expect(refused.json().error).toMatch(/unreplicated changes guard: 5 changes of the target not applied on legacy \(limit 0\)/)
    expect((await stage()).writes).toBe('target')
    target.replication = { lag_seconds: 0, unpublished_changes: 0, unapplied_messages: 0 }
    legacy.replication = { lag_seconds: 0, unpublished_changes: 0, unapplied_messages: 0 }
    const accepted = await switchWrites({ side: 'legacy', reason: 'back' })
    expect([accepted.statusCode, accepted.json().writes]).toEqual([200, 'legacy'])
    expect((await ledger())[0]).toMatchObject({ fromSide: 'target', toSide: 'legacy', guard: { unreplicatedToLegacy: 0, drift: 0 } })
  })

  it('answers 404 for an unknown route and 409 for a route without a target', async () => {
    expect((await proxy.ops.inject({ method: 'PUT', url: '/admin/routes/nope/writes', headers: admin, payload: { side: 'target', reason: 'x' } })).statusCode).toBe(404)
    const plain = await proxy.ops.inject({ method: 'PUT', url: '/admin/routes/events/writes', headers: admin, payload: { side: 'target', reason: 'x' } })
    expect([plain.statusCode, plain.json().code]).toEqual([409, 'CA_ERR_ROUTE_HAS_NO_TARGET'])
    expect((await switchWrites({ side: 'sideways', reason: 'x' })).statusCode).toBe(400)
  })
})

describe('read-your-writes', () => {
  it("sends a writer's reads to the writer side until the other store has the write, counted", async () => {
    await setReads(0)
    await forceWrites('target')
    const before = await counter('proxy_read_your_writes_total')
    expect((await call('POST', 'ryw-1')).headers['x-upstream']).toBe('movies-service')
    // The write is not on legacy yet: the legacy store lags.
    legacy.replication = { lag_seconds: 2, unpublished_changes: 0, unapplied_messages: 1 }
    await proxy.ops.inject({ url: '/admin/routes/movies/parity', headers: admin })
    const read = await call('GET', 'ryw-1')
    expect([read.headers['x-upstream'], read.headers['x-route-reason']]).toEqual(['movies-service', 'read-your-writes'])
    expect((await call('GET', 'ryw-2')).headers['x-upstream']).toBe('monolith') // another client reads by the flag
    expect(await counter('proxy_read_your_writes_total')).toBe(before + 1)
    const explained = (await proxy.ops.inject({ url: '/admin/explain?path=/api/movies&user_id=ryw-1', headers: admin })).json()
    expect(explained).toMatchObject({ upstream: 'movies-service', reason: 'read-your-writes' })
    // A parity check that started after the write finds nothing left to replicate: reads follow the flag again.
    legacy.replication = { lag_seconds: 0, unpublished_changes: 0, unapplied_messages: 0 }
    await proxy.ops.inject({ url: '/admin/routes/movies/parity', headers: admin })
    const after = await call('GET', 'ryw-1')
    expect([after.headers['x-upstream'], after.headers['x-route-reason']]).toEqual(['monolith', 'flag'])
  })
})

describe('two replicas sharing Redis and the flags file', () => {
  it("switch the writer side together and share read-your-writes marks", async () => {
    const redis = createRedis(redisUrl(), captureLogs().logger, { commandTimeoutMs: 2_000 })
    const prefix = `ryw-test-${process.pid}-${Date.now()}:`
    const env = { READ_YOUR_WRITES_KEY_PREFIX: prefix, LEDGER_REDIS_KEY: `${prefix}ledger` }
    const url = (s: Side) => `http://127.0.0.1:${(s.app.server.address() as { port: number }).port}`
    const file = flagsFileAt({ 'movies-migration': 0, 'movies-migration-writes': 0 })
    const replicas = await Promise.all([0, 1].map(() => startProxy(stubs, { ...env, MONOLITH_URL: url(legacy), MOVIES_SERVICE_URL: url(target), FLAGS_FILE: file }, { redis })))
    try {
      const [a, b] = replicas
      expect((await a.ops.inject({ method: 'PUT', url: '/admin/routes/movies/writes', headers: admin, payload: { side: 'target', reason: 'both replicas' } })).statusCode).toBe(200)
      const post = () => b.app.inject({ method: 'POST', url: '/api/movies', headers: { 'x-user-id': 'shared-1' }, payload: {} })
      await expect.poll(async () => (await post()).headers['x-upstream'], { timeout: 5_000 }).toBe('movies-service')
      legacy.replication = { lag_seconds: 2, unpublished_changes: 0, unapplied_messages: 1 }
      // Written through b, read through a: a knows from Redis.
      const read = await a.app.inject({ url: '/api/movies', headers: { 'x-user-id': 'shared-1' } })
      expect([read.headers['x-upstream'], read.headers['x-route-reason']]).toEqual(['movies-service', 'read-your-writes'])
      expect((await a.app.inject({ url: '/api/movies', headers: { 'x-user-id': 'shared-2' } })).headers['x-upstream']).toBe('monolith')
      expect(await redis.pttl(`${prefix}movies:shared-1`)).toBeGreaterThan(0) // the mark expires by itself
      // The next switch right after, through the other replica: the stores hand back.
      legacy.replication = { lag_seconds: 0, unpublished_changes: 0, unapplied_messages: 0 }
      const back = await b.ops.inject({ method: 'PUT', url: '/admin/routes/movies/writes', headers: admin, payload: { side: 'legacy', reason: 'and back' } })
      expect([back.statusCode, back.json().writes]).toEqual([200, 'legacy'])
      const write = await a.app.inject({ method: 'POST', url: '/api/movies', headers: { 'x-user-id': 'shared-3' }, payload: {} })
      expect(write.headers['x-upstream']).toBe('monolith')
    } finally {
      await Promise.all(replicas.map((r) => r.close()))
      await redis.quit()
    }
  })
})

describe('retirement', () => {
  it('needs reads at 100 % and writes on the target; then legacy is not used, not even as a fallback', async () => {
    await setReads(50)
    await forceWrites('target')
    const early = await proxy.ops.inject({ method: 'POST', url: '/admin/routes/movies/retire', headers: admin, payload: { reason: 'done' } })
    expect([early.statusCode, early.json().code]).toEqual([409, 'CA_ERR_STAGE_REFUSED'])
    expect(early.json().error).toMatch(/reads of route "movies" are at 50 %/)
    await setReads(100)
    target.records.pop()
    const drift = await proxy.ops.inject({ method: 'POST', url: '/admin/routes/movies/retire', headers: admin, payload: { reason: 'done' } })
    expect(drift.json().error).toMatch(/parity drift guard: 1/)
    target.records = docs()
    const retired = await proxy.ops.inject({ method: 'POST', url: '/admin/routes/movies/retire', headers: admin, payload: { reason: 'catalog moved' } })
    expect([retired.statusCode, retired.json().retired]).toEqual([200, true])
    expect((await ledger())[0]).toMatchObject({ stage: 'retire', actor: 'admin', reason: 'catalog moved', guard: { drift: 0 } })
    // The target fails: a read is not answered by legacy any more.
    target.failing = true
    const read = await call('GET', 'retired-1', { 'x-backend': 'legacy' })
    expect([read.statusCode, read.headers['x-upstream']]).toEqual([500, 'movies-service'])
    const back = await switchWrites({ side: 'legacy', reason: 'oops' })
    expect([back.statusCode, back.json().code]).toEqual([409, 'CA_ERR_ROUTE_RETIRED'])
  })
})
