// What the guard knows about a split route's traffic: per side (target, legacy) cumulative
// request and 5xx counts and a fixed latency histogram, fed once per answered request. Memory
// is bounded by the route map (two sides per split route, a fixed number of bins): a window is
// the difference of two snapshots (as with Prometheus counters), never a list of requests.
import type { SideWindow } from '../../model/guard.ts'

/** Upper bounds of the latency bins in ms; the last bin is everything slower. */
export const LATENCY_BOUNDS_MS = [1, 2, 3, 5, 7.5, 10, 15, 20, 30, 50, 75, 100, 150, 200, 300, 500, 750, 1_000, 1_500, 2_000, 3_000, 5_000, 7_500, 10_000, 15_000, 30_000, 60_000]

export interface SideTotals {
  requests: number
  /** 5xx answers, and requests the target failed that legacy answered (fallbacks). */
  errors: number
  /** Requests per latency bin (LATENCY_BOUNDS_MS, plus one bin above the last bound). */
  bins: number[]
}

export interface RouteTotals {
  target: SideTotals
  legacy: SideTotals
}

const emptySide = (): SideTotals => ({ requests: 0, errors: 0, bins: new Array<number>(LATENCY_BOUNDS_MS.length + 1).fill(0) })

function binOf(ms: number): number {
  let i = 0
  while (i < LATENCY_BOUNDS_MS.length && ms > LATENCY_BOUNDS_MS[i]!) i++
  return i
}

export interface TrafficRecorder {
  /**
   * Hot path: one answered request (the proxy's onResponse). `upstream` answered it (or
   * "proxy"); reason "fallback" means the target failed and legacy answered: a target error.
   * Answers of the proxy itself (503 with an open circuit, a write the target failed) say
   * nothing about either side here; the breaker state covers them.
   */
  record(route: string, upstream: string, status: number, reason: string, ms: number): void
  /** A copy of a split route's totals; undefined for a route without a target. */
  totals(route: string): RouteTotals | undefined
}

/** The routes' names and sides (route-map.ts Route). */
type SplitView = { name: string; legacy: { name: string }; target?: { name: string } }

export function createTrafficRecorder(routes: readonly SplitView[]): TrafficRecorder {
  const byRoute = new Map<string, { target: string; legacy: string; totals: RouteTotals }>()
  for (const route of routes) {
    if (route.target) byRoute.set(route.name, { target: route.target.name, legacy: route.legacy.name, totals: { target: emptySide(), legacy: emptySide() } })
  }
  return {
    record(route, upstream, status, reason, ms) {
      const entry = byRoute.get(route)
      if (!entry) return
      const failedTarget = reason === 'fallback'
      const side = failedTarget || upstream === entry.target ? entry.totals.target : upstream === entry.legacy ? entry.totals.legacy : undefined
      if (!side) return
      side.requests++
      if (failedTarget || status >= 500) side.errors++
      side.bins[binOf(ms)]!++
    },
    totals(route) {
      const entry = byRoute.get(route)
      if (!entry) return undefined
      const copy = (s: SideTotals): SideTotals => ({ requests: s.requests, errors: s.errors, bins: [...s.bins] })
      return { target: copy(entry.totals.target), legacy: copy(entry.totals.legacy) }
    },
  }
}

/** What happened between two snapshots of one side. */
export function sideWindow(now: SideTotals, base: SideTotals): SideWindow {
  const requests = now.requests - base.requests
  const bins = now.bins.map((n, i) => n - (base.bins[i] ?? 0))
  return { requests, errors: now.errors - base.errors, p99Ms: percentile(bins, requests, 0.99) }
}

function percentile(bins: number[], total: number, q: number): number | null {
  if (total <= 0) return null
  const rank = Math.ceil(total * q)
  let seen = 0
  for (let i = 0; i < bins.length; i++) {
    seen += bins[i]!
    if (seen >= rank) return LATENCY_BOUNDS_MS[i] ?? LATENCY_BOUNDS_MS[LATENCY_BOUNDS_MS.length - 1]!
  }
  return LATENCY_BOUNDS_MS[LATENCY_BOUNDS_MS.length - 1]!
}
