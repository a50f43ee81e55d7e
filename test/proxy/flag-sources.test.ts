// The three flag sources and which wins: the flags file (reloaded on change, a broken file
// keeps the last good flags), the admin API writing that file, the legacy GRADUAL_MIGRATION /
// MOVIES_MIGRATION_PERCENT pair pinning the movies flag, and Unleash (here unreachable: never
// the file; the last state known to the replicas, in Redis, or not ready and split routes 503;
// health is reported, nothing blocks). The real Unleash server: unleash.test.ts.
import { randomUUID } from 'node:crypto'
import { once } from 'node:events'
import { readFileSync, writeFileSync } from 'node:fs'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createRedis } from '../../lib/redis.ts'
import { toClientFeatures } from '../../proxy/flags/flag-definitions.ts'
import { createLastKnownFlags } from '../../proxy/flags/last-known-flags.ts'
import { captureLogs } from '../helpers/logs.ts'
import { redisUrl } from '../helpers/infra.ts'
import { freePort } from '../helpers/processes.ts'
import { eventually } from '../helpers/poll.ts'
import { metric } from '../helpers/metrics.ts'
import { admin, flagsFileAt, startProxy, startStubs, writeFlagsFile, type ProxyUnderTest, type Stubs } from './proxy-harness.ts'

let stubs: Stubs
beforeAll(async () => {
  stubs = await startStubs()
})
afterAll(() => stubs?.close())

const ids = Array.from({ length: 400 }, (_, i) => `id-${i}`)
async function targetShare(proxy: ProxyUnderTest): Promise<number> {
  let n = 0
  for (const id of ids) if ((await proxy.app.inject({ url: '/api/movies', headers: { 'x-user-id': id } })).headers['x-upstream'] === 'movies-service') n++
  return n / ids.length
}
const rolloutSeries = async (proxy: ProxyUnderTest) =>
  (await proxy.ops.inject('/metrics')).body.split('\n').filter((l) => l.startsWith('proxy_rollout_percent{'))
const state = async (proxy: ProxyUnderTest) => (await proxy.ops.inject({ url: '/admin/state', headers: admin })).json()

describe('flags file', () => {
  let proxy: ProxyUnderTest
  beforeAll(async () => {
    proxy = await startProxy(stubs, { FLAGS_FILE: flagsFileAt(0) })
  })
  afterAll(() => proxy?.close())

  it('follows edits of the file without a restart', async () => {
    expect(await targetShare(proxy)).toBe(0)
    writeFlagsFile(proxy.flagsFile, 100)
    await eventually('the proxy to load 100 % from the file', async () => (await state(proxy)).routes[0].percent === 100)
    expect(await targetShare(proxy)).toBe(1)
    expect(await rolloutSeries(proxy)).toEqual(['proxy_rollout_percent{route="movies",flag="movies-migration",source="file"} 100'])
  })

  it('keeps the last good flags when the file is broken, and reports it', async () => {
    writeFileSync(proxy.flagsFile, '{"features": [ oops')
    await eventually('the broken file to be noticed', async () => (await state(proxy)).flags.healthy === false)
    const s = await state(proxy)
    expect(s.flags.lastError).toMatch(/flags\.json: .*JSON/)
    expect(s.routes[0].percent).toBe(100)
    expect(await targetShare(proxy)).toBe(1)
    const text = (await proxy.ops.inject('/metrics')).body
    expect(metric(text, 'proxy_flag_source_up{source="file"}')).toBe(0)
    expect((await proxy.app.inject('/ready')).statusCode).toBe(200)
    expect(proxy.logs.lines.some((l) => l.level === 50 && String(l.msg).startsWith('flags file rejected'))).toBe(true)

    writeFlagsFile(proxy.flagsFile, 30)
    await eventually('the repaired file to be loaded', async () => (await state(proxy)).flags.healthy === true)
    expect(metric((await proxy.ops.inject('/metrics')).body, 'proxy_flag_source_up{source="file"}')).toBe(1)
    const share = await targetShare(proxy)
    expect(share).toBeGreaterThan(0.2)
    expect(share).toBeLessThan(0.4)
  })

  it('changes the rollout through the admin API: the file is rewritten and the change applies at once', async () => {
    const res = await proxy.ops.inject({ method: 'PUT', url: '/admin/routes/movies/rollout', headers: admin, payload: { percent: 100 } })
    expect(res.statusCode).toBe(200)
    expect(res.json()).toMatchObject({ name: 'movies', flag: 'movies-migration', percent: 100, source: 'file' })
    expect(await targetShare(proxy)).toBe(1)
    const written = JSON.parse(readFileSync(proxy.flagsFile, 'utf8'))
    expect(written.featureStrategies).toEqual([expect.objectContaining({ featureName: 'movies-migration', name: 'flexibleRollout', parameters: { groupId: 'movies-migration', stickiness: 'default', rollout: '100' } })])
    expect(written.featureEnvironments[0]).toMatchObject({ featureName: 'movies-migration', enabled: true })
  })
})

describe('GRADUAL_MIGRATION / MOVIES_MIGRATION_PERCENT (the original variables)', () => {
  it('pin the movies flag over the file: true = the percentage', async () => {
    const proxy = await startProxy(stubs, { FLAGS_FILE: flagsFileAt(0), GRADUAL_MIGRATION: 'true', MOVIES_MIGRATION_PERCENT: '100' })
    try {
      expect(await targetShare(proxy)).toBe(1)
      expect(await rolloutSeries(proxy)).toEqual(['proxy_rollout_percent{route="movies",flag="movies-migration",source="env"} 100'])
      // The file does not move a pinned flag, and neither does the admin API.
      const loadedAt = (await state(proxy)).flags.lastSuccessAt
      writeFlagsFile(proxy.flagsFile, 50)
      await eventually('the edited file to be read', async () => (await state(proxy)).flags.lastSuccessAt !== loadedAt)
      const put = await proxy.ops.inject({ method: 'PUT', url: '/admin/routes/movies/rollout', headers: admin, payload: { percent: 0 } })
      expect(put.statusCode).toBe(409)
      expect(put.json().error).toMatch(/pinned by GRADUAL_MIGRATION/)
      expect(await targetShare(proxy)).toBe(1)
    } finally {
      await proxy.close()
    }
  })

  it('false sends everyone to the monolith whatever the file says', async () => {
    const proxy = await startProxy(stubs, { FLAGS_FILE: flagsFileAt(100), GRADUAL_MIGRATION: 'false', MOVIES_MIGRATION_PERCENT: '100' })
    try {
      expect(await targetShare(proxy)).toBe(0)
      expect((await proxy.app.inject({ url: '/api/movies', headers: { 'x-user-id': 'a' } })).headers['x-route-reason']).toBe('flag')
    } finally {
      await proxy.close()
    }
  })

  it('a percentage alone is ignored, as in the original proxy', async () => {
    const proxy = await startProxy(stubs, { FLAGS_FILE: flagsFileAt(0), MOVIES_MIGRATION_PERCENT: '100' })
    try {
      expect(await targetShare(proxy)).toBe(0)
      expect(proxy.logs.lines.some((l) => String(l.msg).includes('MOVIES_MIGRATION_PERCENT is ignored'))).toBe(true)
    } finally {
      await proxy.close()
    }
  })
})

describe('Unleash configured but unreachable', () => {
  const unreachable = async () => ({
    UNLEASH_URL: `http://127.0.0.1:${await freePort()}/api`, // nothing listens there
    UNLEASH_API_TOKEN: 'default:development.unused',
    UNLEASH_REFRESH_INTERVAL_MS: '200',
    UNLEASH_TIMEOUT_MS: '500',
  })

  it('with no last known state: not ready, split routes 503 (never the bundled file), others served; admin rollout changes refused', async () => {
    const proxy = await startProxy(stubs, { FLAGS_FILE: flagsFileAt(100), GRADUAL_MIGRATION: 'false', ...(await unreachable()) })
    try {
      await eventually('the failed fetch to be reported', async () => (await state(proxy)).flags.lastError !== undefined)
      const s = await state(proxy)
      expect(s.flags).toMatchObject({ kind: 'unleash', loaded: false, healthy: false, servedFrom: 'none' })
      expect(s.flags.notLoaded).toMatch(/no answer from Unleash yet .* and no last known state \(no REDIS_URL: none kept\)/)
      // The file says 100 %: nobody is routed by it.
      const sent = () => stubs.movies.received.length + stubs.monolith.received.length
      const before = sent()
      const read = await proxy.app.inject({ url: '/api/movies', headers: { 'x-user-id': 'u1' } })
      expect([read.statusCode, read.headers['x-upstream'], read.headers['x-route-reason'], read.headers['retry-after']]).toEqual([503, 'proxy', 'no-flags', expect.any(String)])
      expect(read.json()).toMatchObject({ code: 'CA_ERR_FLAGS_NOT_LOADED', error: expect.stringMatching(/^route "movies" is split by flags this proxy replica has not loaded/) })
      const write = await proxy.app.inject({ method: 'POST', url: '/api/movies', headers: { 'x-user-id': 'u1' }, payload: { title: 'x' } })
      expect([write.statusCode, write.json().code]).toEqual([503, 'CA_ERR_FLAGS_NOT_LOADED'])
      expect(sent()).toBe(before)
      // A route with one side needs no flag.
      expect((await proxy.app.inject({ url: '/api/events/health' })).headers['x-upstream']).toBe('events-service')
      expect((await proxy.app.inject('/ready')).statusCode).toBe(503)
      const ready = await proxy.ops.inject('/ready')
      expect(ready.statusCode).toBe(503)
      expect(ready.json().error).toMatch(/flags not loaded from http:\/\/127\.0\.0\.1:\d+\/api: no answer from Unleash yet/)
      const text = (await proxy.ops.inject('/metrics')).body
      expect(metric(text, 'proxy_flag_source_up{source="unleash"}')).toBe(0)
      expect(metric(text, 'proxy_flags_loaded')).toBe(0)
      const put = await proxy.ops.inject({ method: 'PUT', url: '/admin/routes/movies/rollout', headers: admin, payload: { percent: 10 } })
      expect(put.statusCode).toBe(409)
      expect(put.json().error).toMatch(/change the rollout of movies-migration in Unleash/)
      expect(proxy.logs.lines.some((l) => String(l.msg).includes('GRADUAL_MIGRATION / MOVIES_MIGRATION_PERCENT are ignored'))).toBe(true)
    } finally {
      await proxy.close()
    }
  })

  it('with a last known state in Redis: routes by it (the writer side included), not by the file, and is ready', async () => {
    const redis = createRedis(redisUrl(), captureLogs().logger, { commandTimeoutMs: 2_000 })
    await once(redis, 'ready')
    const key = `test:flags-last-known:${randomUUID()}`
    try {
      // What a replica that reached Unleash saved: reads on legacy, writes on the target (the file says neither).
      const saved = toClientFeatures(JSON.parse(readFileSync(flagsFileAt({ 'movies-migration': 0, 'movies-migration-writes': 100 }), 'utf8')))
      await createLastKnownFlags({ redis, key, logger: captureLogs().logger }).storageProvider.set('cinemaabyss-proxy', saved)
      const proxy = await startProxy(stubs, { FLAGS_FILE: flagsFileAt(100), FLAGS_LAST_KNOWN_KEY: key, ...(await unreachable()) }, { redis })
      try {
        await eventually('the last known state to be loaded', async () => (await state(proxy)).flags.servedFrom === 'last-known')
        expect((await state(proxy)).flags).toMatchObject({ kind: 'unleash', loaded: true, healthy: false, lastKnownSavedAt: expect.any(String) })
        expect((await proxy.app.inject('/ready')).statusCode).toBe(200)
        const stage = (await proxy.ops.inject({ url: '/admin/routes/movies/stage', headers: admin })).json()
        expect(stage).toMatchObject({ readPercent: 0, writes: 'target', retired: false })
        const write = await proxy.app.inject({ method: 'POST', url: '/api/movies', headers: { 'x-user-id': 'u2' }, payload: { title: 'x' } })
        expect([write.headers['x-upstream'], write.headers['x-route-reason']]).toEqual(['movies-service', 'writes'])
        expect(await targetShare(proxy)).toBe(0)
        expect(proxy.logs.lines.some((l) => l.msg === 'routing by the last flag state known to the replicas until Unleash answers')).toBe(true)
      } finally {
        await proxy.close()
      }
    } finally {
      await redis.del(key)
      redis.disconnect()
    }
  })
})
