// FEATURES_OFF (proxy/model/features.ts): the measurement switch `npm run bench` uses to price
// each per-request feature. Each feature named is really off (what it does is absent), every
// other one stays on, and an unknown name stops the proxy at start.
import { setTimeout as sleep } from 'node:timers/promises'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { loadConfig } from '../../proxy/config.ts'
import { metric } from '../helpers/metrics.ts'
import { admin, flagsFileAt, startProxy, startStubs, type ProxyUnderTest, type Stubs } from './proxy-harness.ts'

let stubs: Stubs
let proxy: ProxyUnderTest | undefined
beforeAll(async () => {
  stubs = await startStubs()
})
afterEach(async () => {
  await proxy?.close()
  proxy = undefined
  stubs.monolith.received.length = 0
  stubs.movies.received.length = 0
})
afterAll(() => stubs.close())

const get = (url = '/api/movies', headers: Record<string, string> = { 'x-user-id': 'user-1' }) => proxy!.app.inject({ method: 'GET', url, headers })
const requestsCounted = async () => metric((await proxy!.ops.inject({ method: 'GET', url: '/metrics' })).body, 'proxy_requests_total{route="movies"}') ?? 0
const accessLines = () => proxy!.logs.lines.filter((l) => l.msg === 'request')

describe('FEATURES_OFF', () => {
  it('names an unknown feature at start', () => {
    expect(() => loadConfig({ MONOLITH_URL: 'http://127.0.0.1:1', MOVIES_SERVICE_URL: 'http://127.0.0.1:2', EVENTS_SERVICE_URL: 'http://127.0.0.1:3', FEATURES_OFF: 'metrics,turbo' })).toThrow(/FEATURES_OFF.*unknown: turbo/)
  })

  it('all on by default: access line, request id, forwarding headers, metrics', async () => {
    proxy = await startProxy(stubs)
    const res = await get()
    expect(res.statusCode).toBe(200)
    expect(res.headers['x-request-id']).toBeTruthy()
    const sent = [...stubs.monolith.received, ...stubs.movies.received].at(-1)!
    expect(sent.headers).toMatchObject({ 'x-request-id': res.headers['x-request-id'], 'x-forwarded-for': '127.0.0.1', 'x-forwarded-proto': 'http' })
    expect(accessLines()).toHaveLength(1)
    expect(await requestsCounted()).toBe(1)
    expect(proxy.logs.lines.some((l) => String(l.msg).startsWith('FEATURES_OFF'))).toBe(false)
  })

  it('access-log, request-id, forwarding-headers, metrics off: none of them happens, the answer is the same', async () => {
    proxy = await startProxy(stubs, { FEATURES_OFF: 'access-log,request-id,forwarding-headers,metrics' })
    const res = await get()
    expect(res.statusCode).toBe(200)
    expect(res.headers['x-request-id']).toBeUndefined()
    const sent = [...stubs.monolith.received, ...stubs.movies.received].at(-1)!
    expect(sent.headers['x-request-id']).toBeUndefined()
    expect(sent.headers['x-forwarded-for']).toBeUndefined()
    expect(accessLines()).toHaveLength(0)
    expect(await requestsCounted()).toBe(0)
    expect(proxy.logs.lines.find((l) => String(l.msg).startsWith('FEATURES_OFF'))).toMatchObject({ level: 40, featuresOff: ['access-log', 'request-id', 'forwarding-headers', 'metrics'] })
  })

  it('routing off: every request goes to legacy, whatever the flag says', async () => {
    proxy = await startProxy(stubs, { FEATURES_OFF: 'routing', FLAGS_FILE: flagsFileAt(100) })
    for (let i = 0; i < 10; i++) expect((await get('/api/movies', { 'x-user-id': `user-${i}` })).headers['x-upstream']).toBe('monolith')
    expect(stubs.movies.received).toHaveLength(0)
  })

  it('rate-limit off: a limit of 1 lets every request pass, with no x-ratelimit headers', async () => {
    proxy = await startProxy(stubs, { RATE_LIMIT_MAX: '1', FEATURES_OFF: 'rate-limit' })
    for (let i = 0; i < 3; i++) {
      const res = await get()
      expect(res.statusCode).toBe(200)
      expect(res.headers['x-ratelimit-limit']).toBeUndefined()
    }
  })

  it('breaker off: failures in a row never open it', async () => {
    proxy = await startProxy(stubs, { FEATURES_OFF: 'breaker', BREAKER_CONSECUTIVE_FAILURES: '2', FLAGS_FILE: flagsFileAt(0) })
    stubs.monolith.mode = 'fail'
    try {
      for (let i = 0; i < 6; i++) expect((await get()).headers['x-upstream']).toBe('monolith')
      expect(stubs.monolith.received).toHaveLength(6)
    } finally {
      stubs.monolith.mode = 'ok'
    }
  })

  it('shadow-selection off: a route shadowed at 100 % sends no copy', async () => {
    proxy = await startProxy(stubs, { FEATURES_OFF: 'shadow-selection', FLAGS_FILE: flagsFileAt(0) })
    expect((await proxy.ops.inject({ method: 'PUT', url: '/admin/routes/movies/shadow', headers: admin, payload: { percent: 100 } })).statusCode).toBe(200)
    for (let i = 0; i < 5; i++) expect((await get()).headers['x-upstream']).toBe('monolith')
    await sleep(300)
    expect(stubs.movies.received).toHaveLength(0)
  })

  it('console-history off: the console gets no history points (on: it does, same wait)', async () => {
    const points = async (env: Record<string, string>) => {
      proxy = await startProxy(stubs, { ADMIN_HISTORY_INTERVAL_MS: '100', ...env })
      await get()
      await sleep(500)
      const n = (await proxy.ops.inject({ method: 'GET', url: '/admin/history?route=movies', headers: admin })).json().points.length
      await proxy.close()
      proxy = undefined
      return n
    }
    expect(await points({})).toBeGreaterThan(0)
    expect(await points({ FEATURES_OFF: 'console-history' })).toBe(0)
  })
})
