// The services' /internal/* answer the edge proxy only (lib/http/internal-auth.ts): one hook
// guards every route registered under /internal (one added later, one inside a prefixed plugin,
// the real services' parity endpoint), by X-Internal-Token = INTERNAL_TOKEN; without a token
// configured, loopback clients only. The proxy's parity check sends the token and compares two
// real services started with it.
import type { FastifyInstance } from 'fastify'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createHttpApp } from '../../lib/http/create-app.ts'
import { INTERNAL_TOKEN_HEADER, internalCallHeaders } from '../../lib/http/internal-auth.ts'
import { createLogger } from '../../lib/logger.ts'
import { loadConfig as loadEventsConfig } from '../../events-service/config.ts'
import { moviesServiceApp, monolithApp } from '../helpers/apps.ts'
import { useTestDatabase } from '../helpers/infra.ts'
import { admin, startProxy, startStubs, type ProxyUnderTest, type Stubs } from '../proxy/proxy-harness.ts'

const TOKEN = 'internal-token-0123456789abcdef0123'
const UNAUTHORIZED = { error: 'this endpoint answers the edge proxy only (X-Internal-Token)' }

function appWith(internalToken: string | undefined): FastifyInstance {
  const app = createHttpApp({ logger: createLogger({ level: 'silent' }), bodyLimitBytes: 1024, internalToken })
  app.get('/internal/late', async () => ({ ok: true }))
  app.register(async (child) => child.post('/writer', async () => ({ ok: true })), { prefix: '/internal' })
  app.get('/api/public', async () => ({ ok: true }))
  return app
}

describe('the /internal guard', () => {
  it('with INTERNAL_TOKEN: every /internal route needs the header, whoever asks; other routes do not', async () => {
    const app = appWith(TOKEN)
    for (const [method, url] of [['GET', '/internal/late'], ['POST', '/internal/writer']] as const) {
      for (const headers of [{}, { [INTERNAL_TOKEN_HEADER]: 'wrong' }, { [INTERNAL_TOKEN_HEADER]: `${TOKEN}x` }, { authorization: `Bearer ${TOKEN}` }]) {
        const res = await app.inject({ method, url, headers })
        expect([res.statusCode, res.json()], `${method} ${url} ${JSON.stringify(headers)}`).toEqual([401, UNAUTHORIZED])
      }
      const ok = await app.inject({ method, url, headers: internalCallHeaders(TOKEN) })
      expect([ok.statusCode, ok.json()]).toEqual([200, { ok: true }])
    }
    expect((await app.inject('/api/public')).statusCode).toBe(200)
    await app.close()
  })

  it('without INTERNAL_TOKEN: loopback clients only', async () => {
    const app = appWith(undefined)
    expect((await app.inject({ url: '/internal/late', remoteAddress: '127.0.0.1' })).statusCode).toBe(200)
    expect((await app.inject({ url: '/internal/late', remoteAddress: '::1' })).statusCode).toBe(200)
    for (const remoteAddress of ['10.1.2.3', '::ffff:10.1.2.3', 'fd00::1']) {
      const res = await app.inject({ url: '/internal/late', remoteAddress })
      expect([res.statusCode, res.json()], remoteAddress).toEqual([401, UNAUTHORIZED])
    }
    expect((await app.inject({ url: '/api/public', remoteAddress: '10.1.2.3' })).statusCode).toBe(200)
    await app.close()
  })

  it('INTERNAL_TOKEN is refused when short, and named', () => {
    expect(() => loadEventsConfig({ INTERNAL_TOKEN: 'short' })).toThrow(/INTERNAL_TOKEN must be at least 24 characters/)
    expect(loadEventsConfig({ INTERNAL_TOKEN: TOKEN }).internalToken).toBe(TOKEN)
  })
})

describe('the real services and the proxy\'s parity check', () => {
  const testDb = useTestDatabase()
  let monolith: FastifyInstance
  let movies: FastifyInstance
  let stubs: Stubs
  const proxies: ProxyUnderTest[] = []
  const url = (app: FastifyInstance) => `http://127.0.0.1:${(app.server.address() as { port: number }).port}`

  beforeAll(async () => {
    monolith = monolithApp(testDb.db, undefined, { INTERNAL_TOKEN: TOKEN })
    movies = moviesServiceApp(testDb.db, { env: { INTERNAL_TOKEN: TOKEN } })
    await Promise.all([monolith.listen({ port: 0, host: '127.0.0.1' }), movies.listen({ port: 0, host: '127.0.0.1' })])
    stubs = await startStubs()
  })
  afterAll(async () => {
    for (const p of proxies) await p.close()
    await Promise.all([monolith?.close(), movies?.close(), stubs?.close()])
  })

  it('the services\' parity endpoint answers 401 without the token, even from loopback, and 200 with it', async () => {
    for (const app of [monolith, movies]) {
      const res = await fetch(`${url(app)}/internal/parity`)
      expect([res.status, await res.json()]).toEqual([401, UNAUTHORIZED])
      expect((await fetch(`${url(app)}/internal/parity`, { headers: internalCallHeaders(TOKEN) })).status).toBe(200)
    }
  })

  it('the proxy with the same INTERNAL_TOKEN compares them; with another, the check fails and says 401', async () => {
    const env = { MONOLITH_URL: url(monolith), MOVIES_SERVICE_URL: url(movies) }
    const good = await startProxy(stubs, { ...env, INTERNAL_TOKEN: TOKEN })
    const bad = await startProxy(stubs, { ...env, INTERNAL_TOKEN: 'another-token-0123456789abcdef' })
    proxies.push(good, bad)
    const parity = async (proxy: ProxyUnderTest) => (await proxy.ops.inject({ url: '/admin/routes/movies/parity', headers: admin })).json()
    expect(await parity(good)).toMatchObject({ available: true, drift: 0 })
    expect(await parity(bad)).toMatchObject({ available: false, reason: expect.stringMatching(/answered 401/) })
  })
})
