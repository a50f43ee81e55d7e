// The guard, the traffic windows and the ramp state machine, pure: no proxy, no timers.
import { describe, expect, it } from 'vitest'
import type { GuardLimits, WindowSignals } from '../../proxy/model/guard.ts'
import { judge, signalsOf } from '../../proxy/rollout/ramp/guard.ts'
import { guardRollback, pauseRamp, planOf, resumeRamp, rollbackRamp, startRamp, tickRamp, type Ramp } from '../../proxy/rollout/ramp/state.ts'
import { createTrafficRecorder, sideWindow } from '../../proxy/rollout/ramp/traffic.ts'
import { parseRouteMap } from '../../proxy/model/route-map.ts'

const limits: GuardLimits = { maxErrorRatePercent: 1, maxMismatchRatePercent: 0.5, maxLatencyRatio: 1.5, minRequests: 100 }
const side = (requests: number, errors = 0, p99Ms: number | null = requests ? 20 : null) => ({ requests, errors, p99Ms })

function window(over: Partial<Parameters<typeof signalsOf>[0]> = {}, l = limits): WindowSignals {
  return signalsOf({ startedAt: new Date(0).toISOString(), seconds: 300, target: side(200), legacy: side(2000), shadow: { comparisons: 0, mismatches: 0 }, breaker: 'closed', ...over }, l)
}

describe('guard', () => {
  it('holds on a healthy window and names each breached signal with its value and limit', () => {
    expect(judge(limits, window())).toEqual({ kind: 'hold' })
    expect(judge(limits, window({ target: side(200, 3) }))).toEqual({ kind: 'breach', breach: { signal: 'error_rate', value: 1.5, limit: 1 } })
    expect(judge(limits, window({ shadow: { comparisons: 1000, mismatches: 6 } }))).toEqual({ kind: 'breach', breach: { signal: 'mismatch_rate', value: 0.6, limit: 0.5 } })
    expect(judge(limits, window({ target: side(200, 0, 100), legacy: side(2000, 0, 50) }))).toEqual({ kind: 'breach', breach: { signal: 'latency_ratio', value: 2, limit: 1.5 } })
    expect(judge(limits, window({ breaker: 'open' }))).toEqual({ kind: 'breach', breach: { signal: 'breaker', value: 'open', limit: 'closed' } })
  })

  it('treats a signal with too few samples as no data, and says the window is short', () => {
    const short = window({ target: side(40, 40), shadow: { comparisons: 10, mismatches: 10 } })
    expect([short.errorRatePercent, short.mismatchRatePercent, short.latencyRatio]).toEqual([null, null, null])
    expect(judge(limits, short)).toEqual({ kind: 'insufficient', requests: 40, needed: 100 })
    // No shadow data at all (shadowing off) never blocks nor breaches.
    expect(window().mismatchRatePercent).toBeNull()
    // An open breaker is a breach whatever the counts.
    expect(judge(limits, window({ target: side(0), breaker: 'open' })).kind).toBe('breach')
  })

  it('does not compare latencies below the floor (a ratio of two tiny numbers is noise)', () => {
    expect(window({ target: side(200, 0, 5), legacy: side(2000, 0, 1) }).latencyRatio).toBe(1)
    expect(window({ target: side(200, 0, 20), legacy: side(2000, 0, 1) }).latencyRatio).toBe(2)
  })
})

describe('traffic recorder', () => {
  const routes = [{ name: 'movies', legacy: { name: 'monolith' }, target: { name: 'movies-service' } }, { name: 'default', legacy: { name: 'monolith' } }]

  it('counts each side, counts fallbacks as target errors, and differences snapshots into windows', () => {
    const traffic = createTrafficRecorder(routes)
    expect(traffic.totals('default')).toBeUndefined()
    traffic.record('default', 'monolith', 200, 'default', 1) // no split: not kept
    const base = traffic.totals('movies')!
    for (let i = 0; i < 98; i++) traffic.record('movies', 'movies-service', 200, 'sticky', 4)
    traffic.record('movies', 'movies-service', 502, 'sticky', 400)
    traffic.record('movies', 'monolith', 200, 'fallback', 900) // the target failed, legacy answered
    traffic.record('movies', 'monolith', 200, 'sticky', 2)
    traffic.record('movies', 'proxy', 503, 'sticky', 1) // the proxy's own answer: neither side
    const now = traffic.totals('movies')!
    expect(sideWindow(now.target, base.target)).toEqual({ requests: 100, errors: 2, p99Ms: 500 })
    expect(sideWindow(now.legacy, base.legacy)).toEqual({ requests: 1, errors: 0, p99Ms: 2 })
    // A later window only sees what came after.
    traffic.record('movies', 'movies-service', 200, 'sticky', 30)
    expect(sideWindow(traffic.totals('movies')!.target, now.target)).toEqual({ requests: 1, errors: 0, p99Ms: 30 })
  })
})

describe('ramp state machine', () => {
  const plan = planOf({ steps: [5, 25, 100], intervalSeconds: 60, minRequests: 100, reason: 'movies v2' })
  const start = (): Ramp => startRamp({ id: 'r1', route: 'movies', plan, actor: 'alice', version: 1, now: 0 }).ramp
  const hold = { kind: 'hold' } as const

  it('validates the plan: strictly ascending steps, defaults for what is omitted', () => {
    expect(() => planOf({ steps: [5, 5, 25] })).toThrow(/strictly ascending/)
    expect(() => planOf({ steps: [50, 25] })).toThrow(/strictly ascending/)
    expect(planOf({ steps: [10] })).toEqual({ steps: [10], intervalSeconds: 300, limits, reason: '' })
  })

  it('starts at the first step at once and moves one step per interval while the guard holds, then completes', () => {
    const first = startRamp({ id: 'r1', route: 'movies', plan, actor: 'alice', version: 1, now: 0 })
    expect(first.rollout).toEqual({ percent: 5, why: { actor: 'alice', reason: 'ramp started: step 1 of 3 (movies v2)', source: 'admin' } })
    expect(first.ramp).toMatchObject({ state: 'running', percent: 5, step: 0, nextStepAt: 60_000 })
    let ramp = first.ramp
    expect(tickRamp(ramp, hold, window(), 59_999)).toBeUndefined()
    const second = tickRamp(ramp, hold, window(), 60_000)!
    expect(second.rollout).toMatchObject({ percent: 25, why: { actor: 'ramp', source: 'ramp' } })
    ramp = second.ramp
    expect(ramp).toMatchObject({ step: 1, percent: 25, windowStartedAt: 60_000, nextStepAt: 120_000 })
    ramp = tickRamp(ramp, hold, window(), 120_000)!.ramp
    expect(ramp).toMatchObject({ step: 2, percent: 100 })
    const done = tickRamp(ramp, hold, window(), 180_000)!
    expect(done.rollout).toBeUndefined()
    expect(done.ramp).toMatchObject({ state: 'completed', percent: 100, nextStepAt: null })
    expect(tickRamp(done.ramp, { kind: 'breach', breach: { signal: 'breaker', value: 'open', limit: 'closed' } }, window(), 190_000)).toBeUndefined()
  })

  it('stays on the step while the window is short, saying so, and keeps the window growing', () => {
    const t = tickRamp(start(), { kind: 'insufficient', requests: 12, needed: 100 }, window(), 60_000)!
    expect(t.rollout).toBeUndefined()
    expect(t.ramp).toMatchObject({ state: 'running', percent: 5, step: 0, windowStartedAt: 0, nextStepAt: 120_000 })
    expect(t.ramp.reason).toMatch(/staying at 5 %.*12 of 100 target requests/)
  })

  it('goes straight to 0 on a breach, before the step is due, and ends rolled_back with the reason', () => {
    const breach = { signal: 'error_rate', value: 12.5, limit: 1 } as const
    const t = tickRamp(start(), { kind: 'breach', breach }, window(), 10_000)!
    expect(t.rollout).toEqual({ percent: 0, why: { actor: 'guard', reason: 'ramp rolled back: target 5xx rate 12.5 % > limit 1 %', source: 'guard' } })
    expect(t.ramp).toMatchObject({ state: 'rolled_back', percent: 0, nextStepAt: null, breach })
    expect(t.ramp.reason).toMatch(/^rolled back by the guard at 5 % \(step 1 of 3\): target 5xx rate 12.5 % > limit 1 %$/)
  })

  it('pauses (still guarded, never advancing), resumes with a fresh window, rolls back by hand', () => {
    const paused = pauseRamp(start(), 'bob', 30_000).ramp
    expect(paused).toMatchObject({ state: 'paused', nextStepAt: null })
    expect(() => pauseRamp(paused, 'bob', 31_000)).toThrow(/paused, not running/)
    expect(tickRamp(paused, hold, window(), 600_000)).toBeUndefined()
    expect(tickRamp(paused, { kind: 'breach', breach: { signal: 'breaker', value: 'open', limit: 'closed' } }, window(), 600_000)!.ramp.state).toBe('rolled_back')
    const resumed = resumeRamp(paused, 'bob', 700_000).ramp
    expect(resumed).toMatchObject({ state: 'running', windowStartedAt: 700_000, nextStepAt: 760_000 })
    expect(() => resumeRamp(resumed, 'bob', 0)).toThrow(/running, not paused/)
    const back = rollbackRamp(resumed, 'carol', 'bad deploy', 710_000)
    expect(back.rollout).toEqual({ percent: 0, why: { actor: 'carol', reason: 'rollback: bad deploy', source: 'admin' } })
    expect(back.ramp).toMatchObject({ state: 'rolled_back', percent: 0, reason: 'rolled back by carol at 5 % (step 1 of 3): bad deploy' })
  })

  it('records a standing-guard rollback', () => {
    const t = guardRollback({ id: 'g', route: 'movies', from: 50, limits, breach: { signal: 'breaker', value: 'open', limit: 'closed' }, window: window(), version: 4, now: 5 })
    expect(t.rollout).toEqual({ percent: 0, why: { actor: 'guard', reason: 'standing guard rolled back from 50 %: target breaker is open', source: 'guard' } })
    expect(t.ramp).toMatchObject({ kind: 'guard', state: 'rolled_back', percent: 0, version: 4 })
  })
})

describe('standing guard in the route map', () => {
  const upstreams = [
    { name: 'monolith', url: 'http://monolith:8080' },
    { name: 'movies-service', url: 'http://movies:8081' },
  ]
  const withGuard = (guard: unknown, split = true) => ({
    upstreams,
    routes: [{ name: 'movies', prefix: '/api/movies', legacy: 'monolith', ...(split ? { target: 'movies-service', flag: 'movies-migration' } : { legacy: 'movies-service' }), guard }, { name: 'default', prefix: '/', legacy: 'monolith' }],
  })

  it('is opt-in, with defaults for the limits it does not name', () => {
    const map = parseRouteMap(withGuard({ maxErrorRatePercent: 5 }), {})
    expect(map.routes[0]!.guard).toEqual({ intervalSeconds: 60, limits: { ...limits, maxErrorRatePercent: 5 } })
    expect(map.routes[1]!.guard).toBeUndefined()
  })

  for (const [guard, split, message] of [
    [{ maxErrorRatePercent: 200 }, true, /\/routes\/0\/guard\/maxErrorRatePercent: Expected number to be less or equal to 100/],
    [{ minRequests: 0 }, true, /\/routes\/0\/guard\/minRequests: Expected integer to be greater or equal to 1/],
    [{ maxLatencyRatio: 0.9 }, true, /\/routes\/0\/guard\/maxLatencyRatio/],
    [{ intervalSeconds: 'soon' }, true, /\/routes\/0\/guard\/intervalSeconds: Expected integer/],
    [{ window: 5 }, true, /\/routes\/0\/guard\/window: Unexpected property/],
    [{}, false, /\/routes\/0\/guard: only a split route \(with "target" and "flag"\) can be guarded/],
  ] as const) {
    it(`rejects ${JSON.stringify(guard)}${split ? '' : ' on a route without a target'}`, () => {
      expect(() => parseRouteMap(withGuard(guard, split), {}, 'routes.json')).toThrow(message)
    })
  }
})
