// Retirement's window (proxy/rollout/stages.ts) counts every parity check the monitor makes,
// the periodic ones included, not only the checks a stage call makes: a drift seen by a periodic
// check between two retire attempts restarts the window. Two real HTTP sides serve the parity
// contract over records held in memory; the route map checks every 5 s (its shortest interval);
// nobody calls the stage API while the stores flap.
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Fastify, { type FastifyInstance } from 'fastify'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { parityRoutes } from '../../../lib/parity/parity-routes.ts'
import { admin, flagsFileAt, startProxy, startStubs, type ProxyUnderTest, type Stubs } from '../proxy-harness.ts'

const WINDOW_SECONDS = 5

interface Side {
  app: FastifyInstance
  records: Array<{ id: number; title: string }>
}

function side(): Side {
  const s: Side = { app: Fastify(), records: [] }
  s.app.register(parityRoutes, { records: async () => s.records.map((d) => ({ id: String(d.id), document: d })), replication: async () => ({ lag_seconds: 0, unpublished_changes: 0, unapplied_messages: 0 }) })
  return s
}

const docs = () => Array.from({ length: 20 }, (_, i) => ({ id: i + 1, title: `Movie ${i + 1}` }))
let legacy: Side
let target: Side
let stubs: Stubs
let proxy: ProxyUnderTest

beforeAll(async () => {
  legacy = side()
  target = side()
  legacy.records = docs()
  target.records = docs()
  await Promise.all([legacy.app.listen({ port: 0, host: '127.0.0.1' }), target.app.listen({ port: 0, host: '127.0.0.1' })])
  stubs = await startStubs()
  const url = (s: Side) => `http://127.0.0.1:${(s.app.server.address() as { port: number }).port}`
  // The shipped route map with the movies route checked every 5 s.
  const routes = JSON.parse(readFileSync(new URL('../../../proxy/routes.json', import.meta.url), 'utf8'))
  const movies = routes.routes.find((r: { name: string }) => r.name === 'movies')
  movies.parity.intervalSeconds = 5
  // Only the window is under test here: these in-memory sides keep no write authority (test/proxy/migration-stages.test.ts does).
  delete movies.writer
  const routesFile = join(mkdtempSync(join(tmpdir(), 'retire-window-')), 'routes.json')
  writeFileSync(routesFile, JSON.stringify(routes))
  proxy = await startProxy(stubs, {
    MONOLITH_URL: url(legacy),
    MOVIES_SERVICE_URL: url(target),
    ROUTES_FILE: routesFile,
    FLAGS_FILE: flagsFileAt({ 'movies-migration': 100, 'movies-migration-writes': 100 }),
    RETIRE_WINDOW_SECONDS: String(WINDOW_SECONDS),
  })
})

afterAll(async () => {
  await proxy?.close()
  await Promise.all([legacy?.app.close(), target?.app.close(), stubs?.close()])
})

const retire = () => proxy.ops.inject({ method: 'POST', url: '/admin/routes/movies/retire', headers: admin, payload: { reason: 'catalog moved' } })
const cached = async () => (await proxy.ops.inject({ url: '/admin/routes/movies/parity?cached=true', headers: admin })).json()

it('a drift seen only by a periodic check restarts the window; retirement waits a whole clean window after it', async () => {
  // The window starts with this clean check.
  const first = await retire()
  expect([first.statusCode, first.json().code]).toEqual([409, 'CA_ERR_STAGE_GUARD_REFUSED'])
  expect(first.json().error).toMatch(/parity window/)
  const windowStart = Date.now()

  // The stores differ until a periodic check has seen it (no stage call in between), then agree again.
  target.records[4].title = 'Changed on the target'
  await expect.poll(async () => (await cached()).drift, { timeout: 20_000, interval: 200 }).toBe(1)
  target.records = docs()
  await expect.poll(async () => (await cached()).drift, { timeout: 20_000, interval: 200 }).toBe(0)
  // More than the window has passed since the first clean check (two periodic checks, 5 s apart, came
  // after it), but the drift in between restarted the window: refused.
  expect(Date.now() - windowStart).toBeGreaterThan(WINDOW_SECONDS * 1000)
  const early = await retire()
  expect([early.statusCode, early.json().code]).toEqual([409, 'CA_ERR_STAGE_GUARD_REFUSED'])
  expect(early.json().error).toMatch(/parity window guard: parity 0 for [0-4] s \(limit 5 s\)/)

  // A whole clean window later, retirement is accepted, with the window in its guard values.
  await expect.poll(async () => (await retire()).statusCode, { timeout: 30_000, interval: 1_000 }).toBe(200)
  const [entry] = (await proxy.ops.inject({ url: '/admin/ledger?route=movies', headers: admin })).json().entries
  expect(entry).toMatchObject({ stage: 'retire', guard: { drift: 0 } })
  expect(entry.guard.cleanForSeconds).toBeGreaterThanOrEqual(WINDOW_SECONDS)
}, 90_000)

it('the stage API shows the periodic checks without a stage call making one', async () => {
  const before = (await proxy.ops.inject({ url: '/admin/routes/movies/stage', headers: admin })).json().parity.checkedAt
  await expect.poll(async () => (await proxy.ops.inject({ url: '/admin/routes/movies/stage', headers: admin })).json().parity.checkedAt, { timeout: 20_000, interval: 500 }).not.toBe(before)
}, 30_000)
