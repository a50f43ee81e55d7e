// One long-lived opossum breaker per upstream. Connection errors, timeouts and 5xx answers
// count as failures; the opossum timeout is off because undici's own connect/response
// timeouts bound every call (and actually abort it). Two rules open it: opossum's failure
// percentage over the rolling window (for flapping upstreams), and BREAKER_CONSECUTIVE_FAILURES
// failures in a row whatever the window's earlier successes (a dead target is cut off at once,
// as Envoy's outlier detection does). A third, Resilience4j's slow-call rate: when at least
// slowCallPercent of the window's calls took slowCallMs or more to answer (or were abandoned by
// their client after that long: upstreams.ts counts them as `slow` failures), it opens, so a
// target that accepts connections and hangs is cut off even when every client gives up early.
// Half-open, the first good trial closes it.
import CircuitBreaker from 'opossum'
import type { Logger } from '../../lib/logger.ts'
import { BREAKER_STATE, type BreakerEvent, type ProxyMetrics } from '../observability/metrics.ts'
import { checkOptions } from '../model/options.ts'
import { BreakerOptions, type BreakerStateName } from '../model/upstream-options.ts'
import { isUpstreamFailure } from './upstream-client.ts'


/** Work run through a breaker: resolves with the upstream's answer, rejects with UpstreamFailure. */
export type Call<T> = () => Promise<T>


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
    // Only upstream failures count (upstreams.ts throws nothing else through the breaker).
    errorFilter: (error: unknown) => !isUpstreamFailure(error),
    // Both on by default: every second opossum joins and sorts the window's latencies (tens of
    // thousands at saturation) for percentiles and a snapshot nobody reads; the mean latency of
    // stats() comes from the call window below.
    rollingPercentilesEnabled: false,
    enableSnapshots: false,
  })
  const recent = callWindow(settings)
  const events = {} as Record<BreakerEvent, { inc(by?: number): void }>
  for (const event of ['open', 'close', 'halfOpen', 'reject', 'timeout', 'failure', 'success', 'fallback'] as const) {
    // Every series exists from the start, so rate() and alerts work before the first event.
    events[event] = metrics.breakerEvent(upstream, event)
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
  const slowCallMs = settings.slowCallMs ?? Infinity
  const countSlow = (latencyMs: number) => {
    if (!recent.add(latencyMs, latencyMs >= slowCallMs) || !breaker.closed) return
    logger.warn({ upstream, slowCallMs: settings.slowCallMs, slowCallPercent: settings.slowCallPercent }, 'slow calls: opening the circuit breaker')
    breaker.open()
  }
  breaker.on('success', (_result: unknown, latencyMs: number) => {
    consecutiveFailures = 0
    countSlow(latencyMs)
  })
  breaker.on('failure', (error: unknown, latencyMs: number) => {
    if (isUpstreamFailure(error) && error.kind === 'timeout') events.timeout.inc()
    countSlow(isUpstreamFailure(error) && error.kind === 'slow' ? slowCallMs : latencyMs)
    if (breaker.opened) return
    consecutiveFailures++
    if (settings.consecutiveFailures > 0 && consecutiveFailures >= settings.consecutiveFailures && breaker.closed) {
      logger.warn({ upstream, consecutiveFailures }, 'consecutive failures: opening the circuit breaker')
      breaker.open()
    }
  })
  breaker.on('open', () => {
    consecutiveFailures = 0
    recent.clear()
  })

  function summary() {
    const s = breaker.stats
    return { fires: s.fires, failures: s.failures, successes: s.successes, rejects: s.rejects, latencyMean: recent.meanLatencyMs() }
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

/**
 * The window's calls, slow calls and latencies in ten buckets (as opossum keeps its own counts);
 * `add` answers true when the slow share has reached slowCallPercent over volumeThreshold calls.
 */
function callWindow(settings: BreakerOptions): { add(latencyMs: number, slow: boolean): boolean; clear(): void; meanLatencyMs(): number } {
  const size = 10
  const bucketMs = settings.windowMs / size
  const calls = new Array<number>(size).fill(0)
  const slow = new Array<number>(size).fill(0)
  const latency = new Array<number>(size).fill(0)
  let current = 0
  let currentStart = Date.now()
  const clear = () => {
    calls.fill(0)
    slow.fill(0)
    latency.fill(0)
    currentStart = Date.now()
  }
  const rotate = (now: number) => {
    if (now - currentStart >= settings.windowMs) clear()
    while (now - currentStart >= bucketMs) {
      current = (current + 1) % size
      calls[current] = 0
      slow[current] = 0
      latency[current] = 0
      currentStart += bucketMs
    }
  }
  return {
    clear,
    /** Mean latency of the window's calls (successes and failures), ms; 0 without calls. */
    meanLatencyMs(): number {
      rotate(Date.now())
      let total = 0
      let sum = 0
      for (let i = 0; i < size; i++) {
        total += calls[i]!
        sum += latency[i]!
      }
      return total === 0 ? 0 : sum / total
    },
    add(latencyMs: number, isSlow: boolean): boolean {
      rotate(Date.now())
      calls[current]!++
      latency[current]! += latencyMs
      if (isSlow) slow[current]!++
      let total = 0
      let slowTotal = 0
      for (let i = 0; i < size; i++) {
        total += calls[i]!
        slowTotal += slow[i]!
      }
      return isSlow && total >= settings.volumeThreshold && slowTotal * 100 >= (settings.slowCallPercent ?? 100) * total
    },
  }
}
