// One long-lived opossum breaker per upstream. Connection errors, timeouts and 5xx answers
// count as failures; the opossum timeout is off because undici's own connect/response
// timeouts bound every call (and actually abort it). Two rules open it: opossum's failure
// percentage over the rolling window (for flapping upstreams), and BREAKER_CONSECUTIVE_FAILURES
// failures in a row whatever the window's earlier successes (a dead target is cut off at once,
// as Envoy's outlier detection does). Half-open, the first good trial closes it.
import { Type, type Static } from '@sinclair/typebox'
import CircuitBreaker from 'opossum'
import type { Logger } from '../lib/logger.ts'
import { BREAKER_STATE, type BreakerEvent, type ProxyMetrics } from './metrics.ts'
import { checkOptions } from './options.ts'
import { isUpstreamFailure } from './upstream-client.ts'

export const BreakerOptions = Type.Object(
  {
    /** Calls in the window before the percentage rule may open it. */
    volumeThreshold: Type.Integer({ minimum: 1 }),
    /** Failure percentage over the window that opens it. */
    errorPercent: Type.Integer({ minimum: 1, maximum: 100 }),
    /** Open time before one trial call is let through. */
    resetTimeoutMs: Type.Integer({ minimum: 1 }),
    /** Failures in a row that open it whatever the window says; 0 = off. */
    consecutiveFailures: Type.Integer({ minimum: 0 }),
    /** Rolling window of the statistics. */
    windowMs: Type.Integer({ minimum: 100 }),
  },
  { additionalProperties: false },
)
export type BreakerOptions = Static<typeof BreakerOptions>

/** Work run through a breaker: resolves with the upstream's answer, rejects with UpstreamFailure. */
export type Call<T> = () => Promise<T>

export type BreakerStateName = keyof typeof BREAKER_STATE

export interface UpstreamBreaker {
  readonly upstream: string
  fire<T>(call: Call<T>): Promise<T>
  state(): BreakerStateName
  stats(): { fires: number; failures: number; successes: number; rejects: number; latencyMean: number }
  /** Counts a fallback away from this upstream (the breaker did not run it). */
  countFallback(): void
  shutdown(): void
}

export function isBreakerOpenError(error: unknown): boolean {
  return (error as { code?: string }).code === 'EOPENBREAKER'
}

export function createBreaker(upstream: string, options: BreakerOptions, metrics: ProxyMetrics, logger: Logger): UpstreamBreaker {
  const settings = checkOptions(BreakerOptions, options, `breaker of ${upstream}`)
  const breaker = new CircuitBreaker((call: Call<unknown>) => call(), {
    name: upstream,
    timeout: false,
    volumeThreshold: settings.volumeThreshold,
    errorThresholdPercentage: settings.errorPercent,
    resetTimeout: settings.resetTimeoutMs,
    rollingCountTimeout: settings.windowMs,
    rollingCountBuckets: 10,
    // Only upstream failures count: a client's oversized body or abort says nothing about the upstream.
    errorFilter: (error: unknown) => !isUpstreamFailure(error),
  })
  const events = {} as Record<BreakerEvent, { inc(by?: number): void }>
  for (const event of ['open', 'close', 'halfOpen', 'reject', 'timeout', 'failure', 'success', 'fallback'] as const) {
    events[event] = metrics.breakerEvents.labels(upstream, event)
    events[event].inc(0) // every series exists from the start, so rate() and alerts work before the first event
    if (event !== 'fallback' && event !== 'timeout') breaker.on(event as 'success', () => events[event].inc())
  }
  const gauge = metrics.breakerState.labels(upstream)
  gauge.set(BREAKER_STATE.closed)
  breaker.on('open', () => {
    gauge.set(BREAKER_STATE.open)
    logger.warn({ upstream, resetMs: settings.resetTimeoutMs, stats: summary() }, 'circuit breaker opened')
  })
  breaker.on('halfOpen', () => {
    gauge.set(BREAKER_STATE.halfOpen)
    logger.info({ upstream }, 'circuit breaker half-open: letting one trial request through')
  })
  breaker.on('close', () => {
    gauge.set(BREAKER_STATE.closed)
    logger.info({ upstream }, 'circuit breaker closed')
  })
  let consecutiveFailures = 0
  breaker.on('success', () => (consecutiveFailures = 0))
  breaker.on('failure', (error: unknown) => {
    if (isUpstreamFailure(error) && error.kind === 'timeout') events.timeout.inc()
    consecutiveFailures++
    if (settings.consecutiveFailures > 0 && consecutiveFailures >= settings.consecutiveFailures && breaker.closed) {
      logger.warn({ upstream, consecutiveFailures }, 'consecutive failures: opening the circuit breaker')
      breaker.open()
    }
  })
  breaker.on('open', () => (consecutiveFailures = 0))

  function summary() {
    const s = breaker.stats
    return { fires: s.fires, failures: s.failures, successes: s.successes, rejects: s.rejects, latencyMean: s.latencyMean }
  }

  return {
    upstream,
    fire: <T>(call: Call<T>) => breaker.fire(call) as Promise<T>,
    state: () => (breaker.opened ? 'open' : breaker.halfOpen ? 'halfOpen' : 'closed'),
    stats: summary,
    countFallback: () => events.fallback.inc(),
    shutdown: () => breaker.shutdown(),
  }
}
