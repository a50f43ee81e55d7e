// The guarded ramps' data: the guard's limits (the route map's `guard`, a ramp's template), the
// window of signals it judges, the ramp states. Read by the ramp controller and published by metrics.
import { Type, type Static } from '@sinclair/typebox'

export const GuardLimits = Type.Object(
  {
    /** Largest share of target answers that may be 5xx (or fail over to legacy), in percent. */
    maxErrorRatePercent: Type.Number({ minimum: 0, maximum: 100 }),
    /** Largest share of shadow comparisons that may differ, in percent. */
    maxMismatchRatePercent: Type.Number({ minimum: 0, maximum: 100 }),
    /** Largest target p99 / legacy p99. */
    maxLatencyRatio: Type.Number({ minimum: 1 }),
    /** Target requests (and shadow comparisons, legacy requests for the latency ratio) a window needs before it is judged. */
    minRequests: Type.Integer({ minimum: 1 }),
  },
  { additionalProperties: false },
)
export type GuardLimits = Static<typeof GuardLimits>

export const DEFAULT_LIMITS: GuardLimits = { maxErrorRatePercent: 1, maxMismatchRatePercent: 0.5, maxLatencyRatio: 1.5, minRequests: 100 }

/** What happened between two snapshots of one side of a route. */
export interface SideWindow {
  requests: number
  errors: number
  /** Upper bound of the bin holding the 99th percentile; null without requests. */
  p99Ms: number | null
}

/** Cumulative shadow comparison counts of a route (the shadow-comparison component). */
export interface ShadowTotals {
  comparisons: number
  mismatches: number
}
export interface WindowSignals {
  startedAt: string
  seconds: number
  target: SideWindow
  legacy: SideWindow
  shadow: ShadowTotals
  /** The target's breaker (breakers.ts BreakerStateName). */
  breaker: 'closed' | 'halfOpen' | 'open'
  /** null = not enough samples to say. */
  errorRatePercent: number | null
  mismatchRatePercent: number | null
  latencyRatio: number | null
}

export const RAMP_STATES = ['running', 'paused', 'completed', 'rolled_back'] as const
export type RampStateName = (typeof RAMP_STATES)[number]
