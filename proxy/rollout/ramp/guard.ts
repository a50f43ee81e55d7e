// The guard: given what a split route's target did over a window, does it hold? Pure. Four
// signals, each with its limit: the target's 5xx rate, the shadow mismatch rate, the target's
// p99 latency against legacy's, and the target's breaker. A signal with too few samples is "no
// data" (never a breach); an open breaker is a breach whatever the counts.
import type { GuardLimits, ShadowTotals, WindowSignals } from '../../model/guard.ts'

/** Below this a p99 is not compared: a ratio of two tiny latencies is noise. */
export const LATENCY_FLOOR_MS = 10


export type ShadowTotalsFn = (route: string) => ShadowTotals
export const noShadowData: ShadowTotalsFn = () => ({ comparisons: 0, mismatches: 0 })


export type Signal = 'error_rate' | 'mismatch_rate' | 'latency_ratio' | 'breaker'

export interface Breach {
  signal: Signal
  value: number | string
  limit: number | string
}

export type Verdict = { kind: 'hold' } | { kind: 'breach'; breach: Breach } | { kind: 'insufficient'; requests: number; needed: number }

const pct = (part: number, whole: number) => Math.round((part / whole) * 10_000) / 100

export function signalsOf(input: Omit<WindowSignals, 'errorRatePercent' | 'mismatchRatePercent' | 'latencyRatio'>, limits: GuardLimits): WindowSignals {
  const { target, legacy, shadow } = input
  const min = limits.minRequests
  const ratio =
    target.requests >= min && legacy.requests >= min && target.p99Ms !== null && legacy.p99Ms !== null
      ? Math.round((Math.max(target.p99Ms, LATENCY_FLOOR_MS) / Math.max(legacy.p99Ms, LATENCY_FLOOR_MS)) * 100) / 100
      : null
  return {
    ...input,
    errorRatePercent: target.requests >= min ? pct(target.errors, target.requests) : null,
    mismatchRatePercent: shadow.comparisons >= min ? pct(shadow.mismatches, shadow.comparisons) : null,
    latencyRatio: ratio,
  }
}

/** The guard's verdict on a window. A breach wins over too few requests. */
export function judge(limits: GuardLimits, w: WindowSignals): Verdict {
  if (w.breaker !== 'closed') return { kind: 'breach', breach: { signal: 'breaker', value: w.breaker, limit: 'closed' } }
  if (w.errorRatePercent !== null && w.errorRatePercent > limits.maxErrorRatePercent) {
    return { kind: 'breach', breach: { signal: 'error_rate', value: w.errorRatePercent, limit: limits.maxErrorRatePercent } }
  }
  if (w.mismatchRatePercent !== null && w.mismatchRatePercent > limits.maxMismatchRatePercent) {
    return { kind: 'breach', breach: { signal: 'mismatch_rate', value: w.mismatchRatePercent, limit: limits.maxMismatchRatePercent } }
  }
  if (w.latencyRatio !== null && w.latencyRatio > limits.maxLatencyRatio) {
    return { kind: 'breach', breach: { signal: 'latency_ratio', value: w.latencyRatio, limit: limits.maxLatencyRatio } }
  }
  if (w.target.requests < limits.minRequests) return { kind: 'insufficient', requests: w.target.requests, needed: limits.minRequests }
  return { kind: 'hold' }
}

const SIGNAL_TEXT: Record<Signal, string> = {
  error_rate: 'target 5xx rate',
  mismatch_rate: 'shadow mismatch rate',
  latency_ratio: 'target p99 / legacy p99',
  breaker: 'target breaker',
}

export function describeBreach(b: Breach): string {
  const unit = b.signal === 'error_rate' || b.signal === 'mismatch_rate' ? ' %' : ''
  return b.signal === 'breaker' ? `${SIGNAL_TEXT[b.signal]} is ${b.value}` : `${SIGNAL_TEXT[b.signal]} ${b.value}${unit} > limit ${b.limit}${unit}`
}
