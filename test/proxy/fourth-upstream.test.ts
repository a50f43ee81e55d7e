// "Adding a service" (proxy/README.md) as the migration team does it: a fourth upstream
// (users-service, its URL from USERS_SERVICE_URL) and a route /api/users split by a new flag
// (users-migration) are declared only in a route map and a flags file of this test — no proxy
// code knows them. The split is sticky, GETs fall back to legacy when the new upstream dies
// (writes get 503, never replayed), and the metrics and admin API carry the new names.
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { readRouteFile } from '../../proxy/model/route-map.ts'
import { REPO_ROOT } from '../helpers/processes.ts'
import { metric } from '../helpers/metrics.ts'
import { admin, flagsFileAt, startProxy, startStubs, type ProxyUnderTest, type Stubs } from './proxy-harness.ts'
import { startStubUpstream, type StubUpstream } from './stub-upstream.ts'

const opened: Array<{ close(): Promise<void> }> = []
afterEach(async () => {
  for (const o of opened.splice(0).reverse()) await o.close()
})

/** The shipped route map plus users-service and its route: the whole of the change. */
function routeMapWithUsers(dir: string): string {
  const shipped = readRouteFile(join(REPO_ROOT, 'proxy/routes.json')) as { upstreams: unknown[]; routes: unknown[] }
  const file = join(dir, 'routes.json')
  writeFileSync(
    file,
    JSON.stringify({
      upstreams: [...shipped.upstreams, { name: 'users-service', url: { env: 'USERS_SERVICE_URL' }, health: '/health' }],
      routes: [{ name: 'users', prefix: '/api/users', legacy: 'monolith', target: 'users-service', flag: 'users-migration' }, ...shipped.routes],
    }),
  )
  return file
}

async function start(usersPercent: number): Promise<{ stubs: Stubs; users: StubUpstream; proxy: ProxyUnderTest }> {
  const stubs = await startStubs()
  opened.push(stubs)
  const users = await startStubUpstream('users-service')
  opened.push(users)
  const dir = mkdtempSync(join(tmpdir(), 'proxy-fourth-'))
  const proxy = await startProxy(stubs, {
    ROUTES_FILE: routeMapWithUsers(dir),
    FLAGS_FILE: flagsFileAt({ 'movies-migration': 0, 'users-migration': usersPercent }, dir),
    USERS_SERVICE_URL: users.url,
    BREAKER_RESET_TIMEOUT_MS: '600000', // stays open for the test once opened
  })
  opened.push(proxy)
  return { stubs, users, proxy }
}

const get = (proxy: ProxyUnderTest, user: string, url = '/api/users/42') => proxy.app.inject({ url, headers: { 'x-user-id': user } })

describe('a fourth upstream declared only in the route map', () => {
  it('splits /api/users by users-migration, stickily, and labels the metrics with users-service', async () => {
    const { proxy, users, stubs } = await start(50)
    const first = new Map<string, string>()
    for (let i = 0; i < 200; i++) {
      const res = await get(proxy, `u-${i}`)
      expect(res.statusCode).toBe(200)
      expect(res.json().upstream).toBe(res.headers['x-upstream'])
      first.set(`u-${i}`, res.headers['x-upstream'] as string)
    }
    const toUsers = [...first.values()].filter((s) => s === 'users-service').length
    expect(new Set(first.values())).toEqual(new Set(['monolith', 'users-service']))
    expect(toUsers).toBeGreaterThan(60) // 50 % of 200, with room for the hash's spread
    expect(toUsers).toBeLessThan(140)
    for (const [user, side] of first) expect((await get(proxy, user)).headers['x-upstream']).toBe(side)
    // The movies flag is untouched: /api/movies still all on legacy.
    expect((await get(proxy, 'u-1', '/api/movies')).headers['x-upstream']).toBe('monolith')
    expect(users.received.every((r) => r.url.startsWith('/api/users'))).toBe(true)
    expect(stubs.movies.received).toHaveLength(0)

    const text = (await proxy.ops.inject('/metrics')).body
    expect(metric(text, 'proxy_requests_total{route="users",upstream="users-service",status_class="2xx",reason="sticky"}')).toBe(2 * toUsers)
    expect(metric(text, 'proxy_requests_total{route="users",upstream="monolith",status_class="2xx",reason="sticky"}')).toBe(2 * (200 - toUsers))
    expect(metric(text, 'proxy_breaker_state{upstream="users-service"}')).toBe(0)
    expect(metric(text, 'proxy_rollout_percent{route="users",flag="users-migration",source="file"}')).toBe(50)

    // The admin API knows the route and moves its rollout like any other.
    const state = (await proxy.ops.inject({ url: '/admin/state', headers: admin })).json()
    expect(state.routes.find((r: { name: string }) => r.name === 'users')).toMatchObject({ legacy: { name: 'monolith' }, target: { name: 'users-service', url: users.url }, flag: 'users-migration', percent: 50 })
    const raised = await proxy.ops.inject({ method: 'PUT', url: '/admin/routes/users/rollout', headers: admin, payload: { percent: 100 } })
    expect([raised.statusCode, raised.json().percent]).toEqual([200, 100])
    for (const user of first.keys()) expect((await get(proxy, user)).headers['x-upstream']).toBe('users-service')
  })

  it('falls back to legacy for reads when users-service dies; writes get 503; its breaker opens', async () => {
    const { proxy, users, stubs } = await start(100)
    expect((await get(proxy, 'u-1')).headers['x-upstream']).toBe('users-service')
    await users.kill()
    for (let i = 0; i < 8; i++) {
      const res = await get(proxy, `u-${i}`)
      expect([res.statusCode, res.headers['x-upstream'], res.headers['x-route-reason']]).toEqual([200, 'monolith', 'fallback'])
    }
    const write = await proxy.app.inject({ method: 'POST', url: '/api/users', headers: { 'x-user-id': 'u-1' }, payload: { name: 'x' } })
    expect([write.statusCode, write.headers['x-upstream']]).toEqual([503, 'proxy'])
    expect(write.json().error).toMatch(/users-service is unavailable \(circuit open\); the request was not retried/)
    expect(stubs.monolith.received.filter((r) => r.method === 'POST')).toHaveLength(0)

    const text = (await proxy.ops.inject('/metrics')).body
    expect(metric(text, 'proxy_breaker_state{upstream="users-service"}')).toBe(2)
    expect(metric(text, 'proxy_legacy_fallbacks_total{route="users",target="users-service",legacy="monolith"}')).toBe(8)
    expect(metric(text, 'proxy_upstream_failures_total{upstream="users-service",kind="connect"}')).toBe(5)
    expect(metric(text, 'proxy_requests_total{route="users",upstream="monolith",status_class="2xx",reason="fallback"}')).toBe(8)
  })
})
