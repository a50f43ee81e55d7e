// /admin/explain is the proxy's own decision (issue 23): for a table of paths — encoded,
// reserved, prefixes, catch-all — what explain says matches what a real request gets
// (app.inject), because explain sends the path through the same router, guards and decision.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { admin, flagsFileAt, startProxy, startStubs, type ProxyUnderTest, type Stubs } from './proxy-harness.ts'

let stubs: Stubs
let proxy: ProxyUnderTest

beforeAll(async () => {
  stubs = await startStubs()
  proxy = await startProxy(stubs, { FLAGS_FILE: flagsFileAt(50) })
})
afterAll(async () => {
  await proxy?.close()
  await stubs?.close()
})

const PATHS = [
  '/api/movies', '/api/movies/', '/api/movies/42', '/api/movies?id=1', '/api/m%6Fvies', '/api/%6Dovies/7', '/api/movies%2F42',
  '/api/moviesX', '/api/MOVIES', '/api/movies/health', '/api/movies/health/deep', '/api/movies/%68ealth',
  '/api/events', '/api/events/movie', '/api/eventsX', '/api/users', '/', '/anything/else', '/api',
  '/health', '/health/', '/ready', '/metrics', '/admin', '/admin/', '/admin/unknown', '/%61dmin/state', '/documentation/json',
]

describe('/admin/explain agrees with app.inject', () => {
  for (const path of PATHS) {
    it(`for ${path}`, async () => {
      for (const user of ['alice', 'bob', 'carol']) {
        for (const method of ['GET', 'POST']) {
          const explained = await proxy.ops.inject({ url: `/admin/explain?path=${encodeURIComponent(path)}&user_id=${user}&method=${method}`, headers: admin })
          expect(explained.statusCode).toBe(200)
          const body = explained.json()
          const real = await proxy.app.inject({ method: method as 'GET', url: path, headers: { 'x-user-id': user }, ...(method === 'POST' ? { payload: {} } : {}) })
          const answeredBy = (real.headers['x-upstream'] as string | undefined) ?? 'proxy'
          expect({ path, method, upstream: body.upstream }).toEqual({ path, method, upstream: answeredBy })
          if (answeredBy !== 'proxy') expect(body.reason).toBe(real.headers['x-route-reason'])
          if (answeredBy === 'proxy') expect(body.status).toBe(real.statusCode)
        }
      }
    })
  }

  it('reports the proxy\'s own paths as the proxy\'s, never as the monolith\'s', async () => {
    const health = (await proxy.ops.inject({ url: '/admin/explain?path=/health', headers: admin })).json()
    expect(health).toMatchObject({ route: null, upstream: 'proxy', status: 200 })
    expect(health.why).toMatch(/the proxy answers GET \/health itself/)
  })

  it('gives the decision in words, from the decision itself', async () => {
    const events = (await proxy.ops.inject({ url: '/admin/explain?path=/api/events/x', headers: admin })).json()
    expect(events).toMatchObject({ route: 'events', upstream: 'events-service', reason: 'default', why: 'route "events" always goes to events-service' })
    const anonymous = (await proxy.ops.inject({ url: '/admin/explain?path=/api/movies', headers: admin })).json()
    expect(anonymous).toMatchObject({ route: 'movies', upstream: null })
  })
})
