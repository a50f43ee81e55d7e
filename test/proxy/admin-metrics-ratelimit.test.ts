// The admin API (bearer auth, state, rollout validation, explain), the /metrics contract and
// rate limiting: per process without Redis, shared by two proxies through the real Redis,
// and counting alone (each failed sync counted) when Redis is unreachable.
import { randomUUID } from 'node:crypto'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createRedis } from '../../lib/redis.ts'
import { redisUrl } from '../helpers/infra.ts'
import { captureLogs } from '../helpers/logs.ts'
import { startTcpForwarder, type TcpForwarder } from '../helpers/tcp-forwarder.ts'
import { metric } from '../helpers/metrics.ts'
import { eventually } from '../helpers/poll.ts'
import { ADMIN_TOKEN, admin, flagsFileAt, startProxy, startStubs, type ProxyUnderTest, type Stubs } from './proxy-harness.ts'

let stubs: Stubs
beforeAll(async () => {
  stubs = await startStubs()
})
afterAll(() => stubs?.close())

describe('admin API', () => {
  let proxy: ProxyUnderTest
  beforeAll(async () => {
    proxy = await startProxy(stubs, { FLAGS_FILE: flagsFileAt(30) })
  })
  afterAll(() => proxy?.close())

  it('needs the bearer token', async () => {
    for (const headers of [{}, { authorization: 'Bearer wrong-token-0123456789' }, { authorization: ADMIN_TOKEN }]) {
      const res = await proxy.ops.inject({ url: '/admin/state', headers })
      expect(res.statusCode).toBe(401)
      expect(res.headers['www-authenticate']).toMatch(/^Bearer/)
      expect(res.json().error).toMatch(/Authorization: Bearer/)
    }
    const put = await proxy.ops.inject({ method: 'PUT', url: '/admin/routes/movies/rollout', payload: { percent: 90 } })
    expect(put.statusCode).toBe(401)
    expect((await proxy.ops.inject({ url: '/admin/state', headers: admin })).statusCode).toBe(200)
  })

  it('does not exist without ADMIN_TOKEN, and its paths are never forwarded', async () => {
    const bare = await startProxy(stubs, { ADMIN_TOKEN: '' })
    const before = stubs.monolith.received.length
    try {
      for (const url of ['/admin/state', '/admin', '/admin/routes/movies/rollout']) {
        for (const app of [bare.app, bare.ops]) {
          const res = await app.inject({ url, headers: admin })
          expect([res.statusCode, res.headers['x-upstream'], res.json().error]).toEqual([404, undefined, expect.stringMatching(/^no route for GET \/admin/)])
        }
      }
      // Not in canonical form: refused before any route is looked at (request-target.ts).
      const doubled = await bare.app.inject({ url: '/admin//state', headers: admin })
      expect([doubled.statusCode, doubled.json().code]).toEqual([400, 'CA_ERR_PATH_NOT_CANONICAL'])
      expect(stubs.monolith.received.slice(before)).toEqual([])
    } finally {
      await bare.close()
    }
  })

  it('answers 404 for an unknown admin path (after the token check), never forwarding it', async () => {
    const before = stubs.monolith.received.length
    expect((await proxy.ops.inject({ url: '/admin/unknown' })).statusCode).toBe(401)
    const res = await proxy.ops.inject({ method: 'POST', url: '/admin/unknown', headers: admin, payload: {} })
    expect([res.statusCode, res.json().error]).toEqual([404, 'no route for POST /admin/unknown'])
    expect(stubs.monolith.received.slice(before)).toEqual([])
  })

  it('shows routes, effective percentages with their source, breakers and the flag source', async () => {
    const s = (await proxy.ops.inject({ url: '/admin/state', headers: admin })).json()
    expect(s.routes.map((r: { name: string }) => r.name)).toEqual(['movies', 'movies-health', 'events', 'default'])
    expect(s.routes[0]).toMatchObject({
      prefix: '/api/movies',
      legacy: { name: 'monolith', url: stubs.monolith.url, breaker: 'closed' },
      target: { name: 'movies-service', url: stubs.movies.url, breaker: 'closed' },
      flag: 'movies-migration',
      percent: 30,
      source: 'file',
      sticky: true,
    })
    expect(s.breakers['movies-service']).toMatchObject({ state: 'closed', stats: { failures: 0 } })
    expect(s.flags).toMatchObject({ kind: 'file', loaded: true, healthy: true, location: proxy.flagsFile })
  })

  it('validates rollout changes', async () => {
    const put = (name: string, payload: unknown) => proxy.ops.inject({ method: 'PUT', url: `/admin/routes/${name}/rollout`, headers: admin, payload: payload as object })
    const tooBig = await put('movies', { percent: 101 })
    expect([tooBig.statusCode, tooBig.json().error]).toEqual([400, expect.stringMatching(/percent/)])
    const text = await put('movies', { percent: '50' })
    expect([text.statusCode, text.json().error]).toEqual([400, expect.stringMatching(/percent/)])
    const missing = await put('movies', {})
    expect([missing.statusCode, missing.json().error]).toEqual([400, expect.stringMatching(/percent/)])
    const unknown = await put('series', { percent: 5 })
    expect([unknown.statusCode, unknown.json().error]).toEqual([404, 'no route named "series" (routes: movies, movies-health, events, default)'])
    const noSplit = await put('events', { percent: 5 })
    expect([noSplit.statusCode, noSplit.json().error]).toEqual([409, 'route "events" has no target: there is nothing to roll out'])
  })

  it('explains where a request would go and why, matching what the proxy does', async () => {
    for (const user of ['alice', 'bob', 'carol', 'dave', 'erin', 'frank']) {
      const explained = (await proxy.ops.inject({ url: `/admin/explain?path=/api/movies&user_id=${user}`, headers: admin })).json()
      const real = await proxy.app.inject({ url: '/api/movies', headers: { 'x-user-id': user } })
      expect(explained).toMatchObject({ route: 'movies', upstream: real.headers['x-upstream'], reason: real.headers['x-route-reason'], rollout: { flag: 'movies-migration', percent: 30, source: 'file' } })
    }
    const other = (await proxy.ops.inject({ url: '/admin/explain?path=/api/events/movie', headers: admin })).json()
    expect(other).toMatchObject({ route: 'events', upstream: 'events-service', reason: 'default' })
    const bad = await proxy.ops.inject({ url: '/admin/explain?path=api', headers: admin })
    expect([bad.statusCode, bad.json().error]).toEqual([400, 'path is required and must start with "/"'])
  })
})

describe('/metrics', () => {
  it('exposes the documented series', async () => {
    const proxy = await startProxy(stubs, { FLAGS_FILE: flagsFileAt(100) })
    try {
      await proxy.app.inject({ url: '/api/movies', headers: { 'x-user-id': 'm' } })
      await proxy.app.inject('/api/users')
      await proxy.app.inject('/status/404')
      const res = await proxy.ops.inject('/metrics')
      expect(res.headers['content-type']).toMatch(/^text\/plain; version=0\.0\.4/)
      const text = res.body
      expect(metric(text, 'proxy_requests_total{route="movies",upstream="movies-service",status_class="2xx",reason="flag"}')).toBe(1)
      expect(metric(text, 'proxy_requests_total{route="default",upstream="monolith",status_class="2xx",reason="default"}')).toBe(1)
      expect(metric(text, 'proxy_requests_total{route="default",upstream="monolith",status_class="4xx",reason="default"}')).toBe(1)
      expect(metric(text, 'proxy_request_duration_seconds_count{route="movies",upstream="movies-service"}')).toBe(1)
      for (const upstream of ['monolith', 'movies-service', 'events-service']) {
        expect(metric(text, `proxy_breaker_state{upstream="${upstream}"}`)).toBe(0)
        for (const event of ['open', 'close', 'halfOpen', 'reject', 'timeout', 'failure', 'success', 'fallback']) {
          expect(metric(text, `proxy_breaker_events_total{upstream="${upstream}",event="${event}"}`)).toBeTypeOf('number')
        }
      }
      expect(metric(text, 'proxy_rollout_percent{route="movies",flag="movies-migration",source="file"}')).toBe(100)
      expect(metric(text, 'proxy_flag_source_up{source="file"}')).toBe(1)
      expect(metric(text, 'proxy_flags_loaded')).toBe(1)
      expect(metric(text, 'proxy_rate_limit_store_errors_total')).toBe(0)
      expect(text).toMatch(/^process_cpu_user_seconds_total \d/m)
      expect(text).toMatch(/^nodejs_eventloop_lag_seconds /m)
      // The proxy's own endpoints are not counted as proxied traffic.
      expect(text).not.toMatch(/route="(health|metrics)"/)
    } finally {
      await proxy.close()
    }
  })
})

describe('rate limiting', () => {
  it('answers 429 JSON with Retry-After past the limit, never on /health, /ready, nor on the operators\' listener', async () => {
    const proxy = await startProxy(stubs, { RATE_LIMIT_MAX: '3', RATE_LIMIT_WINDOW_MS: '60000' })
    try {
      for (let i = 0; i < 3; i++) {
        const answer = await proxy.app.inject('/api/users')
        expect(answer.statusCode).toBe(200)
        // Forwarded answers carry the limit's state too.
        expect(answer.headers).toMatchObject({ 'x-ratelimit-limit': '3', 'x-ratelimit-remaining': String(2 - i), 'x-ratelimit-reset': expect.stringMatching(/^(5\d|60)$/) })
      }
      const limited = await proxy.app.inject('/api/users')
      expect(limited.statusCode).toBe(429)
      expect(limited.headers).toMatchObject({ 'x-ratelimit-limit': '3', 'x-ratelimit-remaining': '0', 'x-ratelimit-reset': expect.stringMatching(/^\d+$/) })
      expect(limited.headers['retry-after']).toBe(limited.headers['x-ratelimit-reset'])
      expect(Number(limited.headers['retry-after'])).toBeGreaterThan(0)
      expect(limited.json()).toEqual({ code: 'CA_ERR_RATE_LIMITED', error: expect.stringMatching(/^rate limit exceeded: 3 requests per 60 s; retry in \d+ s$/) })
      for (const path of ['/health', '/ready', '/health']) expect((await proxy.app.inject(path)).statusCode).toBe(200)
      for (const path of ['/health', '/ready', '/metrics', '/health']) expect((await proxy.ops.inject(path)).statusCode).toBe(200)
      expect((await proxy.ops.inject({ url: '/admin/state', headers: admin })).statusCode).toBe(200)
      expect(metric((await proxy.ops.inject('/metrics')).body, 'proxy_rate_limited_total')).toBe(1)
    } finally {
      await proxy.close()
    }
  })

  it('shares the counters of two proxies through Redis: each sees the other\'s requests once it has synced', async () => {
    const prefix = `test:proxy-rl:${randomUUID()}:`
    const redis = createRedis(redisUrl(), captureLogs().logger, { commandTimeoutMs: 1_000 })
    const env = { RATE_LIMIT_MAX: '5', RATE_LIMIT_WINDOW_MS: '60000', RATE_LIMIT_KEY_PREFIX: prefix }
    const a = await startProxy(stubs, env, { redis })
    const b = await startProxy(stubs, env, { redis })
    const status = async (proxy: ProxyUnderTest) => (await proxy.app.inject('/api/users')).statusCode
    // The proxies' syncs and this poll share one connection: Redis showing a count means its sender has the answer.
    const synced = (count: number) => eventually(`Redis counts ${count}`, async () => Number(await redis.get(`${prefix}127.0.0.1`)) === count, 10_000)
    try {
      for (let i = 0; i < 3; i++) expect(await status(a)).toBe(200)
      await synced(3)
      expect(await status(b)).toBe(200) // b's first: counted by b alone until its sync answers
      await synced(4)
      expect([await status(b), await status(b)]).toEqual([200, 429]) // b counts a's three: 5 pass, the 6th not
      // a's last sync was before b's requests: its next one passes (the bound proxy/README.md states), then a knows.
      expect(await status(a)).toBe(200)
      await synced(7)
      expect(await status(a)).toBe(429)
      expect(await redis.pttl(`${prefix}127.0.0.1`)).toBeGreaterThan(0)
    } finally {
      await a.close()
      await b.close()
      await redis.del(`${prefix}127.0.0.1`)
      redis.disconnect()
    }
  })

  it('counts alone, and counts each failed sync, when Redis is unreachable', async () => {
    const url = new URL(redisUrl())
    const forwarder: TcpForwarder = await startTcpForwarder(url.hostname, Number(url.port || 6379))
    const redis = createRedis(`redis://127.0.0.1:${forwarder.port}`, captureLogs().logger, { commandTimeoutMs: 200 })
    const proxy = await startProxy(stubs, { RATE_LIMIT_MAX: '3', RATE_LIMIT_KEY_PREFIX: `test:proxy-rl:${randomUUID()}:` }, { redis })
    const storeErrors = async () => metric((await proxy.ops.inject('/metrics')).body, 'proxy_rate_limit_store_errors_total') ?? 0
    try {
      await forwarder.cut()
      const statuses = []
      for (let i = 0; i < 5; i++) statuses.push((await proxy.app.inject('/api/users')).statusCode)
      // The limiter is not the outage: requests under the limit pass, on this replica's own count.
      expect(statuses).toEqual([200, 200, 200, 429, 429])
      await eventually('a failed sync is counted', async () => (await storeErrors()) >= 1, 10_000)
      expect(await storeErrors()).toBeLessThanOrEqual(5) // once per failed sync, never more than per request
      expect(proxy.logs.lines.some((l) => l.msg === 'rate-limit counters unavailable: this replica counts alone')).toBe(true)
    } finally {
      await proxy.close()
      redis.disconnect()
      await forwarder.close()
    }
  })
})
