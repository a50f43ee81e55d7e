// Guarded ramps through a real proxy (file mode) over stub upstreams: a ramp over a failing
// target rolls back with the reason, one over a healthy target completes, pause / resume /
// rollback, validation, the standing guard, and the ramp state after a restart.
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { REPO_ROOT } from '../helpers/processes.ts'
import { eventually } from '../helpers/poll.ts'
import { metric } from '../helpers/metrics.ts'
import { admin, flagsFileAt, startProxy, startStubs, type ProxyUnderTest, type Stubs } from './proxy-harness.ts'

// Fast ticks; breakers that do not open, so the guard's own 5xx signal is what is tested.
const FAST = { RAMP_TICK_MS: '100', BREAKER_CONSECUTIVE_FAILURES: '0', BREAKER_VOLUME_THRESHOLD: '100000' }
// Generous on latency: a handful of requests on a shared machine makes a noisy p99.
const fastPlan = { intervalSeconds: 1, minRequests: 5, maxErrorRatePercent: 1, maxLatencyRatio: 100 }

let stubs: Stubs
beforeAll(async () => {
  stubs = await startStubs()
})
afterAll(() => stubs?.close())
afterEach(() => {
  stubs.movies.mode = 'ok'
})

const proxies: ProxyUnderTest[] = []
afterEach(async () => {
  await Promise.all(proxies.splice(0).map((p) => p.close()))
})
async function proxy(env: Record<string, string> = {}): Promise<ProxyUnderTest> {
  const p = await startProxy(stubs, { ...FAST, ...env })
  proxies.push(p)
  return p
}

const ramp = (p: ProxyUnderTest) => p.ops.inject({ url: '/admin/routes/movies/ramp', headers: admin }).then((r) => r.json())
const percentOf = (p: ProxyUnderTest) => p.ops.inject({ url: '/admin/state', headers: admin }).then((r) => r.json().routes.find((x: { name: string }) => x.name === 'movies').percent)
let user = 0
/** Client traffic on the split route until `done` holds (bounded). */
async function trafficUntil(p: ProxyUnderTest, what: string, done: () => Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  await eventually(
    what,
    async () => {
      for (let i = 0; i < 20; i++) await p.app.inject({ url: '/api/movies', headers: { 'x-user-id': `ramp-user-${user++}` } })
      return done()
    },
    timeoutMs,
  )
}

describe('guarded ramps (file mode)', () => {
  it('a ramp over a failing target goes back to 0 with the signal, its value and the limit', async () => {
    const p = await proxy({ FLAGS_FILE: flagsFileAt(0) })
    stubs.movies.mode = 'fail'
    const put = await p.ops.inject({ method: 'PUT', url: '/admin/routes/movies/ramp', headers: admin, payload: { steps: [20, 50, 100], ...fastPlan, reason: 'movies v2' } })
    expect(put.statusCode).toBe(200)
    expect(put.json()).toMatchObject({ state: 'running', percent: 20, step: 1, steps: [20, 50, 100] })
    expect(await percentOf(p)).toBe(20)
    await trafficUntil(p, 'the ramp rolled back', async () => (await ramp(p)).state === 'rolled_back')
    const view = await ramp(p)
    expect(view).toMatchObject({ state: 'rolled_back', percent: 0, breach: { signal: 'error_rate', limit: 1 } })
    expect(view.breach.value).toBeGreaterThan(1)
    expect(view.reason).toMatch(/^rolled back by the guard at 20 % \(step 1 of 3\): target 5xx rate [\d.]+ % > limit 1 %$/)
    expect(view.window.target.errors).toBeGreaterThan(0)
    // Stored first, then written to the flags file (pendingRollout until then).
    await eventually('the flag at 0', async () => (await percentOf(p)) === 0 && (await ramp(p)).pendingRollout === null)
    const flags = JSON.parse(readFileSync(p.flagsFile, 'utf8'))
    expect(flags.featureStrategies.find((s: { featureName: string }) => s.featureName === 'movies-migration').parameters.rollout).toBe('0')
    const text = (await p.ops.inject({ url: '/metrics' })).body
    expect(metric(text, 'proxy_ramp_rollbacks_total{route="movies",source="guard",signal="error_rate"}')).toBe(1)
    expect(metric(text, 'proxy_ramp_state{route="movies",state="rolled_back"}')).toBe(1)
    expect(metric(text, 'proxy_rollout_percent{route="movies"}')).toBe(0)
    expect(p.logs.lines.some((l) => l.msg === 'rollout changed by the ramp controller' && l.source === 'guard')).toBe(true)
    const ledger = (await p.ops.inject({ url: '/admin/ledger?route=movies', headers: admin })).json().entries
    expect(ledger[0]).toMatchObject({ source: 'guard', from: 20, to: 0, reason: expect.stringMatching(/5xx rate/) })
  })

  it('a ramp over a healthy target completes at 100 %', async () => {
    const p = await proxy({ FLAGS_FILE: flagsFileAt(0) })
    const before = stubs.movies.received.length
    await p.ops.inject({ method: 'PUT', url: '/admin/routes/movies/ramp', headers: admin, payload: { steps: [20, 60, 100], ...fastPlan } })
    const seen = new Set<number>()
    await trafficUntil(p, 'the ramp completed', async () => {
      const view = await ramp(p)
      seen.add(view.percent)
      return view.state === 'completed'
    })
    expect(await ramp(p)).toMatchObject({ state: 'completed', percent: 100, nextStepAt: null, reason: expect.stringMatching(/^completed/) })
    expect([...seen].sort((a, b) => a - b)).toEqual([20, 60, 100])
    expect(await percentOf(p)).toBe(100)
    expect(stubs.movies.received.length).toBeGreaterThan(before)
    const text = (await p.ops.inject({ url: '/metrics' })).body
    expect(metric(text, 'proxy_guard_signal{route="movies",signal="target_requests"}')).toBeGreaterThan(0)
  })

  it('pause, resume and rollback; clear 400/404/409 answers', async () => {
    const p = await proxy({ FLAGS_FILE: flagsFileAt(0) })
    const call = (method: 'GET' | 'PUT' | 'POST', url: string, payload?: object) => p.ops.inject({ method, url, headers: admin, ...(payload ? { payload } : {}) })
    for (const [payload, message] of [
      [{ steps: [25, 5] }, /strictly ascending/],
      [{ steps: [] }, /steps/],
      [{ steps: [0, 50] }, /steps/],
      [{ steps: [5, 101] }, /steps/],
      [{ steps: [5], intervalSeconds: 0 }, /intervalSeconds/],
      [{ steps: [5], maxLatencyRatio: 0.5 }, /maxLatencyRatio/],
      [{ steps: [5], minRequests: 1.5 }, /minRequests/],
      [{ steps: [5], surprise: true }, /additional/],
      [{}, /steps/],
    ] as const) {
      const res = await call('PUT', '/admin/routes/movies/ramp', payload)
      expect([res.statusCode, res.json().error], JSON.stringify(payload)).toEqual([400, expect.stringMatching(message)])
    }
    expect((await call('PUT', '/admin/routes/nope/ramp', { steps: [5] })).statusCode).toBe(404)
    expect((await call('GET', '/admin/routes/nope/ramp')).statusCode).toBe(404)
    expect((await call('GET', '/admin/routes/movies/ramp')).json().error).toMatch(/no ramp/)
    const noTarget = await call('PUT', '/admin/routes/events/ramp', { steps: [5] })
    expect([noTarget.statusCode, noTarget.json().error]).toEqual([409, expect.stringMatching(/no target/)])
    expect((await p.ops.inject({ url: '/admin/routes/movies/ramp' })).statusCode).toBe(401)

    expect((await call('PUT', '/admin/routes/movies/ramp', { steps: [10, 50], intervalSeconds: 1, minRequests: 1, maxErrorRatePercent: 100, maxLatencyRatio: 1000 })).statusCode).toBe(200)
    const again = await call('PUT', '/admin/routes/movies/ramp', { steps: [10, 50] })
    expect([again.statusCode, again.json().error]).toEqual([409, expect.stringMatching(/already running/)])
    const paused = await call('POST', '/admin/routes/movies/ramp/pause', { reason: 'waiting for the DBA' })
    expect([paused.statusCode, paused.json().state, paused.json().nextStepAt]).toEqual([200, 'paused', null])
    expect((await call('POST', '/admin/routes/movies/ramp/pause')).statusCode).toBe(409)
    // Paused: traffic and time pass, the step does not.
    for (let i = 0; i < 30; i++) await p.app.inject({ url: '/api/movies', headers: { 'x-user-id': `paused-${i}` } })
    await new Promise((r) => setTimeout(r, 1_500))
    expect(await ramp(p)).toMatchObject({ state: 'paused', percent: 10 })
    const resumed = await call('POST', '/admin/routes/movies/ramp/resume')
    expect([resumed.statusCode, resumed.json().state]).toEqual([200, 'running'])
    const back = await call('POST', '/admin/routes/movies/rollback', { reason: 'pager at 3am' })
    expect(back.statusCode).toBe(200)
    expect(back.json()).toMatchObject({ state: 'rolled_back', percent: 0, reason: expect.stringMatching(/rolled back by admin at \d+ %.*: pager at 3am$/) })
    expect(await percentOf(p)).toBe(0)
    expect((await call('POST', '/admin/routes/movies/ramp/resume')).statusCode).toBe(409)
    // A rollback with no ramp running (and no body) still sends the route to 0.
    await call('PUT', '/admin/routes/movies/rollout', { percent: 40 })
    const bare = await call('POST', '/admin/routes/movies/rollback')
    expect([bare.statusCode, bare.json().percent]).toEqual([200, 0])
    expect(await percentOf(p)).toBe(0)
    // Every action is in the ledger (newest first), with who did it and why.
    const entries: { source: string; actor: string; from: number; to: number; reason: string }[] = (await call('GET', '/admin/ledger?route=movies')).json().entries
    expect(entries.map((e) => [e.source, e.actor, e.from, e.to])).toEqual([
      ['admin', 'admin', 40, 0],
      ['admin', 'admin', 0, 40],
      ['admin', 'admin', 10, 0],
      ['ramp', 'admin', 10, 10],
      ['ramp', 'admin', 10, 10],
      ['admin', 'admin', 0, 10],
    ])
    expect(entries.map((e) => e.reason)).toEqual([expect.anything(), expect.anything(), expect.stringMatching(/pager at 3am/), expect.stringMatching(/resumed/), expect.stringMatching(/paused at 10 %: waiting for the DBA/), expect.anything()])
  })

  it('the standing guard rolls a breaching route back without a human', async () => {
    const routes = JSON.parse(readFileSync(join(REPO_ROOT, 'proxy/routes.json'), 'utf8'))
    routes.routes.find((r: { name: string }) => r.name === 'movies').guard = { intervalSeconds: 1, minRequests: 5, maxErrorRatePercent: 5, maxLatencyRatio: 50 }
    const routesFile = join(mkdtempSync(join(tmpdir(), 'ramp-routes-')), 'routes.json')
    writeFileSync(routesFile, JSON.stringify(routes))
    const p = await proxy({ FLAGS_FILE: flagsFileAt(50), ROUTES_FILE: routesFile })
    // Healthy: it stays.
    for (let i = 0; i < 60; i++) await p.app.inject({ url: '/api/movies', headers: { 'x-user-id': `guarded-${i}` } })
    await new Promise((r) => setTimeout(r, 1_200))
    expect(await percentOf(p)).toBe(50)
    stubs.movies.mode = 'fail'
    await trafficUntil(p, 'the standing guard rolled back', async () => (await percentOf(p)) === 0)
    expect(await ramp(p)).toMatchObject({ kind: 'guard', state: 'rolled_back', percent: 0, breach: { signal: 'error_rate' }, reason: expect.stringMatching(/^rolled back from 50 % by the standing guard/) })
  })

  it('a ramp survives a restart: its state is in the flags file directory', async () => {
    const flagsFile = flagsFileAt(0)
    const first = await startProxy(stubs, { ...FAST, FLAGS_FILE: flagsFile })
    await first.ops.inject({ method: 'PUT', url: '/admin/routes/movies/ramp', headers: admin, payload: { steps: [15, 100], intervalSeconds: 3600, reason: 'slow one' } })
    const was = await ramp(first)
    await first.close()
    const second = await proxy({ FLAGS_FILE: flagsFile })
    expect(await ramp(second)).toMatchObject({ state: 'running', percent: 15, step: 1, nextStepAt: was.nextStepAt, startedBy: { actor: 'admin', reason: 'slow one' } })
    expect(await percentOf(second)).toBe(15)
    expect((await second.ops.inject({ method: 'PUT', url: '/admin/routes/movies/ramp', headers: admin, payload: { steps: [50] } })).statusCode).toBe(409)
  })
})
