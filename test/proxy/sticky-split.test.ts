// The movies split against stub upstreams: the share of identities sent to the target follows
// the percentage, each identity keeps its side, raising the percentage never moves anyone back,
// anonymous clients get a cookie and stay put. Each test builds its own stubs and proxy.
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { admin, flagsFileAt, startProxy, startStubs, type ProxyUnderTest, type Stubs } from './proxy-harness.ts'

let stubs: Stubs
let proxy: ProxyUnderTest

beforeEach(async () => {
  stubs = await startStubs()
})
afterEach(async () => {
  await proxy?.close()
  await stubs?.close()
})

async function proxyAt(percent: number, env: Record<string, string> = {}) {
  proxy = await startProxy(stubs, { FLAGS_FILE: flagsFileAt(percent), ...env })
}

const ids = Array.from({ length: 10_000 }, (_, i) => `user-${i}`)

async function sideOf(headers: Record<string, string>, url = '/api/movies'): Promise<string> {
  const res = await proxy.app.inject({ url, headers })
  expect(res.statusCode).toBe(200)
  expect(res.json().upstream).toBe(res.headers['x-upstream'])
  return res.headers['x-upstream'] as string
}

/** The side each identity lands on (sent as X-User-Id). */
async function sidesOf(users: readonly string[]): Promise<Map<string, string>> {
  const sides = new Map<string, string>()
  for (const id of users) sides.set(id, await sideOf({ 'x-user-id': id }))
  return sides
}

async function setPercent(percent: number) {
  const res = await proxy.ops.inject({ method: 'PUT', url: '/admin/routes/movies/rollout', headers: admin, payload: { percent } })
  expect(res.statusCode).toBe(200)
  expect(res.json().percent).toBe(percent)
}

describe('sticky percentage split of /api/movies', () => {
  beforeEach(() => proxyAt(30))

  it('sends 28-32 % of 10,000 users to movies-service at 30 %', async () => {
    const at30 = await sidesOf(ids)
    const toTarget = [...at30.values()].filter((s) => s === 'movies-service').length
    expect(new Set(at30.values())).toEqual(new Set(['monolith', 'movies-service']))
    expect(toTarget / ids.length).toBeGreaterThanOrEqual(0.28)
    expect(toTarget / ids.length).toBeLessThanOrEqual(0.32)
  }, 240_000)

  it('keeps every user on the same side on repeated calls, whether the id comes as X-User-Id or ?user_id', async () => {
    const some = ids.slice(0, 2_000)
    const at30 = await sidesOf(some)
    expect(new Set(at30.values())).toEqual(new Set(['monolith', 'movies-service']))
    let moved = 0
    for (const [i, id] of some.entries()) {
      const side = i % 2 ? await sideOf({ 'x-user-id': id }) : await sideOf({}, `/api/movies?user_id=${id}`)
      if (side !== at30.get(id)) moved++
    }
    expect(moved).toBe(0)
  }, 120_000)

  it('raising to 60 % only moves users from legacy to the target', async () => {
    const some = ids.slice(0, 5_000)
    const at30 = await sidesOf(some)
    await setPercent(60)
    let backToLegacy = 0
    let toTarget = 0
    for (const id of some) {
      const side = await sideOf({ 'x-user-id': id })
      if (at30.get(id) === 'movies-service' && side !== 'movies-service') backToLegacy++
      if (side === 'movies-service') toTarget++
    }
    expect(backToLegacy).toBe(0)
    expect(toTarget / some.length).toBeGreaterThanOrEqual(0.58)
    expect(toTarget / some.length).toBeLessThanOrEqual(0.62)
  }, 240_000)

  it('gives anonymous clients a cookie and keeps each on its side', async () => {
    const sides = new Set<string>()
    for (let client = 0; client < 60; client++) {
      const first = await proxy.app.inject('/api/movies')
      const cookie = String(first.headers['set-cookie'])
      expect(cookie).toMatch(/^cinemaabyss_uid=[\w-]+; Path=\/; Max-Age=31536000; HttpOnly; SameSite=Lax$/)
      const id = cookie.split(';')[0]
      sides.add(first.headers['x-upstream'] as string)
      for (let again = 0; again < 5; again++) {
        const next = await proxy.app.inject({ url: '/api/movies', headers: { cookie: `theme=dark; ${id}` } })
        expect(next.headers['x-upstream']).toBe(first.headers['x-upstream'])
        expect(next.headers['set-cookie']).toBeUndefined()
      }
    }
    expect(sides).toEqual(new Set(['monolith', 'movies-service']))
  })

  it('says why: sticky in a partial rollout, flag at 0 and 100 %, default on routes without a split', async () => {
    expect((await proxy.app.inject({ url: '/api/movies', headers: { 'x-user-id': 'u1' } })).headers['x-route-reason']).toBe('sticky')
    await setPercent(0)
    const none = await proxy.app.inject({ url: '/api/movies', headers: { 'x-user-id': 'u1' } })
    expect([none.headers['x-upstream'], none.headers['x-route-reason']]).toEqual(['monolith', 'flag'])
    await setPercent(100)
    const all = await proxy.app.inject({ url: '/api/movies', headers: { 'x-user-id': 'u1' } })
    expect([all.headers['x-upstream'], all.headers['x-route-reason']]).toEqual(['movies-service', 'flag'])
    const users = await proxy.app.inject('/api/users')
    expect([users.headers['x-upstream'], users.headers['x-route-reason']]).toEqual(['monolith', 'default'])
    const events = await proxy.app.inject('/api/events/health')
    expect([events.headers['x-upstream'], events.headers['x-route-reason']]).toEqual(['events-service', 'default'])
    expect(users.headers['set-cookie']).toBeUndefined()
  })

  it('ignores X-Backend unless the override is enabled', async () => {
    let id = ids[0]!
    for (let i = 1; (await sideOf({ 'x-user-id': id })) !== 'monolith'; i++) id = ids[i]! // a user the split keeps on legacy
    const res = await proxy.app.inject({ url: '/api/movies', headers: { 'x-user-id': id, 'x-backend': 'target' } })
    expect([res.headers['x-upstream'], res.headers['x-route-reason']]).toEqual(['monolith', 'sticky'])
  })
})

describe('QA override (ALLOW_BACKEND_OVERRIDE=true)', () => {
  beforeEach(() => proxyAt(0, { ALLOW_BACKEND_OVERRIDE: 'true' }))

  it('honours X-Backend: target|legacy and rejects anything else with 400', async () => {
    const target = await proxy.app.inject({ url: '/api/movies', headers: { 'x-backend': 'target' } })
    expect([target.headers['x-upstream'], target.headers['x-route-reason']]).toEqual(['movies-service', 'override'])
    const legacy = await proxy.app.inject({ url: '/api/movies', headers: { 'x-backend': 'legacy' } })
    expect([legacy.headers['x-upstream'], legacy.headers['x-route-reason']]).toEqual(['monolith', 'override'])
    const bad = await proxy.app.inject({ url: '/api/movies', headers: { 'x-backend': 'nginx' } })
    expect(bad.statusCode).toBe(400)
    expect(bad.json().error).toMatch(/X-Backend must be "legacy" or "target"/)
  })
})
