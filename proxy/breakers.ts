// One long-lived opossum breaker per upstream. Connection errors, timeouts and 5xx answers
// count as failures; the opossum timeout is off because undici's own connect/response
// timeouts bound every call (and actually abort it). Two rules open it: opossum's failure
// percentage over the rolling window (for flapping upstreams), and BREAKER_CONSECUTIVE_FAILURES
// failures in a row whatever the window's earlier successes (a dead target is cut off at once,
// as Envoy's outlier detection does). Half-open, the first good trial closes it.
import CircuitBreaker from 'opossum'
import type { Logger } from '../lib/logger.ts'
import type { ProxyConfig } from './config.ts'
import { BREAKER_STATE, type BreakerEvent, type ProxyMetrics } from './metrics.ts'
import { UpstreamFailure } from './upstream-client.ts'

export type BreakerSettings = Pick<ProxyConfig, 'breakerVolumeThreshold' | 'breakerErrorPercent' | 'breakerResetTimeoutMs' | 'breakerWindowMs' | 'breakerConsecutiveFailures'>

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

export function createBreaker(upstream: string, settings: BreakerSettings, metrics: ProxyMetrics, logger: Logger): UpstreamBreaker {
  const breaker = new CircuitBreaker((call: Call<unknown>) => call(), {
    name: upstream,
    timeout: false,
    volumeThreshold: settings.breakerVolumeThreshold,
    errorThresholdPercentage: settings.breakerErrorPercent,
    resetTimeout: settings.breakerResetTimeoutMs,
    rollingCountTimeout: settings.breakerWindowMs,
    rollingCountBuckets: 10,
    // Only upstream failures count: a client's oversized body or abort says nothing about the upstream.
    errorFilter: (error: unknown) => !(error instanceof UpstreamFailure),
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
    logger.warn({ upstream, resetMs: settings.breakerResetTimeoutMs, stats: summary() }, 'circuit breaker opened')
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
    if (error instanceof UpstreamFailure && error.kind === 'timeout') events.timeout.inc()
    consecutiveFailures++
    if (settings.breakerConsecutiveFailures > 0 && consecutiveFailures >= settings.breakerConsecutiveFailures && breaker.closed) {
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
