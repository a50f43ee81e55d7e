// The proxy's parity check of a split route (proxy/rollout/parity/) against two real HTTP sides serving
// the parity contract (lib/parity/parity-routes.ts) over records held in memory: counts,
// missing ids on either side, differing ids with their JSON paths, the gauges, and a route
// without a parity endpoint that says so instead of answering 0.
import Fastify, { type FastifyInstance } from 'fastify'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { parityRoutes } from '../../../lib/parity/parity-routes.ts'
import { metric } from '../../helpers/metrics.ts'
import { admin, startProxy, startStubs, type ProxyUnderTest, type Stubs } from '../proxy-harness.ts'

interface Doc {
  id: number
  title: string
  genres: string[]
}

function side(records: Doc[], replication: Record<string, unknown>): FastifyInstance {
  const app = Fastify()
  app.register(parityRoutes, { records: async () => records.map((d) => ({ id: String(d.id), document: d })), replication: async () => replication })
  return app
}

const docs = (n: number): Doc[] => Array.from({ length: n }, (_, i) => ({ id: i + 1, title: `Movie ${i + 1}`, genres: ['Drama'] }))
let legacyRecords: Doc[]
let targetRecords: Doc[]
let legacy: FastifyInstance
let target: FastifyInstance
let stubs: Stubs
let proxy: ProxyUnderTest

beforeAll(async () => {
  legacyRecords = docs(300)
  targetRecords = docs(300)
  legacy = side(legacyRecords, { lag_seconds: 0.5 })
  target = side(targetRecords, { lag_seconds: 2 })
  await Promise.all([legacy.listen({ port: 0, host: '127.0.0.1' }), target.listen({ port: 0, host: '127.0.0.1' })])
  stubs = await startStubs()
  const url = (app: FastifyInstance) => `http://127.0.0.1:${(app.server.address() as { port: number }).port}`
  proxy = await startProxy(stubs, { MONOLITH_URL: url(legacy), MOVIES_SERVICE_URL: url(target) })
})

afterAll(async () => {
  await proxy?.close()
  await Promise.all([legacy?.close(), target?.close(), stubs?.close()])
})

const parity = async (route = 'movies') => {
  const res = await proxy.ops.inject({ method: 'GET', url: `/admin/routes/${route}/parity`, headers: admin })
  return { status: res.statusCode, body: res.json() }
}
const gauge = async (name: string) => metric((await proxy.ops.inject({ method: 'GET', url: '/metrics' })).body, `${name}{route="movies"}`)

describe('GET /admin/routes/:name/parity', () => {
  it('two equal stores: drift 0, both counts, the larger lag; the gauges say so', async () => {
    const { status, body } = await parity()
    expect(status).toBe(200)
    expect(body).toMatchObject({ route: 'movies', available: true, drift: 0, legacy: { upstream: 'monolith', count: 300 }, target: { upstream: 'movies-service', count: 300 } })
    expect(body).toMatchObject({ missingOnLegacy: [], missingOnTarget: [], differing: [], lagSeconds: 2 })
    expect(await gauge('migration_data_drift')).toBe(0)
    expect(await gauge('migration_replication_lag_seconds')).toBe(2)
    // ?cached=true answers the last check without comparing again.
    const cached = await proxy.ops.inject({ method: 'GET', url: '/admin/routes/movies/parity?cached=true', headers: admin })
    expect([cached.statusCode, cached.json().checkedAt]).toEqual([200, body.checkedAt])
    expect((await proxy.ops.inject({ method: 'GET', url: '/admin/routes/movies/parity?cached=yes', headers: admin })).statusCode).toBe(400)
    expect(await gauge('migration_parity_check_ok')).toBe(1)
  })

  it('names the ids missing on each side and the ids that differ, with their JSON paths', async () => {
    targetRecords.splice(targetRecords.findIndex((d) => d.id === 7), 1) // missing on the target
    legacyRecords.splice(legacyRecords.findIndex((d) => d.id === 250), 1) // missing on the legacy
    targetRecords.push({ id: 301, title: 'Only on target', genres: [] }) // missing on the legacy
    targetRecords.find((d) => d.id === 42)!.title = 'Changed'
    targetRecords.find((d) => d.id === 99)!.genres = ['Drama', 'Comedy']
    const { body } = await parity()
    expect(body).toMatchObject({ available: true, drift: 5, legacy: { count: 299 }, target: { count: 300 }, missing: { onLegacy: 2, onTarget: 1 }, differingCount: 2 })
    expect(body.missingOnTarget).toEqual(['7'])
    expect(body.missingOnLegacy).toEqual(['250', '301'])
    expect(body.differing).toEqual([
      { id: '42', paths: ['$.title'] },
      { id: '99', paths: ['$.genres[1]'] },
    ])
    expect(await gauge('migration_data_drift')).toBe(5)
  })

  it('bounds the lists, never the counts', async () => {
    for (let i = 1000; i < 1200; i++) legacyRecords.push({ id: i, title: `Only legacy ${i}`, genres: [] })
    const { body } = await parity()
    expect(body.missing.onTarget).toBe(201)
    expect(body.missingOnTarget).toHaveLength(50)
    expect(body.drift).toBe(205)
  })

  it('a side that does not answer: available false with the reason, gauges NaN (unknown, not 0)', async () => {
    await target.close()
    const { status, body } = await parity()
    expect(status).toBe(200)
    expect(body).toMatchObject({ route: 'movies', available: false, drift: null, lagSeconds: null })
    expect(body.reason).toMatch(/movies-service/)
    expect(await gauge('migration_data_drift')).toBeNaN()
    expect(await gauge('migration_parity_check_ok')).toBe(0)
  })

  it('a route without a parity endpoint says so', async () => {
    const { body } = await parity('events')
    expect(body).toMatchObject({ route: 'events', available: false, drift: null })
    expect(body.reason).toMatch(/declares no parity endpoint/)
    expect((await parity('nope')).status).toBe(404)
  })

  it('the services\' /internal endpoints are never reachable through the proxy', async () => {
    for (const url of ['/internal/parity', '/internal', '/internal/parity?buckets=4']) {
      const res = await proxy.app.inject({ method: 'GET', url })
      expect(res.statusCode, url).toBe(404)
    }
  })

  it('needs the admin token', async () => {
    const res = await proxy.ops.inject({ method: 'GET', url: '/admin/routes/movies/parity' })
    expect(res.statusCode).toBe(401)
  })
})
