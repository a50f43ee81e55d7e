// End to end, as processes: the real monolith and movies-service on a test database behind the
// proxy (`proxy/server.ts`), a stub in place of the events service. Clients see the same answers
// whichever backend serves them; the split moves without restarts; a dead movies-service does
// not take /api/movies down.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { ServiceProcess } from '../helpers/processes.ts'
import { eventually } from '../helpers/poll.ts'
import { metric } from '../helpers/metrics.ts'
import { ADMIN_TOKEN, flagsFileAt, writeFlagsFile } from './proxy-harness.ts'
import { startRealStack, type RealStack } from './real-stack.ts'

let movies: ServiceProcess
let proxy: ServiceProcess
let stack: RealStack
let flagsFile: string

const auth = { authorization: `Bearer ${ADMIN_TOKEN}` }

beforeAll(async () => {
  flagsFile = flagsFileAt(50)
  stack = await startRealStack({
    FLAGS_FILE: flagsFile,
    ADMIN_TOKEN,
    BREAKER_VOLUME_THRESHOLD: '3',
    BREAKER_RESET_TIMEOUT_MS: '60000',
    BREAKER_WINDOW_MS: '3000',
    METRICS_MIN_INTERVAL_MS: '0', // the breaker loop below reads /metrics after every request
  })
  ;({ movies, proxy } = stack)
})
afterAll(() => stack?.stop())

const get = (path: string, headers: Record<string, string> = {}) => fetch(`${proxy.url}${path}`, { headers, signal: AbortSignal.timeout(10_000) })
/** The operators' listener: admin API, /metrics, the detailed /ready. */
const ops = (path: string) => fetch(`${proxy.opsUrl}${path}`, { signal: AbortSignal.timeout(10_000) })
const stage = async (): Promise<{ writes: string; readPercent: number }> =>
  (await fetch(`${proxy.opsUrl}/admin/routes/movies/stage`, { headers: auth, signal: AbortSignal.timeout(10_000) })).json() as Promise<{ writes: string; readPercent: number }>
const setRollout = async (percent: number) => {
  const res = await fetch(`${proxy.opsUrl}/admin/routes/movies/rollout`, { method: 'PUT', headers: { ...auth, 'content-type': 'application/json' }, body: JSON.stringify({ percent }) })
  expect(res.status).toBe(200)
}

describe('proxy in front of the real services', () => {
  it('is healthy and ready', async () => {
    const health = await get('/health')
    expect([health.status, await health.text()]).toEqual([200, 'Strangler Fig Proxy is healthy'])
    const ready = await get('/ready')
    expect([ready.status, await ready.json()]).toEqual([200, { status: true }]) // the details are the operators'
    const detailed = await ops('/ready')
    expect(detailed.status).toBe(200)
    expect(await detailed.json()).toMatchObject({ status: true, flags: { kind: 'file', loaded: true, healthy: true } })
  })

  it('serves the same movie list from both backends at 50 %, each user always from the same one', async () => {
    const seen = new Map<string, string>()
    let reference: unknown
    for (let i = 0; i < 60; i++) {
      const res = await get('/api/movies', { 'x-user-id': `viewer-${i}` })
      expect(res.status).toBe(200)
      const body = await res.json()
      reference ??= body
      expect(body).toEqual(reference)
      seen.set(`viewer-${i}`, res.headers.get('x-upstream')!)
      expect(res.headers.get('x-route-reason')).toBe('sticky')
    }
    expect(reference).toHaveLength(5)
    expect(new Set(seen.values())).toEqual(new Set(['monolith', 'movies-service']))
    for (const [user, upstream] of seen) expect((await get(`/api/movies?user_id=${user}`)).headers.get('x-upstream')).toBe(upstream)
  })

  it('routes everything else to the monolith and /api/events to the events service', async () => {
    const users = await get('/api/users')
    expect([users.status, users.headers.get('x-upstream')]).toEqual([200, 'monolith'])
    expect(Array.isArray(await users.json())).toBe(true)
    // The movies service's own health check reaches it at any rollout (here 50 %), for every client.
    for (let i = 0; i < 6; i++) {
      const health = await get('/api/movies/health', { 'x-user-id': `viewer-${i}` })
      expect([health.status, health.headers.get('x-upstream')]).toEqual([200, 'movies-service'])
    }
    const ev = await get('/api/events/health')
    expect([ev.status, ev.headers.get('x-upstream')]).toEqual([200, 'events-service'])
  })

  it('moves the split through the admin API and the flags file, without a restart', async () => {
    await setRollout(100)
    for (let i = 0; i < 10; i++) expect((await get('/api/movies', { 'x-user-id': `v${i}` })).headers.get('x-upstream')).toBe('movies-service')
    // The writes move with their own flag (the stores here share one database and replicate nothing: they take any write).
    writeFlagsFile(flagsFile, { 'movies-migration': 100, 'movies-migration-writes': 100 })
    await eventually('the proxy to follow the writer flag', async () => (await stage()).writes === 'target')
    // A movie created through the new service (Cyrillic JSON body, streamed) is read back through the monolith.
    const created = await fetch(`${proxy.url}/api/movies`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-user-id': 'editor' },
      body: JSON.stringify({ title: 'Сталкер', description: 'Зона', genres: ['Drama'], rating: 8.1 }),
    })
    expect([created.status, created.headers.get('x-upstream')]).toEqual([201, 'movies-service'])
    const movie = await created.json()
    writeFlagsFile(flagsFile, 0)
    // Another client (the editor's own reads follow its write for a while: read-your-writes).
    await eventually('the proxy to follow the file to 0 %', async () => (await get('/api/movies', { 'x-user-id': 'reader' })).headers.get('x-upstream') === 'monolith')
    const readBack = await get(`/api/movies?id=${movie.id}`, { 'x-user-id': 'reader' })
    expect([readBack.status, readBack.headers.get('x-upstream'), readBack.headers.get('x-route-reason')]).toEqual([200, 'monolith', 'flag'])
    expect(await readBack.json()).toEqual(movie)
  })

  it('keeps /api/movies up when movies-service dies: GETs from the monolith, POSTs 503 and not replayed', async () => {
    writeFlagsFile(flagsFile, { 'movies-migration': 100, 'movies-migration-writes': 100 })
    await eventually('the proxy to follow the file', async () => {
      const now = await stage()
      return now.writes === 'target' && now.readPercent === 100
    })
    await movies.stop()
    for (let i = 0; i < 5; i++) {
      const res = await get('/api/movies', { 'x-user-id': `v${i}` })
      expect([res.status, res.headers.get('x-upstream'), res.headers.get('x-route-reason')]).toEqual([200, 'monolith', 'fallback'])
      expect(await res.json()).toHaveLength(6)
    }
    const post = await fetch(`${proxy.url}/api/movies`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ title: 'Lost', description: 'x', rating: 1 }) })
    expect([post.status, post.headers.get('retry-after'), post.headers.get('x-upstream')]).toEqual([503, '5', 'proxy'])
    // Connection refused, or the breaker already open: either way no internal address leaks out.
    expect((await post.json()).error).toMatch(/^movies-service (is unreachable|dropped the connection|is unavailable \(circuit open\)); the request was not retried$/)
    const list = await (await get('/api/movies')).json()
    expect(list.map((m: { title: string }) => m.title)).not.toContain('Lost')
    // The successes earlier in the window delay the opening; more failures (bounded) open it.
    const breakerState = async () => metric(await (await ops('/metrics')).text(), 'proxy_breaker_state{upstream="movies-service"}')
    for (let i = 0; i < 300 && (await breakerState()) !== 2; i++) expect((await get('/api/movies', { 'x-user-id': `w${i}` })).headers.get('x-route-reason')).toBe('fallback')
    expect(await breakerState()).toBe(2)
    const text = await (await ops('/metrics')).text()
    expect(metric(text, 'proxy_legacy_fallbacks_total{route="movies",target="movies-service",legacy="monolith"}')).toBeGreaterThanOrEqual(5)
    const open = await fetch(`${proxy.url}/api/movies`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' })
    expect([open.status, (await open.json()).error]).toEqual([503, 'movies-service is unavailable (circuit open); the request was not retried'])
  })
})
