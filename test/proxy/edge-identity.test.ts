// Tokens at the edge against a real OpenID Connect provider over HTTP (oidc-provider serving its
// discovery document and its JWKS, test/proxy/oidc-issuer.ts): a required route (movies, split 50 %), a required route with a
// role rule (events), an optional one (movies-health) and one without a policy (the catch-all).
import { createHmac } from 'node:crypto'
import { exportSPKI } from 'jose'
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { REPO_ROOT } from '../helpers/processes.ts'
import { CLIENT_ID, startIssuer, newKey, signToken, type TestIssuer } from './oidc-issuer.ts'
import { admin, flagsFileAt, startProxy, startStubs, type ProxyUnderTest, type Stubs } from './proxy-harness.ts'

const AUDIENCE = 'cinemaabyss-api'
const COOLDOWN_MS = 1_000

function routesFile(): string {
  const doc = JSON.parse(readFileSync(join(REPO_ROOT, 'proxy/routes.json'), 'utf8'))
  const auth: Record<string, unknown> = { movies: 'required', events: { policy: 'required', roles: ['events-writer'] }, 'movies-health': 'optional' }
  for (const route of doc.routes) if (auth[route.name]) route.auth = auth[route.name]
  const file = join(mkdtempSync(join(tmpdir(), 'proxy-auth-')), 'routes.json')
  writeFileSync(file, JSON.stringify(doc))
  return file
}

let stubs: Stubs
let issuer: TestIssuer
let proxy: ProxyUnderTest

beforeAll(async () => {
  stubs = await startStubs()
})
afterAll(async () => {
  await stubs?.close()
})
beforeEach(async () => {
  issuer = await startIssuer(AUDIENCE)
  proxy = await startProxy(stubs, {
    FLAGS_FILE: flagsFileAt(50),
    ROUTES_FILE: routesFile(),
    AUTH_ISSUERS: issuer.url,
    AUTH_AUDIENCE: AUDIENCE,
    AUTH_JWKS_COOLDOWN_MS: String(COOLDOWN_MS),
    AUTH_FORWARD_CLAIMS: 'roles,scope,tenant.id',
  })
  for (const stub of [stubs.monolith, stubs.movies, stubs.events]) stub.received.length = 0
})
afterEach(async () => {
  await proxy?.close()
  await issuer?.close()
})

const bearer = (token: string) => ({ authorization: `Bearer ${token}` })
const get = (url: string, headers: Record<string, string> = {}) => proxy.app.inject({ url, headers })
const stubNamed = (name: string) => [stubs.monolith, stubs.movies, stubs.events].find((s) => s.name === name)!
const lastReceived = (upstream = 'monolith') => stubNamed(upstream).received.at(-1)!

async function metric(name: string): Promise<string[]> {
  const text = (await proxy.ops.inject({ url: '/metrics' })).body
  return text.split('\n').filter((line) => line.startsWith(name))
}

describe('a route that requires a token', () => {
  it('routes a valid token by its subject, ignores a spoofed X-User-Id and sends the verified identity upstream', async () => {
    const sides = new Map<string, string>()
    for (let i = 0; i < 40; i++) {
      const res = await get('/api/movies', bearer(await issuer.token({ sub: `user-${i}` })))
      expect(res.statusCode).toBe(200)
      sides.set(`user-${i}`, res.headers['x-upstream'] as string)
    }
    expect(new Set(sides.values())).toEqual(new Set(['monolith', 'movies-service']))
    // Thirty spoofed ids (about half would land on the other side if they counted) change nothing.
    const token = await issuer.token({ sub: 'user-7', roles: ['viewer', 'a,b'], tenant: { id: 't-1' } })
    for (let i = 0; i < 30; i++) {
      const res = await get(`/api/movies?user_id=spoof-${i}`, { ...bearer(token), 'x-user-id': `spoof-${i}`, 'x-auth-sub': 'admin', 'x-auth-roles': 'owner' })
      expect(res.headers['x-upstream']).toBe(sides.get('user-7'))
    }
    const seen = lastReceived(sides.get('user-7')).headers
    expect(seen['x-user-id']).toBe('user-7')
    expect(seen['x-auth-sub']).toBe('user-7')
    expect(seen['x-auth-issuer']).toBe(issuer.url)
    expect(seen['x-auth-roles']).toBe('viewer,a%2Cb')
    expect(seen['x-auth-tenant-id']).toBe('t-1')
    expect(seen['x-auth-scope']).toBeUndefined()
  })

  it('accepts an access token the provider itself issued (client credentials grant, JWT for the audience)', async () => {
    const res = await get('/api/movies', { ...bearer(await issuer.issued()), 'x-user-id': 'spoof' })
    expect(res.statusCode).toBe(200)
    const seen = lastReceived(res.headers['x-upstream'] as string).headers
    expect(seen['x-auth-sub']).toBe(CLIENT_ID)
    expect(seen['x-user-id']).toBe(CLIENT_ID)
    expect(seen['x-auth-scope']).toBe('movies')
  })

  it('answers 401 with WWW-Authenticate and the catalogue JSON to a missing, expired, foreign, forged or unknown-key token', async () => {
    const missing = await get('/api/movies', { 'x-user-id': 'user-1' })
    expect(missing.statusCode).toBe(401)
    expect(missing.headers['www-authenticate']).toBe('Bearer realm="cinemaabyss"')
    expect(missing.json()).toMatchObject({ code: 'CA_ERR_TOKEN_MISSING' })

    const now = Math.floor(Date.now() / 1000)
    const key = issuer.keys[0]!
    const pem = await exportSPKI(key.publicKey)
    const part = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url')
    const claims = { iss: issuer.url, sub: 'user-1', aud: AUDIENCE, exp: now + 300 }
    const hsInput = `${part({ alg: 'HS256', typ: 'JWT', kid: key.kid })}.${part(claims)}`
    const bad: Record<string, string> = {
      expired: await issuer.token({ exp: now - 120, iat: now - 600 }),
      'wrong audience': await issuer.token({ aud: 'another-app' }),
      'wrong issuer': await issuer.token({ iss: 'http://127.0.0.1:1/evil' }),
      'not yet valid': await issuer.token({ nbf: now + 600 }),
      'no expiry': await issuer.token({ exp: undefined }),
      'alg none': `${part({ alg: 'none', typ: 'JWT' })}.${part(claims)}.`,
      'HS256 with the public key': `${hsInput}.${createHmac('sha256', pem).update(hsInput).digest('base64url')}`,
      'unknown kid': await signToken(await newKey('RS256'), claims),
      'known kid, other key': await signToken({ ...(await newKey('RS256')), kid: key.kid }, claims),
      garbage: 'not-a-token',
    }
    for (const [what, token] of Object.entries(bad)) {
      const res = await get('/api/movies', bearer(token))
      expect(res.statusCode, what).toBe(401)
      expect(res.headers['www-authenticate'], what).toMatch(/^Bearer realm="cinemaabyss", error="invalid_token", error_description="[^"]+"$/)
      expect(res.json(), what).toMatchObject({ code: 'CA_ERR_TOKEN_INVALID', error: expect.stringContaining('not accepted') })
      expect(res.headers['x-upstream'], what).toBeUndefined()
    }
    expect(stubs.monolith.received.length + stubs.movies.received.length).toBe(0)
    expect((await metric('proxy_auth_requests_total{route="movies",result="invalid"}'))[0]).toMatch(/ 10$/)
  })

  it('answers 403 with insufficient_scope when the route\'s role rule fails, and passes the role', async () => {
    const without = await get('/api/events', bearer(await issuer.token({ roles: ['viewer'] })))
    expect(without.statusCode).toBe(403)
    expect(without.headers['www-authenticate']).toMatch(/error="insufficient_scope"/)
    expect(without.json()).toMatchObject({ code: 'CA_ERR_TOKEN_INSUFFICIENT' })
    const withRole = await get('/api/events', bearer(await issuer.token({ roles: ['viewer', 'events-writer'] })))
    expect(withRole.statusCode).toBe(200)
    expect(withRole.headers['x-upstream']).toBe('events-service')
  })
})

describe('an optional route and a route without a policy', () => {
  it('optional: no token passes (client identity headers dropped); a present token must be valid', async () => {
    const anonymous = await get('/api/movies/health', { 'x-user-id': 'spoof', 'x-auth-sub': 'admin' })
    expect(anonymous.statusCode).toBe(200)
    expect(lastReceived('movies-service').headers['x-user-id']).toBeUndefined()
    expect(lastReceived('movies-service').headers['x-auth-sub']).toBeUndefined()
    const bad = await get('/api/movies/health', bearer(await issuer.token({ aud: 'another-app' })))
    expect(bad.statusCode).toBe(401)
    const good = await get('/api/movies/health', bearer(await issuer.token({ sub: 'user-9' })))
    expect(good.statusCode).toBe(200)
    expect(lastReceived('movies-service').headers['x-auth-sub']).toBe('user-9')
  })

  it('off: nothing is checked and the client\'s headers go upstream as they came', async () => {
    const res = await get('/api/users', { authorization: 'Bearer not-a-token', 'x-user-id': 'legacy-7' })
    expect(res.statusCode).toBe(200)
    expect(lastReceived().headers['x-user-id']).toBe('legacy-7')
    expect(lastReceived().headers.authorization).toBe('Bearer not-a-token')
  })
})

describe("the issuer's keys", () => {
  it('are fetched once for concurrent first callers, refetched on the first token with a rotated key, at most once per cooldown for a storm of unknown kids', async () => {
    const tokens = await Promise.all(Array.from({ length: 20 }, (_, i) => issuer.token({ sub: `u-${i}` })))
    const first = await Promise.all(tokens.map((token) => get('/api/movies', bearer(token))))
    expect(first.map((r) => r.statusCode)).toEqual(Array(20).fill(200))
    expect(issuer.fetches).toEqual({ jwks: 1, discovery: 1 })

    await sleep(COOLDOWN_MS + 100)
    // The provider restarted with a new key set: the first token signed with it is accepted.
    const rotated = await issuer.rotate()
    const res = await get('/api/movies', bearer(await issuer.token({}, rotated)))
    expect(res.statusCode).toBe(200)
    expect(issuer.fetches.jwks).toBe(2)

    await sleep(COOLDOWN_MS + 100)
    // 200 forged tokens, each naming a kid of its own: at most one fetch per cooldown begun.
    const forger = await newKey('ES256')
    const forged = await Promise.all(Array.from({ length: 200 }, (_, i) => signToken(forger, { iss: issuer.url, sub: 'x', aud: AUDIENCE, exp: Math.floor(Date.now() / 1000) + 60 }, { kid: `forged-${i}` })))
    const started = Date.now()
    const storm = await Promise.all(forged.map((token) => get('/api/movies', bearer(token))))
    const cooldowns = Math.floor((Date.now() - started) / COOLDOWN_MS) + 1
    expect(storm.every((r) => r.statusCode === 401)).toBe(true)
    expect(issuer.fetches.jwks - 2).toBeGreaterThanOrEqual(1)
    expect(issuer.fetches.jwks - 2).toBeLessThanOrEqual(cooldowns)
  }, 30_000)

  it('keep serving from the last good set while the issuer is down (counted), also past their maximum age, and 503 only before any was fetched', async () => {
    expect((await get('/api/movies', bearer(await issuer.token()))).statusCode).toBe(200)
    // A second proxy whose keys are old after a second: jose's set would refetch them, and throw when that fails.
    const aged = await startProxy(stubs, { FLAGS_FILE: flagsFileAt(50), ROUTES_FILE: routesFile(), AUTH_ISSUERS: issuer.url, AUTH_AUDIENCE: AUDIENCE, AUTH_JWKS_COOLDOWN_MS: String(COOLDOWN_MS), AUTH_JWKS_MAX_AGE_MS: '1000' })
    try {
      expect((await aged.app.inject({ url: '/api/movies', headers: bearer(await issuer.token({ sub: 'aged-0' })) })).statusCode).toBe(200)
      await issuer.stop()
      await sleep(COOLDOWN_MS + 100)
      // An unknown kid makes the proxy try the issuer: the fetch fails, the old keys stay.
      const stranger = await signToken(await newKey('RS256'), { iss: issuer.url, sub: 'x', aud: AUDIENCE, exp: Math.floor(Date.now() / 1000) + 60 })
      expect((await get('/api/movies', bearer(stranger))).statusCode).toBe(401)
      for (let i = 0; i < 5; i++) expect((await get('/api/movies', bearer(await issuer.token({ sub: `down-${i}` })))).statusCode).toBe(200)
      expect(await metric(`proxy_auth_jwks_stale{issuer="${issuer.url}"}`)).toEqual([`proxy_auth_jwks_stale{issuer="${issuer.url}"} 1`])
      expect(await metric(`proxy_auth_jwks_fetches_total{issuer="${issuer.url}",result="error"}`)).toEqual([`proxy_auth_jwks_fetches_total{issuer="${issuer.url}",result="error"} 1`])

      // Past the maximum age, with the issuer down: the first request tries it once, then the issuer rests for the cooldown.
      for (let i = 1; i <= 5; i++) expect((await aged.app.inject({ url: '/api/movies', headers: bearer(await issuer.token({ sub: `aged-${i}` })) })).statusCode).toBe(200)
      const agedErrors = (await aged.ops.inject({ url: '/metrics' })).body.split('\n').filter((line) => line.startsWith('proxy_auth_jwks_fetches_total') && line.includes('result="error"'))
      expect(agedErrors).toEqual([`proxy_auth_jwks_fetches_total{issuer="${issuer.url}",result="error"} 1`])
    } finally {
      await aged.close()
    }

    // A proxy that never reached the issuer answers 503 (retry soon), not 401.
    const fresh = await startProxy(stubs, { FLAGS_FILE: flagsFileAt(50), ROUTES_FILE: routesFile(), AUTH_ISSUERS: issuer.url, AUTH_AUDIENCE: AUDIENCE })
    try {
      const res = await fresh.app.inject({ url: '/api/movies', headers: bearer(await issuer.token()) })
      expect(res.statusCode).toBe(503)
      expect(res.json()).toMatchObject({ code: 'CA_ERR_TOKEN_ISSUER_UNAVAILABLE' })
    } finally {
      await fresh.close()
    }
    await issuer.start()
  }, 30_000)
})

describe('/admin/explain on a route with a token policy', () => {
  it('says the identity comes from the token', async () => {
    const res = await proxy.ops.inject({ url: '/admin/explain?path=/api/movies&user_id=user-3', headers: admin })
    expect(res.statusCode).toBe(200)
    expect(res.json()).toMatchObject({ route: 'movies', identity: { source: 'token', auth: 'required' } })
    const off = await proxy.ops.inject({ url: '/admin/explain?path=/api/movies/health', headers: admin })
    expect(off.json()).toMatchObject({ route: 'movies-health' })
  })
})
