// What each route's traffic is doing, from what the proxy already counts: its own Prometheus
// counters (answers per route, side and status class, legacy fallbacks, upstream failures,
// shadow comparisons once they exist), the flags and the breakers. A timer takes a snapshot of
// the counters every `intervalMs`; consecutive snapshots give the per-route history (bounded:
// `retentionMs`, an hour by default) and the current rates are "now" minus the snapshot about
// `rateWindowMs` ago. In memory, per process: a replica sees its own share of the traffic.
import { Type, type Static } from '@sinclair/typebox'
import type { Counter } from 'prom-client'
import type { Logger } from '../../lib/logger.ts'
import type { BreakerStateName } from '../model/upstream-options.ts'
import type { FlagSource } from '../flags/flag-source.ts'
import type { ProxyMetrics } from '../observability/metrics.ts'
import { checkOptions } from '../model/options.ts'
import type { Route } from '../model/route-map.ts'
import type { Upstreams } from '../forward/upstreams.ts'

export const TrafficHistoryOptions = Type.Object(
  {
    /** Time between two snapshots (one history point per route). */
    intervalMs: Type.Integer({ minimum: 100 }),
    /** How far back the history goes; older points are dropped. */
    retentionMs: Type.Integer({ minimum: 1_000 }),
    /** The window of the current rates. */
    rateWindowMs: Type.Integer({ minimum: 1_000 }),
  },
  { additionalProperties: false },
)
export type TrafficHistoryOptions = Static<typeof TrafficHistoryOptions>

/** Written by issue 12's shadow comparison; read when it is registered. */
export const SHADOW_COMPARISONS_METRIC = 'proxy_shadow_comparisons_total'

interface SideTotals {
  requests: number
  errors: number
}
interface RouteTotals {
  legacy: SideTotals
  target: SideTotals
  /** Answered by the proxy itself (503/504: upstream unavailable). */
  proxy: number
  fallbacks: number
  shadowMatch: number
  shadowMismatch: number
}
interface Snapshot {
  at: number
  routes: Map<string, RouteTotals>
  upstreamFailures: Map<string, number>
  /** False while the shadow metric is not registered. */
  shadow: boolean
}

/**
 * Legacy: the answers the legacy upstream gave (fallbacks included), 5xx among them. Target:
 * the requests meant for the target — answered by it, or failed over to legacy — and its
 * errors: its 5xx answers plus those fallbacks. So a dead target shows 100 % errors even
 * though every client was answered.
 */
export interface SideRates {
  rps: number
  errorRps: number
  /** errorRps / rps in percent; null without requests. */
  errorPercent: number | null
}

export interface RouteTraffic {
  name: string
  legacy: SideRates
  target?: SideRates
  /** Answers per second the proxy gave itself (upstream unavailable: 503/504). */
  proxyRps: number
  /** Requests per second meant for the target that the legacy side answered. */
  fallbackRps: number
  /** Shadow comparisons (issue 12's metric); null when the proxy does not compare. */
  shadow: { comparisons: number; matchPercent: number | null } | null
}

export interface HistoryPoint {
  at: string
  percent: number | null
  legacyRps: number
  targetRps: number | null
  legacyErrorPercent: number | null
  targetErrorPercent: number | null
  fallbackRps: number
  /** Mismatches among the shadow comparisons of the interval; null without comparisons. */
  mismatchPercent: number | null
  breakers: { legacy: BreakerStateName; target?: BreakerStateName }
}

export interface TrafficHistory {
  /** Current rates per route and per upstream, over about `rateWindowMs`. */
  traffic(): Promise<{ at: string; windowSeconds: number; routes: RouteTraffic[]; upstreams: Record<string, { breaker: BreakerStateName; failureRps: number }> }>
  /** The route's points, oldest first. */
  history(route: string): HistoryPoint[]
  readonly options: TrafficHistoryOptions
  stop(): void
}

export interface TrafficHistoryDeps {
  routes: readonly Route[]
  upstreams: Upstreams
  flags: FlagSource
  metrics: ProxyMetrics
  logger: Logger
}

const round = (n: number, digits = 2) => Math.round(n * 10 ** digits) / 10 ** digits
const percent = (part: number, whole: number) => (whole > 0 ? round((100 * part) / whole) : null)

export async function createTrafficHistory(options: TrafficHistoryOptions, deps: TrafficHistoryDeps): Promise<TrafficHistory> {
  const settings = checkOptions(TrafficHistoryOptions, options, 'traffic history')
  const { routes, upstreams, flags, metrics } = deps
  const capacity = Math.ceil(settings.retentionMs / settings.intervalMs)
  const sideOf = new Map(routes.map((r) => [r.name, r]))

  async function snapshot(): Promise<Snapshot> {
    const totals = new Map<string, RouteTotals>(
      routes.map((r) => [r.name, { legacy: { requests: 0, errors: 0 }, target: { requests: 0, errors: 0 }, proxy: 0, fallbacks: 0, shadowMatch: 0, shadowMismatch: 0 }]),
    )
    for (const { labels, value } of (await metrics.requests.get()).values) {
      const route = sideOf.get(String(labels.route))
      const t = totals.get(String(labels.route))
      if (!route || !t) continue
      if (labels.upstream === 'proxy') t.proxy += value
      const side = labels.upstream === route.legacy.name ? t.legacy : labels.upstream === route.target?.name ? t.target : undefined
      if (!side) continue
      side.requests += value
      if (labels.status_class === '5xx') side.errors += value
    }
    for (const { labels, value } of (await metrics.fallbacks.get()).values) {
      const t = totals.get(String(labels.route))
      if (!t) continue
      t.fallbacks += value
      // A fallback is a request meant for the target that the target failed (or its open breaker refused).
      t.target.requests += value
      t.target.errors += value
    }
    const shadowMetric = metrics.registry.getSingleMetric(SHADOW_COMPARISONS_METRIC) as Counter | undefined
    for (const { labels, value } of shadowMetric ? (await shadowMetric.get()).values : []) {
      const t = totals.get(String(labels.route))
      if (t && labels.outcome === 'match') t.shadowMatch += value
      if (t && labels.outcome === 'mismatch') t.shadowMismatch += value
    }
    const upstreamFailures = new Map<string, number>([...upstreams.keys()].map((name) => [name, 0]))
    for (const { labels, value } of (await metrics.upstreamFailures.get()).values) {
      const name = String(labels.upstream)
      upstreamFailures.set(name, (upstreamFailures.get(name) ?? 0) + value)
    }
    return { at: Date.now(), routes: totals, upstreamFailures, shadow: shadowMetric !== undefined }
  }

  const sideRates = (now: SideTotals, then: SideTotals, seconds: number): SideRates => ({
    rps: round((now.requests - then.requests) / seconds),
    errorRps: round((now.errors - then.errors) / seconds),
    errorPercent: percent(now.errors - then.errors, now.requests - then.requests),
  })

  const snapshots: Snapshot[] = [await snapshot()]
  const points = new Map<string, HistoryPoint[]>(routes.map((r) => [r.name, []]))

  function record(now: Snapshot, then: Snapshot): void {
    const seconds = Math.max((now.at - then.at) / 1000, 0.001)
    for (const route of routes) {
      const a = now.routes.get(route.name)!
      const b = then.routes.get(route.name)!
      const legacy = sideRates(a.legacy, b.legacy, seconds)
      const target = route.target ? sideRates(a.target, b.target, seconds) : undefined
      const list = points.get(route.name)!
      list.push({
        at: new Date(now.at).toISOString(),
        percent: route.flag ? (flags.state(route.flag).percent ?? null) : null,
        legacyRps: legacy.rps,
        targetRps: target?.rps ?? null,
        legacyErrorPercent: legacy.errorPercent,
        targetErrorPercent: target?.errorPercent ?? null,
        fallbackRps: round((a.fallbacks - b.fallbacks) / seconds),
        mismatchPercent: percent(a.shadowMismatch - b.shadowMismatch, a.shadowMatch - b.shadowMatch + a.shadowMismatch - b.shadowMismatch),
        breakers: { legacy: upstreams.get(route.legacy.name)!.breaker.state(), ...(route.target ? { target: upstreams.get(route.target.name)!.breaker.state() } : {}) },
      })
      if (list.length > capacity) list.shift()
    }
  }

  let sampling = false
  const timer = setInterval(async () => {
    if (sampling) return // a slow read never piles up
    sampling = true
    try {
      const now = await snapshot()
      record(now, snapshots[snapshots.length - 1])
      snapshots.push(now)
      // Only what the rate window needs is kept (plus one older, its base).
      while (snapshots.length > 2 && now.at - snapshots[1].at >= settings.rateWindowMs) snapshots.shift()
    } catch (err) {
      deps.logger.warn({ err }, 'traffic history: taking a point failed')
    } finally {
      sampling = false
    }
  }, settings.intervalMs)
  timer.unref()

  return {
    options: settings,
    async traffic() {
      const now = await snapshot()
      // The newest snapshot at least a window old, else the oldest there is.
      const then = [...snapshots].reverse().find((s) => now.at - s.at >= settings.rateWindowMs) ?? snapshots[0]
      const seconds = Math.max((now.at - then.at) / 1000, 0.001)
      return {
        at: new Date(now.at).toISOString(),
        windowSeconds: round(seconds, 3),
        routes: routes.map((route): RouteTraffic => {
          const a = now.routes.get(route.name)!
          const b = then.routes.get(route.name)!
          const compared = a.shadowMatch - b.shadowMatch + a.shadowMismatch - b.shadowMismatch
          return {
            name: route.name,
            legacy: sideRates(a.legacy, b.legacy, seconds),
            ...(route.target ? { target: sideRates(a.target, b.target, seconds) } : {}),
            proxyRps: round((a.proxy - b.proxy) / seconds),
            fallbackRps: round((a.fallbacks - b.fallbacks) / seconds),
            shadow: now.shadow ? { comparisons: compared, matchPercent: percent(a.shadowMatch - b.shadowMatch, compared) } : null,
          }
        }),
        upstreams: Object.fromEntries(
          [...upstreams.values()].map((rt) => {
            const name = rt.upstream.name
            return [name, { breaker: rt.breaker.state(), failureRps: round(((now.upstreamFailures.get(name) ?? 0) - (then.upstreamFailures.get(name) ?? 0)) / seconds) }]
          }),
        ),
      }
    },
    history: (route) => [...(points.get(route) ?? [])],
    stop: () => clearInterval(timer),
  }
}
