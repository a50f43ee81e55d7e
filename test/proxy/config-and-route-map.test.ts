// Start-up checks: the proxy's environment (original variable names, clear errors) and the
// route map file (validated, errors naming the entry and field).
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { createBreaker } from '../../proxy/forward/breakers.ts'
import { ENV_VARS, loadConfig } from '../../proxy/config.ts'
import { createMetrics } from '../../proxy/observability/metrics.ts'
import { loadRouteMap, matchRoute, parseRouteMap, readRouteFile } from '../../proxy/model/route-map.ts'
import { createPool } from '../../proxy/forward/upstream-client.ts'
import { captureLogs } from '../helpers/logs.ts'
import { startService } from '../helpers/processes.ts'

const shipped = readRouteFile(loadConfig({}).routesFile) as { upstreams: unknown[] }
/** A route map with the shipped upstreams and the given routes. */
const withRoutes = (routes: unknown[]) => ({ upstreams: shipped.upstreams, routes })
const upstreamOf = (c: ReturnType<typeof loadConfig>, name: string) => c.routeMap.upstreams.find((u) => u.name === name)?.url

describe('config', () => {
  it('defaults to the original ports and reads the original variables', () => {
    const c = loadConfig({})
    expect([c.port, upstreamOf(c, 'monolith'), upstreamOf(c, 'movies-service'), upstreamOf(c, 'events-service')]).toEqual([8000, 'http://localhost:8080', 'http://localhost:8081', 'http://localhost:8082'])
    const set = loadConfig({ MONOLITH_URL: 'http://monolith:8080/', MOVIES_SERVICE_URL: 'https://movies.example/base', EVENTS_SERVICE_URL: 'http://events-service:8082' })
    expect([upstreamOf(set, 'monolith'), upstreamOf(set, 'movies-service'), upstreamOf(set, 'events-service')]).toEqual(['http://monolith:8080', 'https://movies.example/base', 'http://events-service:8082'])
    expect([c.gradualMigration, c.moviesMigrationPercent, c.unleashUrl, c.adminToken, c.redisUrl]).toEqual([undefined, undefined, undefined, undefined, undefined])
    const legacy = loadConfig({ GRADUAL_MIGRATION: 'true', MOVIES_MIGRATION_PERCENT: '35' })
    expect([legacy.gradualMigration, legacy.moviesMigrationPercent]).toEqual([true, 35])
  })

  it('names every bad variable', () => {
    expect(() => loadConfig({ MOVIES_MIGRATION_PERCENT: '150', GRADUAL_MIGRATION: 'maybe', MONOLITH_URL: 'monolith:8080' })).toThrow(
      /MONOLITH_URL must use http or https.*GRADUAL_MIGRATION must be true or false.*MOVIES_MIGRATION_PERCENT must be an integer between 0 and 100/,
    )
    expect(() => loadConfig({ UNLEASH_URL: 'http://unleash:4242/api' })).toThrow('UNLEASH_API_TOKEN is required when UNLEASH_URL is set')
    expect(() => loadConfig({ ADMIN_TOKEN: 'short' })).toThrow('ADMIN_TOKEN must be at least 24 characters')
  })

  it('derives where Unleash writes go and where the ledger file lives', () => {
    const unleash = { UNLEASH_URL: 'http://unleash:4242/api/', UNLEASH_API_TOKEN: '*:production.secret', FLAGS_FILE: '/srv/flags/flags.json' }
    expect(loadConfig(unleash)).toMatchObject({ unleashAdminUrl: 'http://unleash:4242/api/admin', unleashEnvironment: 'production', unleashProject: 'default', ledgerFile: '/srv/flags/rollout-ledger.jsonl' })
    expect(loadConfig({ ...unleash, UNLEASH_API_TOKEN: 'a-token-of-another-shape' }).unleashEnvironment).toBe('development')
    const explicit = loadConfig({ ...unleash, UNLEASH_ADMIN_URL: 'https://flags.example/api/admin', UNLEASH_ENVIRONMENT: 'staging', UNLEASH_PROJECT: 'edge', LEDGER_FILE: '/var/ledger.jsonl' })
    expect(explicit).toMatchObject({ unleashAdminUrl: 'https://flags.example/api/admin', unleashEnvironment: 'staging', unleashProject: 'edge', ledgerFile: '/var/ledger.jsonl' })
    expect(loadConfig({}).unleashAdminUrl).toBeUndefined()
    expect(() => loadConfig({ UNLEASH_ADMIN_URL: 'ftp://x' })).toThrow(/UNLEASH_ADMIN_URL must use http or https/)
    expect(() => loadConfig({ LEDGER_MAX_ENTRIES: '5' })).toThrow(/LEDGER_MAX_ENTRIES must be between 10 and 1000000/)
  })

  it('lists every variable it reads in ENV_VARS', () => {
    for (const name of ['PORT', 'MONOLITH_URL', 'MOVIES_SERVICE_URL', 'EVENTS_SERVICE_URL', 'GRADUAL_MIGRATION', 'MOVIES_MIGRATION_PERCENT', 'UNLEASH_URL', 'UNLEASH_API_TOKEN', 'FLAGS_FILE', 'ROUTES_FILE', 'ADMIN_TOKEN', 'REDIS_URL', 'BREAKER_VOLUME_THRESHOLD', 'BREAKER_ERROR_PERCENT', 'BREAKER_RESET_TIMEOUT_MS', 'UPSTREAM_CONNECT_TIMEOUT_MS', 'UPSTREAM_RESPONSE_TIMEOUT_MS', 'RATE_LIMIT_MAX', 'ALLOW_BACKEND_OVERRIDE', 'ADMIN_TOKENS', 'UNLEASH_ADMIN_TOKEN', 'UNLEASH_ADMIN_URL', 'UNLEASH_PROJECT', 'UNLEASH_ENVIRONMENT', 'LEDGER_FILE', 'LEDGER_MAX_ENTRIES', 'LEDGER_REDIS_KEY']) {
      expect(ENV_VARS).toContain(name)
    }
  })

  it('refuses to start with a bad variable, naming it', async () => {
    await expect(startService('proxy/server.ts', { MOVIES_MIGRATION_PERCENT: '101' }, { timeoutMs: 20_000 })).rejects.toThrow(/proxy: cannot start: .*MOVIES_MIGRATION_PERCENT must be an integer between 0 and 100/)
  })
})

describe('route map', () => {
  it('ships /api/movies split by movies-migration (its health check always to movies-service), /api/events to events-service, the rest to the monolith', () => {
    const { routes } = loadRouteMap(loadConfig({}).routesFile, {})
    expect(routes.map((r) => [r.name, r.prefix, r.legacy.name, r.target?.name, r.flag])).toEqual([
      ['movies', '/api/movies', 'monolith', 'movies-service', 'movies-migration'],
      ['movies-health', '/api/movies/health', 'movies-service', undefined, undefined],
      ['events', '/api/events', 'events-service', undefined, undefined],
      ['default', '/', 'monolith', undefined, undefined],
    ])
    expect(matchRoute(routes, '/api/movies').name).toBe('movies')
    expect(matchRoute(routes, '/api/movies/42').name).toBe('movies')
    expect(matchRoute(routes, '/api/movies/health').name).toBe('movies-health')
    expect(matchRoute(routes, '/api/moviesx').name).toBe('default')
    expect(matchRoute(routes, '/api/events/movie').name).toBe('events')
  })

  const catchAll = { name: 'default', prefix: '/', legacy: 'monolith' }
  const monolith = { name: 'monolith', url: { env: 'MONOLITH_URL', default: 'http://localhost:8080' } }
  const invalid: Array<[unknown, RegExp]> = [
    [withRoutes([{ ...catchAll, legacy: 'monolit' }]), /\/routes\/0\/legacy: unknown upstream "monolit" \(declared: monolith, movies-service, events-service\)/],
    [withRoutes([{ name: 'm', prefix: '/api/movies', legacy: 'monolith', target: 'movies-service' }, catchAll]), /\/routes\/0: "target" and "flag" go together/],
    [withRoutes([{ name: 'm', prefix: '/api/movies', legacy: 'monolith' }]), /a catch-all route with prefix "\/" is required/],
    [withRoutes([{ name: 'h', prefix: '/health', legacy: 'monolith' }, catchAll]), /\/routes\/0\/prefix: "\/health" is answered by the proxy itself/],
    [withRoutes([{ name: 'm', prefix: 'api/movies/', legacy: 'monolith' }, catchAll]), /\/routes\/0\/prefix: Expected string to match .* \(got "api\/movies\/"\)/],
    [withRoutes([catchAll, { ...catchAll, name: 'again' }]), /\/routes\/1\/prefix: duplicate prefix "\/"/],
    [withRoutes([{ ...catchAll, weight: 3 }]), /\/routes\/0\/weight: Unexpected property/],
    [{ route: [] }, /routes/],
    [{ routes: [catchAll] }, /\/upstreams: Expected required property/],
    [{ upstreams: [monolith, { ...monolith }], routes: [catchAll] }, /\/upstreams\/1\/name: duplicate upstream name "monolith"/],
    [{ upstreams: [{ name: 'monolith', url: 'monolith:8080' }], routes: [catchAll] }, /\/upstreams\/0\/url must use http or https/],
    [{ upstreams: [{ name: 'monolith', url: { env: 'NO_SUCH_URL' } }], routes: [catchAll] }, /\/upstreams\/0\/url: NO_SUCH_URL is required \(the route map gives no default\)/],
    [{ upstreams: [{ ...monolith, url: { env: 'MONOLITH_URL', default: 'nope' } }], routes: [catchAll] }, /\/upstreams\/0\/url\/default must be a URL/],
    [{ upstreams: [{ ...monolith, breaker: { errorPercent: 150 } }], routes: [catchAll] }, /\/upstreams\/0\/breaker\/errorPercent: Expected integer to be less or equal to 100/],
    [{ upstreams: [{ ...monolith, pool: { connectTimeout: 5 } }], routes: [catchAll] }, /\/upstreams\/0\/pool\/connectTimeout: Unexpected property/],
    [{ upstreams: [monolith, { name: 'spare', url: 'http://spare:1' }], routes: [catchAll] }, /\/upstreams\/1: upstream "spare" is not used by any route/],
  ]
  for (const [raw, message] of invalid) {
    it(`rejects ${JSON.stringify(raw).slice(0, 90)}`, () => {
      expect(() => parseRouteMap(raw, {}, 'routes.json')).toThrow(message)
    })
  }

  it('names the file when it is not JSON', () => {
    const file = join(mkdtempSync(join(tmpdir(), 'routes-')), 'routes.json')
    writeFileSync(file, '{ routes: ')
    expect(() => loadRouteMap(file, {})).toThrow(new RegExp(`route map ${file}: .*JSON`))
  })
})

describe('components validate their own options where they are created', () => {
  it('names the component and the field', () => {
    const breaker = { volumeThreshold: 10, errorPercent: 150, resetTimeoutMs: 1_000, consecutiveFailures: 5, windowMs: 10_000 }
    expect(() => createBreaker('users-service', breaker, createMetrics(), captureLogs().logger)).toThrow(/breaker of users-service: invalid options: \/errorPercent: Expected integer to be less or equal to 100/)
    expect(() => createPool('http://users:1', { connections: 0, connectTimeoutMs: 1, responseTimeoutMs: 1, streamIdleTimeoutMs: 1 })).toThrow(/pool of http:\/\/users:1: invalid options: \/connections/)
  })
})
