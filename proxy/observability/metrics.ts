// Prometheus metrics of the proxy. Names are a contract with the SREs' alerts (listed in
// proxy/README.md): change them only together with the dashboards. The counters a request
// touches count in plain numbers, added to prom-client when the counter is read (a scrape, the
// console's history): prom-client hashes a child's labels again on every inc (0.5 µs). With PROXY_WORKERS > 1 the
// workers' samples are summed (proxy/workers.ts); the gauges say how instead (`aggregator`):
// a breaker open in any worker reads open, a flag source down in any worker reads down.
import { Counter, Gauge, Registry } from 'prom-client'
import { PlainHistogram, type HistogramSeries } from './plain-histogram.ts'
import { RAMP_STATES, type RampStateName, type WindowSignals } from '../model/guard.ts'
import type { BreakerStateName } from '../model/upstream-options.ts'

export const BREAKER_STATE: Readonly<Record<BreakerStateName, number>> = { closed: 0, halfOpen: 1, open: 2 }
export type BreakerEvent = 'open' | 'close' | 'halfOpen' | 'reject' | 'timeout' | 'failure' | 'success' | 'fallback'

export type ProxyMetrics = ReturnType<typeof createMetrics>

/** Status classes by status / 100; a status of 600 or more counts as "other". */
const CLASSES = ['0xx', '1xx', '2xx', '3xx', '4xx', '5xx', 'other'] as const
const OTHER_CLASS = CLASSES.length - 1

/** What one request adds to, per route and answering upstream. */
interface RequestSeries {
  duration: HistogramSeries
  /** proxy_requests_total's children by reason, then by status class index. */
  counts: Map<string, Array<{ n: number } | undefined>>
}

const GUARD_SIGNALS = ['target_requests', 'legacy_requests', 'error_rate_percent', 'mismatch_rate_percent', 'latency_ratio', 'target_p99_seconds', 'legacy_p99_seconds'] as const

/**
 * Children of a counter whose increments are plain additions, added to the counter when it is
 * read (its `collect`), so what a scrape or `get()` reads is always complete.
 */
class DeferredCounts<L extends string> {
  private readonly children: Array<{ labels: Partial<Record<L, string>>; n: number }> = []
  /** A child of `labels` (keep it: each call makes another). */
  create(labels: Partial<Record<L, string>>): { n: number } {
    const child = { labels, n: 0 }
    this.children.push(child)
    return child
  }
  /** Adds what was counted since the last read to `counter`. */
  addTo(counter: Counter<L>): void {
    for (const child of this.children) {
      if (child.n === 0) continue
      counter.inc(child.labels, child.n)
      child.n = 0
    }
  }
}

export function createMetrics() {
  // Process metrics and GET /metrics come from lib/http/metrics.ts (registered in app.ts).
  const registry = new Registry()

  const requestCounts = new DeferredCounts<'route' | 'upstream' | 'status_class' | 'reason'>()
  const requests = new Counter({
    name: 'proxy_requests_total',
    help: 'Proxied requests by route, answering upstream ("proxy" = answered by the proxy itself), status class and route reason',
    labelNames: ['route', 'upstream', 'status_class', 'reason'] as const,
    registers: [registry],
    collect() {
      requestCounts.addTo(this)
    },
  })
  const duration = new PlainHistogram({
    name: 'proxy_request_duration_seconds',
    help: 'Time from request to the end of the response, by route and answering upstream',
    labelNames: ['route', 'upstream'] as const,
    buckets: [0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [registry],
  })
  const breakerState = new Gauge({
    name: 'proxy_breaker_state',
    help: 'Circuit breaker state per upstream: 0 closed, 1 half-open, 2 open',
    labelNames: ['upstream'] as const,
    aggregator: 'max',
    registers: [registry],
  })
  const breakerEventCounts = new DeferredCounts<'upstream' | 'event'>()
  const breakerEvents = new Counter({
    name: 'proxy_breaker_events_total',
    help: 'Circuit breaker events per upstream: open, close, halfOpen, reject, timeout, failure, success, fallback',
    labelNames: ['upstream', 'event'] as const,
    registers: [registry],
    collect() {
      breakerEventCounts.addTo(this)
    },
  })
  const upstreamFailures = new Counter({
    name: 'proxy_upstream_failures_total',
    help: 'Failed upstream calls by kind: connect, timeout, reset, status_5xx, slow (the client left after BREAKER_SLOW_CALL_MS), other',
    labelNames: ['upstream', 'kind'] as const,
    registers: [registry],
  })
  const fallbacks = new Counter({
    name: 'proxy_legacy_fallbacks_total',
    help: 'Requests meant for the target upstream that the legacy upstream answered because the target failed or its breaker was open',
    labelNames: ['route', 'target', 'legacy'] as const,
    registers: [registry],
  })
  const rollout = new Gauge({
    name: 'proxy_rollout_percent',
    help: 'Current share (0-100) of identities a split route sends to its target, with the flag and the source it came from (unleash, file, env); -1 = not a plain rollout',
    labelNames: ['route', 'flag', 'source'] as const,
    aggregator: 'max',
    registers: [registry],
  })
  const flagSourceUp = new Gauge({
    name: 'proxy_flag_source_up',
    help: '1 when the last read or fetch of the flag source succeeded, 0 when the proxy runs on the last known flags',
    labelNames: ['source'] as const,
    aggregator: 'min',
    registers: [registry],
  })
  const flagsLoaded = new Gauge({
    name: 'proxy_flags_loaded',
    help: '1 once flag definitions are loaded (until then every split route goes to legacy and /ready answers 503)',
    aggregator: 'min',
    registers: [registry],
  })
  const flagSourceLastSuccess = new Gauge({
    name: 'proxy_flag_source_last_success_timestamp_seconds',
    help: 'Unix time of the last successful read or fetch of the flag source',
    labelNames: ['source'] as const,
    aggregator: 'min',
    registers: [registry],
  })
  const rateLimited = new Counter({
    name: 'proxy_rate_limited_total',
    help: 'Requests answered 429 by the rate limiter',
    registers: [registry],
  })
  const rateLimitStoreErrors = new Counter({
    name: 'proxy_rate_limit_store_errors_total',
    help: 'Syncs of the rate-limit counters with Redis that failed (Redis down or slow); meanwhile each replica counts alone',
    registers: [registry],
  })
  const adminAuthFailures = new Counter({
    name: 'proxy_admin_auth_failures_total',
    help: "Admin API calls refused on the operators' listener for their token, by reason: missing, wrong, backoff (the address was waiting after repeated failures)",
    labelNames: ['reason'] as const,
    registers: [registry],
  })
  const adminRateLimited = new Counter({
    name: 'proxy_admin_rate_limited_total',
    help: 'Admin API calls answered 429 by the per-token limit (ADMIN_RATE_LIMIT_MAX)',
    registers: [registry],
  })
  // Tokens at the edge (proxy/auth/).
  const authRequests = new Counter({
    name: 'proxy_auth_requests_total',
    help: 'Requests on routes with a token policy, by route and result: verified, anonymous (optional route, no token), missing, invalid (401), forbidden (403, a claim rule), unavailable (503: no key of the issuer was ever fetched)',
    labelNames: ['route', 'result'] as const,
    registers: [registry],
  })
  const authJwksFetches = new Counter({
    name: 'proxy_auth_jwks_fetches_total',
    help: "Fetches of a token issuer's keys (OIDC discovery and JWKS), by issuer and result: ok, error (the last good keys keep serving)",
    labelNames: ['issuer', 'result'] as const,
    registers: [registry],
  })
  /** Sets proxy_auth_jwks_stale at each read (app.ts hands in the verifier's view). */
  let authStaleness: (() => void) | undefined
  const authJwksStale = new Gauge({
    collect: () => authStaleness?.(),
    name: 'proxy_auth_jwks_stale',
    help: "1 while an issuer's last key fetch failed and tokens are checked against its last good keys (or, with no keys yet, refused with 503)",
    labelNames: ['issuer'] as const,
    aggregator: 'max',
    registers: [registry],
  })
  const shadowComparisons = new Counter({
    name: 'proxy_shadow_comparisons_total',
    help: 'Shadow comparisons per route by outcome: match, mismatch, error (the copy failed or timed out), dropped (the in-flight budget was full)',
    labelNames: ['route', 'outcome'] as const,
    registers: [registry],
  })

  // Stages of a migration (proxy/routing/recent-writes.ts, proxy/rollout/stages.ts).
  const readYourWrites = new Counter({
    name: 'proxy_read_your_writes_total',
    help: "Reads sent to the route's writer side instead of the side the read flag picked, because the client wrote there recently (x-route-reason: read-your-writes)",
    labelNames: ['route'] as const,
    registers: [registry],
  })
  const writesSide = new Gauge({
    name: 'proxy_writes_side',
    help: "The side whose store takes a split route's writes, as the stores last said (routes whose stores decide who writes): 0 legacy, 1 target, NaN none (a handover in flight)",
    labelNames: ['route'] as const,
    aggregator: 'max',
    registers: [registry],
  })
  const writesWaitedOut = new Counter({
    name: 'proxy_writes_waited_out_total',
    help: 'Writes answered 503 because no store of the route took them within WRITES_HANDOVER_WAIT_MS (a handover or a catch-up that took longer)',
    labelNames: ['route'] as const,
    registers: [registry],
  })
  const writerHandover = new Gauge({
    name: 'proxy_writer_handover',
    help: "A split route's handover of writes between its stores: 0 settled (the store the flags want writes), 1 handing over, 2 blocked by replication conflicts, 3 standalone stores (no replication: nothing to hand over), NaN a store did not answer. Alerted on 2, and on 1 for minutes",
    labelNames: ['route'] as const,
    aggregator: 'max',
    registers: [registry],
  })
  const replicationConflicts = new Gauge({
    name: 'migration_replication_conflicts',
    help: "Open replication conflicts of a split route's two stores (changes parked instead of merged): they refuse the writes switch and retirement until resolved. Alerted on",
    labelNames: ['route'] as const,
    aggregator: 'max',
    registers: [registry],
  })

  const rampFrozen = new Gauge({
    name: 'proxy_ramp_frozen',
    help: "1 while a route's ramp is frozen: the guard breached while writes were on the target, and reads wait for parity 0 before going back to legacy. Alerted on",
    labelNames: ['route'] as const,
    aggregator: 'max',
    registers: [registry],
  })

  const ledgerStoreErrors = new Counter({
    name: 'proxy_ledger_store_errors_total',
    help: 'Rollout ledger entries the store (Redis or the ledger file) did not take; each is still in the proxy log',
    registers: [registry],
  })

  // Guarded ramps (proxy/rollout/ramp): the guard's window is published by the replica holding the route's lease.
  const rampState = new Gauge({
    name: 'proxy_ramp_state',
    help: "A route's ramp state as stored (every replica reports it), one series per state: 1 for the current one (running, paused, completed, rolled_back)",
    labelNames: ['route', 'state'] as const,
    registers: [registry],
  })
  const rampRollbacks = new Counter({
    name: 'proxy_ramp_rollbacks_total',
    help: 'Rollouts sent back to 0 %, by who (guard: a breach during a ramp or by the standing guard; admin: POST .../rollback) and the breached signal (error_rate, mismatch_rate, latency_ratio, breaker; admin)',
    labelNames: ['route', 'source', 'signal'] as const,
    registers: [registry],
  })
  const rampLeaseHeld = new Gauge({
    name: 'proxy_ramp_lease_held',
    help: "1 when this replica holds the route's ramp lease (drives its ramp and standing guard)",
    labelNames: ['route'] as const,
    registers: [registry],
  })
  const guardSignal = new Gauge({
    name: 'proxy_guard_signal',
    help: "The guard's window of a route, by signal: target_requests, legacy_requests, error_rate_percent, mismatch_rate_percent, latency_ratio, target_p99_seconds, legacy_p99_seconds (absent = not enough samples)",
    labelNames: ['route', 'signal'] as const,
    registers: [registry],
  })

  /** The hot path's series per route, then per answering upstream: two Map look-ups of strings the route map already holds. */
  const seriesByRoute = new Map<string, Map<string, RequestSeries>>()
  const seriesOf = (route: string, upstream: string): RequestSeries => {
    let byUpstream = seriesByRoute.get(route)
    if (!byUpstream) seriesByRoute.set(route, (byUpstream = new Map()))
    let series = byUpstream.get(upstream)
    if (!series) byUpstream.set(upstream, (series = { duration: duration.seriesOf({ route, upstream }), counts: new Map() }))
    return series
  }
  const shadowChildren = new Map<string, ReturnType<typeof shadowComparisons.labels>>()

  return {
    registry,
    /** Read by the admin traffic history (traffic-history.ts); the hot path counts through observe(). */
    requests,
    breakerState,
    breakerEvents,
    /** A breaker event counter of `upstream` (every series exists from the start, at 0), counted in plain numbers: the hot path's success and failure. */
    breakerEvent(upstream: string, event: BreakerEvent): { inc(by?: number): void } {
      breakerEvents.labels(upstream, event).inc(0)
      const child = breakerEventCounts.create({ upstream, event })
      return { inc: (by = 1) => void (child.n += by) }
    },
    upstreamFailures,
    readYourWrites,
    writesSide,
    writerHandover,
    replicationConflicts,
    writesWaitedOut,
    rampFrozen,
    fallbacks,
    rollout,
    flagSourceUp,
    flagsLoaded,
    flagSourceLastSuccess,
    rateLimited,
    rateLimitStoreErrors,
    adminAuthFailures,
    adminRateLimited,
    authRequests,
    authJwksFetches,
    authJwksStale,
    onAuthStalenessRead: (read: () => void) => void (authStaleness = read),
    ledgerStoreErrors,
    rampRollbacks,
    rampLeaseHeld,
    shadowComparisons,
    publishRampState(route: string, state: RampStateName): void {
      for (const s of RAMP_STATES) rampState.labels(route, s).set(s === state ? 1 : 0)
    },
    clearGuardSignals(route: string): void {
      for (const signal of GUARD_SIGNALS) guardSignal.remove(route, signal)
    },
    publishGuardSignals(route: string, w: WindowSignals): void {
      const values: Record<(typeof GUARD_SIGNALS)[number], number | null> = {
        target_requests: w.target.requests,
        legacy_requests: w.legacy.requests,
        error_rate_percent: w.errorRatePercent,
        mismatch_rate_percent: w.mismatchRatePercent,
        latency_ratio: w.latencyRatio,
        target_p99_seconds: w.target.p99Ms === null ? null : w.target.p99Ms / 1000,
        legacy_p99_seconds: w.legacy.p99Ms === null ? null : w.legacy.p99Ms / 1000,
      }
      for (const [signal, value] of Object.entries(values)) {
        if (value === null) guardSignal.remove(route, signal)
        else guardSignal.labels(route, signal).set(value)
      }
    },
    /** Hot path: one request done. */
    observe(route: string, upstream: string, status: number, reason: string, seconds: number): void {
      const series = seriesOf(route, upstream)
      series.duration.observe(seconds)
      const classIndex = Math.min((status / 100) | 0, OTHER_CLASS)
      let byClass = series.counts.get(reason)
      if (!byClass) series.counts.set(reason, (byClass = []))
      let counted = byClass[classIndex]
      if (!counted) byClass[classIndex] = counted = requestCounts.create({ route, upstream, status_class: CLASSES[classIndex]!, reason })
      counted.n++
    },
    /** One shadow comparison's outcome (proxy/rollout/shadow/). */
    shadowComparison(route: string, outcome: 'match' | 'mismatch' | 'error' | 'dropped'): void {
      const key = `${route}\u0000${outcome}`
      let counter = shadowChildren.get(key)
      if (!counter) shadowChildren.set(key, (counter = shadowComparisons.labels(route, outcome)))
      counter.inc()
    },
  }
}
