// The proxy following a real Unleash server (npm unleash-server 7, on a throw-away PostgreSQL
// database): the flag is created and its rollout changed through Unleash's Admin API, and the
// proxy follows without a restart; with Unleash stopped it keeps the last flags it had.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { pgAdminUrl } from '../helpers/infra.ts'
import { createEmptyDatabase, type TestDatabase } from '../../dev/pg-admin.ts'
import { startService, type ServiceProcess } from '../helpers/processes.ts'
import { eventually } from '../helpers/poll.ts'
import { metric } from '../helpers/metrics.ts'
import { admin, flagsFileAt, startProxy, startStubs, type ProxyUnderTest, type Stubs } from './proxy-harness.ts'

const ADMIN = '*:*.suite-admin-0123456789abcdef'
const CLIENT = 'default:development.proxy-client-0123456789abcdef'

let database: TestDatabase
let unleash: ServiceProcess
let stubs: Stubs
let proxy: ProxyUnderTest

async function unleashApi(method: string, path: string, body?: unknown) {
  const res = await fetch(`${unleash.url}/api/admin${path}`, {
    method,
    headers: { authorization: ADMIN, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(10_000),
  })
  const text = await res.text()
  if (!res.ok) throw new Error(`Unleash ${method} ${path}: ${res.status} ${text}`)
  return text ? JSON.parse(text) : undefined
}

const FEATURE = '/projects/default/features/movies-migration'
let strategyId: string
const rollout = (percent: number) => ({ name: 'flexibleRollout', constraints: [], parameters: { groupId: 'movies-migration', rollout: String(percent), stickiness: 'default' } })

beforeAll(async () => {
  database = await createEmptyDatabase(pgAdminUrl(), 'cinemaabyss_unleash')
  unleash = await startService('test/proxy/unleash-server-main.ts', { UNLEASH_DB_URL: database.url, ADMIN_TOKEN: ADMIN, CLIENT_TOKEN: CLIENT }, { timeoutMs: 150_000 })

  await unleashApi('POST', '/projects/default/features', { name: 'movies-migration', type: 'release', description: 'movies route rollout' })
  strategyId = (await unleashApi('POST', `${FEATURE}/environments/development/strategies`, rollout(30))).id
  await unleashApi('POST', `${FEATURE}/environments/development/on`)

  stubs = await startStubs()
  // The flags file says 0 %: anything else the proxy does comes from Unleash.
  proxy = await startProxy(stubs, {
    FLAGS_FILE: flagsFileAt(0),
    UNLEASH_URL: `${unleash.url}/api`,
    UNLEASH_API_TOKEN: CLIENT,
    UNLEASH_REFRESH_INTERVAL_MS: '300',
    UNLEASH_TIMEOUT_MS: '2000',
  })
}, 180_000)

afterAll(async () => {
  await proxy?.close()
  await stubs?.close()
  await unleash?.stop()
  await database?.drop()
})

const state = async () => (await proxy.app.inject({ url: '/admin/state', headers: admin })).json()
const ids = Array.from({ length: 2_000 }, (_, i) => `unleash-user-${i}`)
async function sides(): Promise<Map<string, string>> {
  const out = new Map<string, string>()
  for (const id of ids) out.set(id, (await proxy.app.inject({ url: '/api/movies', headers: { 'x-user-id': id } })).headers['x-upstream'] as string)
  return out
}
const share = (m: Map<string, string>) => [...m.values()].filter((s) => s === 'movies-service').length / m.size

describe('flags from a real Unleash server', () => {
  let at30: Map<string, string>

  it('routes by the rollout set in Unleash', async () => {
    await eventually('the proxy to fetch movies-migration at 30 % from Unleash', async () => {
      const route = (await state()).routes[0]
      return route.source === 'unleash' && route.percent === 30
    })
    const s = await state()
    expect(s.flags).toMatchObject({ kind: 'unleash', loaded: true, healthy: true, location: `${unleash.url}/api` })
    at30 = await sides()
    expect(share(at30)).toBeGreaterThan(0.26)
    expect(share(at30)).toBeLessThan(0.34)
    expect(metric((await proxy.app.inject('/metrics')).body, 'proxy_rollout_percent{route="movies",flag="movies-migration",source="unleash"}')).toBe(30)
    expect(metric((await proxy.app.inject('/metrics')).body, 'proxy_flag_source_up{source="unleash"}')).toBe(1)
  })

  it('follows a rollout change made in Unleash, moving users only from legacy to the target', async () => {
    await unleashApi('PUT', `${FEATURE}/environments/development/strategies/${strategyId}`, rollout(60))
    await eventually('the proxy to follow the change to 60 %', async () => (await state()).routes[0].percent === 60)
    const at60 = await sides()
    expect(share(at60)).toBeGreaterThan(0.56)
    expect(share(at60)).toBeLessThan(0.64)
    const movedBack = ids.filter((id) => at30.get(id) === 'movies-service' && at60.get(id) !== 'movies-service')
    expect(movedBack).toEqual([])
  })

  it('refuses rollout changes through the proxy: they belong in Unleash', async () => {
    const res = await proxy.app.inject({ method: 'PUT', url: '/admin/routes/movies/rollout', headers: admin, payload: { percent: 5 } })
    expect(res.statusCode).toBe(409)
    expect(res.json().error).toMatch(/change the rollout of movies-migration in Unleash/)
  })

  // Stopping the Unleash server and the proxy noticing take up to 30 s each on a loaded machine.
  it('keeps the last flags from Unleash when Unleash goes away, and says so', { timeout: 90_000 }, async () => {
    const before = await sides()
    await unleash.stop()
    await eventually('the proxy to notice Unleash is gone', async () => (await state()).flags.healthy === false)
    expect((await state()).routes[0]).toMatchObject({ percent: 60, source: 'unleash' })
    expect(await sides()).toEqual(before)
    expect(metric((await proxy.app.inject('/metrics')).body, 'proxy_flag_source_up{source="unleash"}')).toBe(0)
    expect((await proxy.app.inject('/ready')).statusCode).toBe(200)
    expect(proxy.logs.lines.some((l) => l.msg === 'Unleash unavailable' && l.keeping === 'last flags from Unleash')).toBe(true)
  })
})
