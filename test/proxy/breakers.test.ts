// Breakers and fallback against stub upstreams: a failing target opens its breaker, GETs are
// answered by legacy (x-route-reason: fallback), POSTs get 503 once and are never replayed;
// after the reset timeout the breaker half-opens and closes on a good trial. Legacy down: 503
// with Retry-After, no hang. Each test builds its own stubs and proxy; the reset timeout is
// passed with vitest's fake timers (opossum schedules it with setTimeout when it opens), so no
// test waits for it or depends on how fast the machine is.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { eventually } from '../helpers/poll.ts'
import { metric } from '../helpers/metrics.ts'
import { admin, flagsFileAt, startProxy, startStubs, type ProxyUnderTest, type Stubs } from './proxy-harness.ts'

const RESET_TIMEOUT_MS = 60_000

const breakerEnv = {
  BREAKER_VOLUME_THRESHOLD: '4',
  BREAKER_ERROR_PERCENT: '50',
  BREAKER_RESET_TIMEOUT_MS: String(RESET_TIMEOUT_MS),
  BREAKER_WINDOW_MS: '5000',
  // Generous: a loaded machine must not turn a healthy stub's answer into a 504.
  UPSTREAM_CONNECT_TIMEOUT_MS: '2000',
  UPSTREAM_RESPONSE_TIMEOUT_MS: '2000',
  RETRY_AFTER_SECONDS: '7',
}

let stubs: Stubs
let proxy: ProxyUnderTest

beforeEach(async () => {
  stubs = await startStubs()
  // Everyone on the target, so every movies request tries movies-service first.
  proxy = await startProxy(stubs, { FLAGS_FILE: flagsFileAt({ 'movies-migration': 100, 'movies-migration-writes': 100 }), ...breakerEnv })
})
afterEach(async () => {
  vi.useRealTimers()
  await proxy?.close()
  await stubs?.close()
})

/** Only opossum's reset timer (and other setTimeouts) is faked; the sockets stay real. */
const fakeResetTimer = () => vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] })

const metrics = async () => (await proxy.ops.inject('/metrics')).body
const moviesState = async () => metric(await metrics(), 'proxy_breaker_state{upstream="movies-service"}')
const postsReceived = () => stubs.movies.received.filter((r) => r.method === 'POST').length

/** movies-service answers 500 to GETs until its breaker opens (8 calls; volume threshold 4, 50 %). */
async function openMoviesBreaker() {
  stubs.movies.mode = 'fail'
  const answers = []
  for (let i = 0; i < 8; i++) answers.push(await proxy.app.inject({ url: '/api/movies', headers: { 'x-user-id': `u${i}` } }))
  expect(await moviesState()).toBe(2)
  return answers
}

/** Lets the reset timeout pass: the breaker half-opens exactly then, not a millisecond before. */
async function passResetTimeout() {
  await vi.advanceTimersByTimeAsync(RESET_TIMEOUT_MS - 1)
  expect(await moviesState()).toBe(2)
  await vi.advanceTimersByTimeAsync(1)
  expect(await moviesState()).toBe(1)
}

describe('target failing', () => {
  it('opens the breaker on 500s and serves GETs from legacy meanwhile', async () => {
    const answers = await openMoviesBreaker()
    for (const res of answers) {
      expect(res.statusCode).toBe(200)
      expect([res.headers['x-upstream'], res.headers['x-route-reason']]).toEqual(['monolith', 'fallback'])
      expect(res.json().upstream).toBe('monolith')
    }
    const text = await metrics()
    expect(metric(text, 'proxy_breaker_events_total{upstream="movies-service",event="open"}')).toBe(1)
    expect(metric(text, 'proxy_legacy_fallbacks_total{route="movies",target="movies-service",legacy="monolith"}')).toBe(8)
    expect(metric(text, 'proxy_upstream_failures_total{upstream="movies-service",kind="status_5xx"}')).toBeGreaterThanOrEqual(4)
    // Open: the failing target is no longer called at all.
    const calls = stubs.movies.received.length
    const head = await proxy.app.inject({ method: 'HEAD', url: '/api/movies' })
    expect([head.statusCode, head.headers['x-upstream'], head.headers['x-route-reason']]).toEqual([200, 'monolith', 'fallback'])
    expect(stubs.movies.received.length).toBe(calls)
    expect(metric(await metrics(), 'proxy_breaker_events_total{upstream="movies-service",event="reject"}')).toBeGreaterThanOrEqual(1)
  })

  it('answers a POST 503 JSON while the breaker is open, without sending it anywhere', async () => {
    await openMoviesBreaker()
    const monolithPosts = stubs.monolith.received.filter((r) => r.method === 'POST').length
    const res = await proxy.app.inject({ method: 'POST', url: '/api/movies', payload: { title: 'x' } })
    expect(res.statusCode).toBe(503)
    expect(res.headers['retry-after']).toBe('7')
    expect(res.json().error).toMatch(/movies-service is unavailable \(circuit open\); the request was not retried/)
    expect(postsReceived()).toBe(0)
    expect(stubs.monolith.received.filter((r) => r.method === 'POST').length).toBe(monolithPosts)
  })

  it('half-opens after the reset timeout, and a failing trial POST is sent once and answered 503', async () => {
    fakeResetTimer()
    await openMoviesBreaker()
    await passResetTimeout()
    const res = await proxy.app.inject({ method: 'POST', url: '/api/movies', payload: { title: 'once' } })
    expect(res.statusCode).toBe(503)
    expect(res.json().error).toMatch(/movies-service answered 500; the request was not retried/)
    expect(postsReceived()).toBe(1)
    expect(await moviesState()).toBe(2)
    expect(stubs.monolith.received.some((r) => r.method === 'POST' && r.url === '/api/movies')).toBe(false)
  })

  it('keeps GETs answered by legacy when the target is killed', async () => {
    fakeResetTimer()
    await openMoviesBreaker()
    await stubs.movies.kill()
    await passResetTimeout()
    const res = await proxy.app.inject('/api/movies')
    expect([res.statusCode, res.headers['x-upstream'], res.headers['x-route-reason']]).toEqual([200, 'monolith', 'fallback'])
    expect(metric(await metrics(), 'proxy_upstream_failures_total{upstream="movies-service",kind="connect"}')).toBeGreaterThanOrEqual(1)
    expect(await moviesState()).toBe(2)
  })

  it('closes again once the killed target is back', async () => {
    fakeResetTimer()
    await openMoviesBreaker()
    await stubs.movies.kill()
    await passResetTimeout()
    expect((await proxy.app.inject('/api/movies')).headers['x-route-reason']).toBe('fallback') // the trial fails: open again
    stubs.movies.mode = 'ok'
    await stubs.movies.restart()
    await passResetTimeout()
    const res = await proxy.app.inject({ url: '/api/movies', headers: { 'x-user-id': 'back' } })
    expect([res.statusCode, res.headers['x-upstream'], res.headers['x-route-reason']]).toEqual([200, 'movies-service', 'flag'])
    expect(await moviesState()).toBe(0)
    expect(metric(await metrics(), 'proxy_breaker_events_total{upstream="movies-service",event="close"}')).toBe(1)
    const state = (await proxy.ops.inject({ url: '/admin/state', headers: admin })).json()
    expect(state.breakers['movies-service'].state).toBe('closed')
  })
})

describe('legacy failing', () => {
  it('answers 504 when an upstream does not answer in time', async () => {
    stubs.events.mode = 'hang'
    const res = await proxy.app.inject('/api/events/movie')
    expect(res.statusCode).toBe(504)
    expect(res.json().error).toBe('events-service did not answer in time')
  })

  it('passes a legacy 5xx on as it is (there is nothing to fall back to)', async () => {
    stubs.events.mode = 'fail'
    const res = await proxy.app.inject('/api/events/movie')
    expect(res.statusCode).toBe(500)
    expect(res.json()).toEqual({ error: 'events-service failed' })
    expect(res.headers['x-upstream']).toBe('events-service')
  })

  it('answers 503 with Retry-After when the legacy upstream is down, quickly once its breaker is open', async () => {
    await stubs.monolith.kill()
    // Failures count against the successes still in the window; keep calling (bounded) until it opens.
    for (let i = 0; i < 60 && (await metric(await metrics(), 'proxy_breaker_state{upstream="monolith"}')) !== 2; i++) {
      const res = await proxy.app.inject({ method: i % 2 ? 'POST' : 'GET', url: '/api/users', payload: i % 2 ? { a: 1 } : undefined })
      expect(res.statusCode).toBe(503)
      expect(res.headers['retry-after']).toBe('7')
      expect(res.headers['x-upstream']).toBe('proxy')
      expect(res.json().error).toMatch(/^monolith (is unreachable|dropped the connection|is unavailable \(circuit open\)), retry later$/)
    }
    expect(metric(await metrics(), 'proxy_breaker_state{upstream="monolith"}')).toBe(2)
    const open = await proxy.app.inject('/api/users')
    expect(open.json().error).toBe('monolith is unavailable (circuit open), retry later')
    expect((await proxy.app.inject('/ready')).statusCode).toBe(503)
    await stubs.monolith.restart()
    // Readiness probes the monolith itself (cached for 1 s), whatever its breaker says.
    await eventually('ready again with the monolith back', async () => (await proxy.app.inject('/ready')).statusCode === 200)
  })
})
