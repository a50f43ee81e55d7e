// The three flag sources and which wins: the flags file (reloaded on change, a broken file
// keeps the last good flags), the admin API writing that file, the legacy GRADUAL_MIGRATION /
// MOVIES_MIGRATION_PERCENT pair pinning the movies flag, and Unleash (here unreachable: the
// file bootstraps, health is reported, nothing blocks). The real Unleash server: unleash.test.ts.
import { readFileSync, writeFileSync } from 'node:fs'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
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
  it('routes by the flags file, reports the source down, stays ready and refuses admin rollout changes', async () => {
    const port = await freePort() // nothing listens there
    const proxy = await startProxy(stubs, {
      FLAGS_FILE: flagsFileAt(100),
      UNLEASH_URL: `http://127.0.0.1:${port}/api`,
      UNLEASH_API_TOKEN: 'default:development.unused',
      UNLEASH_REFRESH_INTERVAL_MS: '200',
      UNLEASH_TIMEOUT_MS: '500',
      GRADUAL_MIGRATION: 'false',
    })
    try {
      expect(await targetShare(proxy)).toBe(1)
      await eventually('the failed fetch to be reported', async () => (await state(proxy)).flags.lastError !== undefined)
      const s = await state(proxy)
      expect(s.flags).toMatchObject({ kind: 'unleash', loaded: true, healthy: false })
      expect(s.routes[0]).toMatchObject({ percent: 100, source: 'file' })
      const text = (await proxy.ops.inject('/metrics')).body
      expect(metric(text, 'proxy_flag_source_up{source="unleash"}')).toBe(0)
      expect((await proxy.app.inject('/ready')).statusCode).toBe(200)
      const put = await proxy.ops.inject({ method: 'PUT', url: '/admin/routes/movies/rollout', headers: admin, payload: { percent: 10 } })
      expect(put.statusCode).toBe(409)
      expect(put.json().error).toMatch(/change the rollout of movies-migration in Unleash/)
      expect(proxy.logs.lines.some((l) => String(l.msg).includes('GRADUAL_MIGRATION / MOVIES_MIGRATION_PERCENT are ignored'))).toBe(true)
    } finally {
      await proxy.close()
    }
  })
})
