// The ramp scheduler on fake timers: ticks, steps, rollbacks, the standing guard, with the real
// traffic recorder and state machine; the rollout changes, the breaker state and (on fake
// time, where file I/O would not finish between ticks) the ramp store are the test's. The
// state file is tested on real time, ticking by hand.
import { mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import type { BreakerStateName } from '../../proxy/model/upstream-options.ts'
import type { FlagSource } from '../../proxy/flags/flag-source.ts'
import { createMetrics } from '../../proxy/observability/metrics.ts'
import { localCoordination, type Coordination } from '../../proxy/rollout/ramp/coordination.ts'
import { createRampController, type RampController } from '../../proxy/rollout/ramp/controller.ts'
import type { ShadowTotals } from '../../proxy/model/guard.ts'
import type { Ramp, Why } from '../../proxy/rollout/ramp/state.ts'
import { createTrafficRecorder } from '../../proxy/rollout/ramp/traffic.ts'
import type { Route, Upstream } from '../../proxy/model/route-map.ts'
import type { Upstreams } from '../../proxy/forward/upstreams.ts'
import { captureLogs } from '../helpers/logs.ts'
import { metric } from '../helpers/metrics.ts'

const upstream = (name: string): Upstream => ({ name, url: `http://${name}`, healthPath: '/health', pool: {}, breaker: {} })
const limits = { maxErrorRatePercent: 5, maxMismatchRatePercent: 1, maxLatencyRatio: 3, minRequests: 10 }

/** The file store's contract, in memory. */
function memoryCoordination(): Coordination {
  const ramps = new Map<string, Ramp>()
  return {
    lease: { kind: 'local', hold: async () => 1, releaseAll: async () => {} },
    store: {
      load: async (route) => ramps.get(route),
      save: async (ramp, expected) => {
        if ((ramps.get(ramp.route)?.version ?? 0) !== expected) return 'conflict'
        ramps.set(ramp.route, ramp)
        return 'saved'
      },
    },
  }
}

function setup(opts: { guard?: Route['guard']; dir?: string; clock?: { now(): number } } = {}) {
  const routes: Route[] = [
    { name: 'movies', prefix: '/api/movies', legacy: upstream('monolith'), target: upstream('movies-service'), flag: 'movies-migration', ...(opts.guard ? { guard: opts.guard } : {}) },
    { name: 'default', prefix: '/', legacy: upstream('monolith') },
  ]
  const breaker = { state: 'closed' as BreakerStateName }
  const upstreams = new Map([['movies-service', { breaker: { state: () => breaker.state } }]]) as unknown as Upstreams
  const flag = { percent: 0, loaded: true }
  const flags = {
    kind: 'file',
    state: () => ({ flag: 'movies-migration', percent: flag.percent, sticky: true, source: 'file' }),
    status: () => ({ kind: 'file', loaded: flag.loaded, healthy: flag.loaded, location: 'test' }),
  } as unknown as FlagSource
  const changes: Array<{ percent: number; why: Why }> = []
  /** The next this many rollout changes fail. */
  const failures = { next: 0 }
  const shadow: ShadowTotals = { comparisons: 0, mismatches: 0 }
  const traffic = createTrafficRecorder(routes)
  const metrics = createMetrics()
  const dir = opts.dir
  const logs = captureLogs()
  /** What stages.ts would answer: whether readers may go back to legacy (writes on the target, parity). */
  const parity = { ok: true, drift: 0 }
  const actions: Array<Record<string, unknown>> = []
  const ramps = createRampController({
    routes,
    traffic,
    upstreams,
    flags,
    coordination: dir ? localCoordination(join(dir, 'ramps.json'), logs.logger) : memoryCoordination(),
    clock: opts.clock,
    changeRollout: async (_route, percent, why) => {
      if (failures.next > 0) {
        failures.next--
        throw new Error('flags file not writable')
      }
      flag.percent = percent
      changes.push({ percent, why })
    },
    shadowTotals: () => ({ ...shadow }),
    recordAction: async (entry) => void actions.push(entry),
    readsMayGoBack: async () => ({ ok: parity.ok, guard: { drift: parity.drift, unreplicatedToLegacy: parity.ok ? 0 : 3 }, sample: { missingOnLegacy: parity.ok ? [] : ['41'] } }),
    metrics,
    logger: logs.logger,
    tickMs: 1_000,
  })
  /** `n` requests, `errors` of them 5xx, split between the sides as the rollout says. */
  const traffick = (n: number, errors = 0) => {
    for (let i = 0; i < n; i++) {
      const toTarget = (i * 100) / n < flag.percent
      traffic.record('movies', toTarget ? 'movies-service' : 'monolith', toTarget && i < errors ? 500 : 200, 'sticky', 3)
    }
  }
  return { ramps, changes, flag, breaker, shadow, traffick, metrics, dir, failures, logs, parity, actions }
}

let controllers: RampController[] = []
beforeEach(() => {
  vi.useFakeTimers({ now: Date.parse('2026-11-29T10:00:00Z') })
})
afterEach(async () => {
  await Promise.all(controllers.map((c) => c.close()))
  controllers = []
  vi.useRealTimers()
})
const started = (s: ReturnType<typeof setup>) => {
  controllers.push(s.ramps)
  s.ramps.start()
  return s
}

describe('ramp controller', () => {
  it('applies the first step at once, steps on each interval the guard holds, then completes', async () => {
    const s = started(setup())
    const view = await s.ramps.startRamp('movies', { steps: [10, 50, 100], intervalSeconds: 60, ...limits, reason: 'v2' }, 'alice')
    expect(view).toMatchObject({ state: 'running', percent: 10, step: 1, nextStepAt: '2026-11-29T10:01:00.000Z' })
    expect(s.changes).toEqual([{ percent: 10, why: { actor: 'alice', reason: 'ramp started: step 1 of 3 (v2)', source: 'admin' } }])
    await expect(s.ramps.startRamp('movies', { steps: [20] }, 'bob')).rejects.toMatchObject({ statusCode: 409, message: expect.stringMatching(/already running/) })

    for (const expected of [50, 100]) {
      await vi.advanceTimersByTimeAsync(30_000)
      s.traffick(200)
      await vi.advanceTimersByTimeAsync(31_000)
      expect(s.flag.percent).toBe(expected)
    }
    s.traffick(200)
    await vi.advanceTimersByTimeAsync(61_000)
    const done = await s.ramps.view('movies')
    expect(done).toMatchObject({ state: 'completed', percent: 100, nextStepAt: null })
    expect(s.changes.map((c) => c.percent)).toEqual([10, 50, 100])
    expect(s.changes[1]!.why).toMatchObject({ actor: 'ramp', source: 'ramp' })
    const text = await s.metrics.registry.metrics()
    expect(metric(text, 'proxy_ramp_state{route="movies",state="completed"}')).toBe(1)
    expect(metric(text, 'proxy_ramp_state{route="movies",state="running"}')).toBe(0)
  })

  it('a replica that has not loaded the flags leaves the ramp alone until it has them', async () => {
    const s = started(setup())
    await s.ramps.startRamp('movies', { steps: [10, 50], intervalSeconds: 60, ...limits }, 'alice')
    s.flag.loaded = false
    await vi.advanceTimersByTimeAsync(30_000)
    s.traffick(200)
    await vi.advanceTimersByTimeAsync(61_000)
    expect(s.changes.map((c) => c.percent)).toEqual([10])
    expect(metric(await s.metrics.registry.metrics(), 'proxy_ramp_lease_held{route="movies"}')).toBe(0)
    s.flag.loaded = true
    s.traffick(200)
    await vi.advanceTimersByTimeAsync(61_000)
    expect(s.changes.map((c) => c.percent)).toEqual([10, 50])
  })

  it('stays on a step without enough requests and says so', async () => {
    const s = started(setup())
    await s.ramps.startRamp('movies', { steps: [10, 50], intervalSeconds: 60, ...limits }, 'alice')
    s.traffick(50) // 5 target requests of the 10 needed
    await vi.advanceTimersByTimeAsync(61_000)
    const view = await s.ramps.view('movies')
    expect(view).toMatchObject({ state: 'running', percent: 10, step: 1 })
    expect(view.reason).toMatch(/staying at 10 %.*5 of 10 target requests/)
    s.traffick(50) // the window keeps growing: 10 now
    await vi.advanceTimersByTimeAsync(60_000)
    expect(s.flag.percent).toBe(50)
  })

  it('rolls back to 0 at once on a breach (5xx, mismatches, an open breaker), with the reason', async () => {
    const s = started(setup())
    await s.ramps.startRamp('movies', { steps: [50, 100], intervalSeconds: 300, ...limits }, 'alice')
    s.traffick(40, 3) // 3 of 20 target requests fail: 15 %
    await vi.advanceTimersByTimeAsync(1_500) // the next tick, long before the step is due
    expect(s.flag.percent).toBe(0)
    const view = await s.ramps.view('movies')
    expect(view).toMatchObject({ state: 'rolled_back', percent: 0, breach: { signal: 'error_rate', value: 15, limit: 5 } })
    expect(view.reason).toBe('rolled back by the guard at 50 % (step 1 of 2): target 5xx rate 15 % > limit 5 %')
    expect(view.window).toMatchObject({ target: { requests: 20, errors: 3 }, errorRatePercent: 15 })
    expect(s.changes.at(-1)).toEqual({ percent: 0, why: { actor: 'guard', reason: 'ramp rolled back: target 5xx rate 15 % > limit 5 %', source: 'guard' } })
    expect(metric(await s.metrics.registry.metrics(), 'proxy_ramp_rollbacks_total{route="movies",source="guard",signal="error_rate"}')).toBe(1)

    // A new ramp may start once the last one ended; the shadow mismatch rate and the breaker guard it too.
    await s.ramps.startRamp('movies', { steps: [50, 100], intervalSeconds: 300, ...limits }, 'alice')
    s.shadow.comparisons += 100
    s.shadow.mismatches += 30
    await vi.advanceTimersByTimeAsync(1_000)
    expect((await s.ramps.view('movies')).breach).toEqual({ signal: 'mismatch_rate', value: 30, limit: 1 })
    await s.ramps.startRamp('movies', { steps: [50, 100], intervalSeconds: 300, ...limits }, 'alice')
    s.breaker.state = 'open'
    await vi.advanceTimersByTimeAsync(1_000)
    expect(await s.ramps.view('movies')).toMatchObject({ state: 'rolled_back', breach: { signal: 'breaker', value: 'open' } })
    expect(s.flag.percent).toBe(0)
  })

  it('keeps a rollback it could not write pending and retries it every tick until it is written', async () => {
    const s = started(setup())
    await s.ramps.startRamp('movies', { steps: [50, 100], intervalSeconds: 300, ...limits }, 'alice')
    s.failures.next = 2
    s.breaker.state = 'open'
    await vi.advanceTimersByTimeAsync(1_000)
    expect(await s.ramps.view('movies')).toMatchObject({ state: 'rolled_back', percent: 0, pendingRollout: 0 })
    expect(s.flag.percent).toBe(50)
    await vi.advanceTimersByTimeAsync(2_000)
    expect(s.flag.percent).toBe(0)
    expect(await s.ramps.view('movies')).toMatchObject({ state: 'rolled_back', pendingRollout: null })
  })

  it('freezes instead of rolling back while readers may not go back (writes on the target), and rolls back once parity is 0', async () => {
    const s = started(setup())
    await s.ramps.startRamp('movies', { steps: [10, 50, 100], intervalSeconds: 60, ...limits }, 'alice')
    s.parity.ok = false
    s.parity.drift = 2
    s.traffick(1000, 15)
    await vi.advanceTimersByTimeAsync(1_000)
    const frozen = await s.ramps.view('movies')
    expect(frozen).toMatchObject({ state: 'paused', percent: 10, nextStepAt: null, frozen: { breach: { signal: 'error_rate', value: 15, limit: 5 } } })
    expect(frozen.reason).toMatch(/^frozen at 10 % \(step 1 of 3\) by the guard: target 5xx rate 15 % > limit 5 %; writes are on the target.*drift 2, 3 changes not on legacy/)
    expect(s.flag.percent).toBe(10)
    expect(s.actions).toEqual([
      expect.objectContaining({ route: 'movies', from: 10, to: 10, actor: 'guard', source: 'guard', stage: 'freeze', guard: expect.objectContaining({ drift: 2, unreplicatedToLegacy: 3, errorRatePercent: 15 }), sample: { missingOnLegacy: ['41'] } }),
    ])
    expect(metric(await s.metrics.registry.metrics(), 'proxy_ramp_frozen{route="movies"}')).toBe(1)
    // No further step while frozen, however long it holds.
    s.traffick(1000)
    await vi.advanceTimersByTimeAsync(120_000)
    expect(s.flag.percent).toBe(10)
    // Parity 0: the readers go back, as the breach asked.
    s.parity.ok = true
    s.parity.drift = 0
    await vi.advanceTimersByTimeAsync(1_000)
    const back = await s.ramps.view('movies')
    expect(back).toMatchObject({ state: 'rolled_back', percent: 0, frozen: null })
    expect(back.reason).toMatch(/rolled back by the guard after a freeze: target 5xx rate 15 % > limit 5 %; parity is 0 now/)
    expect(s.flag.percent).toBe(0)
    expect(metric(await s.metrics.registry.metrics(), 'proxy_ramp_frozen{route="movies"}')).toBe(0)
  })

  it('pauses (no steps), resumes, and rolls back by hand', async () => {
    const s = started(setup())
    await s.ramps.startRamp('movies', { steps: [10, 50], intervalSeconds: 60, ...limits }, 'alice')
    expect(await s.ramps.pause('movies', 'bob')).toMatchObject({ state: 'paused', nextStepAt: null })
    s.traffick(500)
    await vi.advanceTimersByTimeAsync(300_000)
    expect(s.flag.percent).toBe(10)
    await expect(s.ramps.pause('movies', 'bob')).rejects.toMatchObject({ statusCode: 409 })
    expect(await s.ramps.resume('movies', 'bob')).toMatchObject({ state: 'running', nextStepAt: '2026-11-29T10:06:00.000Z' })
    const back = await s.ramps.rollback('movies', 'carol', 'pager')
    expect(back).toMatchObject({ state: 'rolled_back', percent: 0, reason: 'rolled back by carol at 10 % (step 1 of 2): pager' })
    expect(s.changes.at(-1)).toEqual({ percent: 0, why: { actor: 'carol', reason: 'rollback: pager', source: 'admin' } })
    await expect(s.ramps.resume('movies', 'bob')).rejects.toMatchObject({ statusCode: 409 })
    // Without a ramp, rollback still sends the route to 0.
    s.flag.percent = 40
    expect(await s.ramps.rollback('movies', 'carol', '')).toMatchObject({ percent: 0, state: 'rolled_back' })
    expect(s.flag.percent).toBe(0)
  })

  it('names unknown routes (404) and routes without a target (409)', async () => {
    const s = started(setup())
    await expect(s.ramps.view('nope')).rejects.toMatchObject({ statusCode: 404, message: expect.stringMatching(/no route named "nope"/) })
    await expect(s.ramps.startRamp('default', { steps: [5] }, 'a')).rejects.toMatchObject({ statusCode: 409, message: expect.stringMatching(/no target/) })
    await expect(s.ramps.view('movies')).rejects.toMatchObject({ statusCode: 404, message: expect.stringMatching(/no ramp/) })
  })

  it('standing guard: rolls a breaching route back without a human, leaves a healthy one and a route at 0 alone', async () => {
    const s = started(setup({ guard: { intervalSeconds: 30, limits } }))
    s.flag.percent = 50
    s.traffick(100)
    await vi.advanceTimersByTimeAsync(40_000)
    expect(s.flag.percent).toBe(50)
    s.traffick(100, 30)
    await vi.advanceTimersByTimeAsync(1_000)
    expect(s.flag.percent).toBe(0)
    const view = await s.ramps.view('movies')
    expect(view).toMatchObject({ kind: 'guard', state: 'rolled_back', breach: { signal: 'error_rate' } })
    expect(view.reason).toMatch(/^rolled back from 50 % by the standing guard: target 5xx rate/)
    expect(s.changes).toEqual([{ percent: 0, why: expect.objectContaining({ actor: 'guard', source: 'guard' }) }])
  })

  it('keeps its state in the flags directory: a new controller continues the ramp', async () => {
    vi.useRealTimers()
    const clock = { t: Date.parse('2026-11-29T10:00:00Z'), now: () => clock.t }
    const dir = mkdtempSync(join(tmpdir(), 'ramp-controller-'))
    const first = setup({ dir, clock })
    await first.ramps.startRamp('movies', { steps: [10, 50], intervalSeconds: 60, ...limits }, 'alice')
    const stored = JSON.parse(readFileSync(join(dir, 'ramps.json'), 'utf8'))
    expect(stored.routes.movies).toMatchObject({ state: 'running', percent: 10, version: 1 })
    await first.ramps.close()

    const second = setup({ dir, clock })
    controllers.push(second.ramps)
    second.flag.percent = 10
    expect(await second.ramps.view('movies')).toMatchObject({ state: 'running', percent: 10, startedBy: { actor: 'alice' } })
    await second.ramps.tick() // the window starts with this process
    second.traffick(200)
    clock.t += 61_000
    await second.ramps.tick()
    expect(second.flag.percent).toBe(50)
    expect(JSON.parse(readFileSync(join(dir, 'ramps.json'), 'utf8')).routes.movies).toMatchObject({ state: 'running', percent: 50, step: 1, pending: null, version: 3 })
  })

  it('moves an unreadable state file aside and starts without ramps', async () => {
    vi.useRealTimers()
    const dir = mkdtempSync(join(tmpdir(), 'ramp-controller-'))
    writeFileSync(join(dir, 'ramps.json'), '{"routes": {"movies": ')
    const s = setup({ dir })
    controllers.push(s.ramps)
    await expect(s.ramps.view('movies')).rejects.toMatchObject({ statusCode: 404 })
    expect(readdirSync(dir)).toEqual([expect.stringMatching(/^ramps\.json\.unreadable-\d+$/)])
    expect(s.logs.lines).toContainEqual(expect.objectContaining({ level: 50, msg: expect.stringMatching(/ramp state file unreadable/) }))
    await s.ramps.startRamp('movies', { steps: [10] }, 'alice')
    expect(readdirSync(dir).sort()).toEqual(['ramps.json', expect.stringMatching(/^ramps\.json\.unreadable-/)])
  })
})
