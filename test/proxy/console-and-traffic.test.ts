// The console's files as the proxy serves them (no token, strict CSP, content types, caching,
// nothing else opened up under /admin/) and the admin endpoints behind its table and charts:
// GET /admin/traffic (rates per route, side and upstream) and GET /admin/history?route=.
import { readdirSync } from 'node:fs'
import { setTimeout as sleep } from 'node:timers/promises'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { CONSOLE_ROOT } from '../../proxy/admin/console-routes.ts'
import { loadConfig } from '../../proxy/config.ts'
import { createFlagSource } from '../../proxy/flags/flag-sources.ts'
import { createMetrics } from '../../proxy/observability/metrics.ts'
import { closeUpstreams, createUpstreams } from '../../proxy/forward/upstreams.ts'
import { createTrafficHistory } from '../../proxy/admin/traffic-history.ts'
import { captureLogs } from '../helpers/logs.ts'
import { eventually } from '../helpers/poll.ts'
import { admin, flagsFileAt, startProxy, startStubs, type ProxyUnderTest, type Stubs } from './proxy-harness.ts'

let stubs: Stubs
beforeAll(async () => {
  stubs = await startStubs()
})
afterAll(() => stubs?.close())

describe('console files', () => {
  let proxy: ProxyUnderTest
  beforeAll(async () => {
    proxy = await startProxy(stubs)
  })
  afterAll(() => proxy?.close())

  it('serves every shipped file without the token, with its content type, a strict CSP and revalidation', async () => {
    const types: Record<string, RegExp> = { html: /^text\/html/, js: /^(text|application)\/javascript/, css: /^text\/css/, svg: /^image\/svg\+xml/ }
    const files = readdirSync(CONSOLE_ROOT)
    expect(files).toEqual(expect.arrayContaining(['index.html', 'console.js', 'console.css']))
    for (const file of [...files, '']) {
      const res = await proxy.ops.inject({ url: `/admin/${file}` })
      const ext = file.split('.').pop() || 'html'
      expect([file, res.statusCode, res.headers['content-type']]).toEqual([file, 200, expect.stringMatching(types[ext])])
      expect(res.headers['content-security-policy']).toBe("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
      expect(res.headers).toMatchObject({ 'x-content-type-options': 'nosniff', 'cache-control': 'no-cache', 'x-frame-options': 'DENY', 'referrer-policy': 'no-referrer' })
      expect(res.headers['x-upstream']).toBeUndefined()
      const again = await proxy.ops.inject({ url: `/admin/${file}`, headers: { 'if-none-match': String(res.headers.etag) } })
      expect(again.statusCode).toBe(304)
    }
    const head = await proxy.ops.inject({ method: 'HEAD', url: '/admin/' })
    expect([head.statusCode, head.body]).toEqual([200, ''])
  })

  it('has no inline script or style for the CSP to block', async () => {
    const html = (await proxy.ops.inject({ url: '/admin/' })).body
    expect(html).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>/)
    expect(html).not.toMatch(/<style|\sstyle=|\son[a-z]+=/i)
  })

  it('opens nothing else: the API, unknown files and other methods still need the token', async () => {
    for (const [method, url] of [
      ['GET', '/admin/state'],
      ['GET', '/admin/traffic'],
      ['GET', '/admin/history?route=movies'],
      ['GET', '/admin/nope.js'],
      ['GET', '/admin/../admin/state'],
      ['POST', '/admin/'],
      ['PUT', '/admin/console.js'],
    ] as const) {
      const res = await proxy.ops.inject({ method, url })
      expect([method, url, res.statusCode]).toEqual([method, url, 401])
    }
    expect((await proxy.ops.inject({ url: '/admin/nope.js', headers: admin })).statusCode).toBe(404)
  })

  it('is not served when the admin API is off', async () => {
    const bare = await startProxy(stubs, { ADMIN_TOKEN: '' })
    try {
      for (const url of ['/admin/', '/admin/console.js']) expect((await bare.ops.inject({ url })).statusCode).toBe(404)
    } finally {
      await bare.close()
    }
  })
})

describe('GET /admin/traffic and /admin/history', () => {
  let proxy: ProxyUnderTest
  beforeAll(async () => {
    proxy = await startProxy(stubs, { FLAGS_FILE: flagsFileAt(100), ADMIN_HISTORY_INTERVAL_MS: '200', BREAKER_RESET_TIMEOUT_MS: '60000' })
  })
  afterAll(() => proxy?.close())
  const get = async (url: string) => (await proxy.ops.inject({ url, headers: admin })).json()

  it('counts answers per route and side, 5xx, fallbacks and upstream failures', async () => {
    for (let i = 0; i < 4; i++) await proxy.app.inject({ url: '/api/movies', headers: { 'x-user-id': `u${i}` } })
    for (let i = 0; i < 3; i++) await proxy.app.inject({ url: '/api/users' })
    stubs.monolith.mode = 'fail'
    await proxy.app.inject({ url: '/api/users' })
    stubs.monolith.mode = 'ok'
    stubs.movies.mode = 'fail'
    try {
      for (let i = 0; i < 2; i++) await proxy.app.inject({ url: '/api/movies', headers: { 'x-user-id': `f${i}` } })
    } finally {
      stubs.movies.mode = 'ok'
    }
    const t = await get('/admin/traffic')
    const seconds = t.windowSeconds
    expect(seconds).toBeGreaterThan(0)
    const movies = t.routes.find((r: { name: string }) => r.name === 'movies')
    const dflt = t.routes.find((r: { name: string }) => r.name === 'default')
    const rate = (n: number) => expect.closeTo(n / seconds, 1)
    // Four answers from the target; two target failures answered by the monolith (fallbacks):
    // six requests meant for the target, two of them failed; the monolith answered two, fine.
    expect(movies).toMatchObject({ target: { rps: rate(6), errorRps: rate(2), errorPercent: 33.33 }, legacy: { rps: rate(2), errorRps: 0, errorPercent: 0 }, fallbackRps: rate(2), proxyRps: 0, shadow: { comparisons: 0, matchPercent: null } })
    expect(dflt).toMatchObject({ legacy: { rps: rate(4), errorRps: rate(1), errorPercent: 25 }, fallbackRps: 0 })
    expect(dflt.target).toBeUndefined()
    expect(t.upstreams['movies-service']).toMatchObject({ breaker: 'closed', failureRps: rate(2) })
    expect(t.upstreams.monolith).toMatchObject({ breaker: 'closed', failureRps: rate(1) })
  })

  it('keeps points per route: rollout, error shares, fallbacks, breakers', async () => {
    // The requests of the test above, once the next point is taken.
    await eventually('a point with the fallbacks', async () => (await get('/admin/history?route=movies')).points.some((p: { fallbackRps: number }) => p.fallbackRps > 0), 10_000)
    const h = await get('/admin/history?route=movies')
    expect(h).toMatchObject({ route: 'movies', intervalSeconds: 0.2, retentionSeconds: 3600 })
    const last = h.points.at(-1)
    expect(last).toMatchObject({ percent: 100, mismatchPercent: null, breakers: { legacy: 'closed', target: 'closed' } })
    expect(Date.parse(last.at)).toBeLessThanOrEqual(Date.now())
    expect(h.points.some((p: { targetRps: number }) => p.targetRps > 0)).toBe(true)
    const plain = await get('/admin/history?route=events')
    expect(plain.points.at(-1)).toMatchObject({ percent: null, targetRps: null, targetErrorPercent: null, breakers: { legacy: 'closed' } })
  })

  it('answers 400 without a route and 404 for an unknown one', async () => {
    const none = await proxy.ops.inject({ url: '/admin/history', headers: admin })
    expect([none.statusCode, none.json().error]).toEqual([400, 'route is required, e.g. /admin/history?route=movies'])
    const unknown = await proxy.ops.inject({ url: '/admin/history?route=series', headers: admin })
    expect([unknown.statusCode, unknown.json().error]).toEqual([404, 'no route named "series" (routes: movies, movies-health, events, default)'])
  })

  it('takes a reason with a rollout change and logs it', async () => {
    const put = (payload: object) => proxy.ops.inject({ method: 'PUT', url: '/admin/routes/movies/rollout', headers: admin, payload })
    expect((await put({ percent: 100, reason: 'all good on the dashboards' })).statusCode).toBe(200)
    expect(proxy.logs.lines.find((l) => (l.ledger as { to?: number } | undefined)?.to === 100)?.ledger).toMatchObject({ actor: 'admin', reason: 'all good on the dashboards' })
    const long = await put({ percent: 100, reason: 'x'.repeat(501) })
    expect([long.statusCode, long.json().error]).toEqual([400, expect.stringMatching(/reason/)])
  })
})

describe('traffic history', () => {
  /** The history's inputs as app.ts builds them, from the shipped route map. */
  async function inputs() {
    const config = loadConfig({ FLAGS_FILE: flagsFileAt(30) })
    const logger = captureLogs().logger
    const metrics = createMetrics()
    const pool = { connections: 1, connectTimeoutMs: 1_000, responseTimeoutMs: 1_000, streamIdleTimeoutMs: 1_000 }
    const breaker = { volumeThreshold: 10, errorPercent: 50, resetTimeoutMs: 1_000, consecutiveFailures: 5, windowMs: 1_000 }
    const upstreams = createUpstreams(config.routeMap.upstreams, { pool, breaker }, metrics, logger)
    const flags = await createFlagSource(config, logger)
    return { deps: { routes: config.routeMap.routes, upstreams, flags, metrics, logger }, close: async () => (await closeUpstreams(upstreams), await flags.close()) }
  }

  it('keeps at most retention / interval points per route, and stops taking them when stopped', async () => {
    const { deps, close } = await inputs()
    try {
      const history = await createTrafficHistory({ intervalMs: 100, retentionMs: 1_000, rateWindowMs: 1_000 }, deps)
      try {
        await eventually('ten points', () => history.history('movies').length === 10, 10_000)
        await sleep(500) // points keep coming; the oldest go
        expect(history.history('movies')).toHaveLength(10)
        expect(history.history('movies').at(-1)).toMatchObject({ percent: 30, legacyRps: 0, targetRps: 0 })
      } finally {
        history.stop()
      }
      const last = history.history('movies').at(-1)
      await sleep(300)
      expect(history.history('movies').at(-1)).toBe(last)
    } finally {
      await close()
    }
  })

  it('refuses options that would not bound it', async () => {
    const { deps, close } = await inputs()
    try {
      await expect(createTrafficHistory({ intervalMs: 0, retentionMs: 1_000, rateWindowMs: 1_000 }, deps)).rejects.toThrow(/traffic history: invalid options: \/intervalMs/)
    } finally {
      await close()
    }
  })
})
