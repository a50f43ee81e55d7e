// The two rules that open a breaker, on the breaker alone with fake timers: N consecutive
// failures open it whatever the window's earlier successes; the percentage rule still holds
// for a flapping upstream; half-open, the first good trial closes it; a client's own error
// (anything but an UpstreamFailure) never counts.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { createBreaker, type UpstreamBreaker } from '../../proxy/forward/breakers.ts'
import { createMetrics } from '../../proxy/observability/metrics.ts'
import { UpstreamFailure } from '../../proxy/forward/upstream-client.ts'
import { captureLogs } from '../helpers/logs.ts'

const settings = {
  volumeThreshold: 10,
  errorPercent: 50,
  resetTimeoutMs: 10_000,
  windowMs: 10_000,
  consecutiveFailures: 5,
}

let breakers: UpstreamBreaker[] = []
const make = (overrides: Partial<typeof settings> = {}) => {
  const breaker = createBreaker('movies-service', { ...settings, ...overrides }, createMetrics(), captureLogs().logger)
  breakers.push(breaker)
  return breaker
}
const ok = (b: UpstreamBreaker) => b.fire(async () => 'ok')
const fail = (b: UpstreamBreaker) => b.fire(async () => Promise.reject(new UpstreamFailure('connect', 'movies-service is unreachable'))).catch(() => 'failed')
async function times(n: number, call: () => Promise<unknown>) {
  for (let i = 0; i < n; i++) await call()
}

beforeEach(() => {
  vi.useFakeTimers()
})
afterEach(() => {
  for (const b of breakers) b.shutdown()
  breakers = []
  vi.useRealTimers()
})

describe('consecutive failures', () => {
  it('open the breaker after N in a row, although 50 earlier successes keep the percentage low', async () => {
    const b = make()
    await times(50, () => ok(b))
    await times(4, () => fail(b))
    expect(b.state()).toBe('closed')
    await fail(b)
    expect(b.state()).toBe('open')
    await expect(ok(b)).rejects.toMatchObject({ code: 'EOPENBREAKER' })
  })

  it('are counted in a row only: a success in between starts again', async () => {
    const b = make()
    await times(50, () => ok(b))
    for (let round = 0; round < 5; round++) {
      await times(4, () => fail(b))
      await ok(b)
    }
    expect(b.state()).toBe('closed')
  })

  it('are ignored with BREAKER_CONSECUTIVE_FAILURES=0 (the percentage rule alone)', async () => {
    const b = make({ consecutiveFailures: 0 })
    await times(50, () => ok(b))
    await times(20, () => fail(b))
    expect(b.state()).toBe('closed')
  })

  it('never include a client-side error', async () => {
    const b = make()
    await times(10, () => b.fire(async () => Promise.reject(new Error('client closed the request'))).catch(() => {}))
    expect(b.state()).toBe('closed')
    expect(b.stats().failures).toBe(0)
  })
})

describe('percentage rule and recovery', () => {
  it('still opens a flapping upstream above 50 % failures over the window, with no long streak', async () => {
    const b = make()
    for (let i = 0; i < 3; i++) {
      await ok(b)
      await fail(b)
      await fail(b)
    }
    expect(b.state()).toBe('closed') // 6 failures of 9 calls: below the volume threshold (10)
    await ok(b)
    await fail(b)
    expect(b.state()).toBe('open')
  })

  it('half-opens after the reset timeout and closes on the first good trial; a bad trial reopens it', async () => {
    const b = make()
    await times(5, () => fail(b))
    expect(b.state()).toBe('open')
    vi.advanceTimersByTime(settings.resetTimeoutMs)
    expect(b.state()).toBe('halfOpen')
    await fail(b)
    expect(b.state()).toBe('open')
    vi.advanceTimersByTime(settings.resetTimeoutMs)
    expect(b.state()).toBe('halfOpen')
    await ok(b)
    expect(b.state()).toBe('closed')
    // Closed again, the streak starts from zero.
    await times(4, () => fail(b))
    expect(b.state()).toBe('closed')
  })
})

describe('stats', () => {
  /** A call that takes `ms` of (fake) time, then succeeds or fails. */
  const taking = (b: UpstreamBreaker, ms: number, failing = false) => {
    const call = b.fire(() => new Promise((resolve, reject) => setTimeout(() => (failing ? reject(new UpstreamFailure('reset', 'dropped')) : resolve('ok')), ms))).catch(() => 'failed')
    vi.advanceTimersByTime(ms)
    return call
  }

  it("give the mean latency of the window's calls, successes and failures alike, and forget the calls that left the window", async () => {
    const b = make()
    expect(b.stats().latencyMean).toBe(0)
    await taking(b, 100)
    await taking(b, 300)
    await taking(b, 200, true)
    expect(b.stats()).toMatchObject({ successes: 2, failures: 1, latencyMean: 200 })
    vi.advanceTimersByTime(settings.windowMs + 1)
    await taking(b, 40)
    expect(b.stats().latencyMean).toBe(40)
  })
})
