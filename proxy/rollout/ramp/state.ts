// A ramp's state machine, pure: what a ramp is, how it starts, and what each event (a tick of
// the scheduler with the guard's verdict, pause, resume, rollback) makes of it. Every
// transition says which rollout, if any, it needs; the controller applies it and stores the
// ramp. Times are epoch milliseconds given by the caller (the scheduler's clock).
import { Type, type Static } from '@sinclair/typebox'
import { errors } from '../../../lib/errors.ts'
import { DEFAULT_LIMITS, GuardLimits, type RampStateName, type WindowSignals } from '../../model/guard.ts'
import { describeBreach, type Breach, type Verdict } from './guard.ts'


export const MAX_INTERVAL_SECONDS = 86_400

/** The body of PUT /admin/routes/:name/ramp. */
export const RampRequest = Type.Object(
  {
    steps: Type.Array(Type.Integer({ minimum: 1, maximum: 100 }), { minItems: 1, maxItems: 20 }),
    intervalSeconds: Type.Optional(Type.Integer({ minimum: 1, maximum: MAX_INTERVAL_SECONDS })),
    ...Type.Partial(GuardLimits).properties,
    reason: Type.Optional(Type.String({ maxLength: 500 })),
  },
  { additionalProperties: false },
)
export type RampRequest = Static<typeof RampRequest>

/** Who did something and why (the admin, the ramp itself, the guard). */
export interface Why {
  actor: string
  reason: string
  source: 'admin' | 'ramp' | 'guard'
}

export interface Ramp {
  id: string
  route: string
  /** "ramp": started through the API; "guard": a standing-guard rollback with no ramp running. */
  kind: 'ramp' | 'guard'
  state: RampStateName
  steps: number[]
  /** Index in `steps` of the current step. */
  step: number
  /** The rollout this ramp has set. */
  percent: number
  intervalSeconds: number
  limits: GuardLimits
  startedAt: number
  updatedAt: number
  /** When the current window began (a new step, a resume): the guard judges traffic since. */
  windowStartedAt: number
  /** When the next step is due; null unless running. */
  nextStepAt: number | null
  /** What the ramp is doing or why it ended, for people. */
  reason: string
  breach: Breach | null
  /** The window the last verdict was given on. */
  window: WindowSignals | null
  /** Who started it and why. */
  startedBy: { actor: string; reason: string }
  /**
   * A rollout this ramp decided and stored but has not yet seen applied: the driver applies it
   * after the store succeeded and clears it; if applying fails it is retried on the next tick.
   */
  pending: { percent: number; why: Why } | null
  /** Bumped by every stored change (compare-and-set). */
  version: number
  /** Fencing token of the lease holder that last drove it (0 = an admin action or a single process). */
  fence: number
  /**
   * Set when the guard breached while the route's writes were on the target: the ramp holds its
   * percentage (paused, no further step) instead of sending readers back to a store that lacks
   * the target's writes, and rolls back once parity is 0 (proxy/rollout/stages.ts).
   */
  frozen?: { since: number; breach: Breach } | null
}

/** A transition: the next ramp and the rollout it needs, if any. */
export interface Transition {
  ramp: Ramp
  rollout?: { percent: number; why: Why }
}

export const isActive = (ramp: Ramp | undefined): ramp is Ramp & { state: 'running' | 'paused' } => ramp?.state === 'running' || ramp?.state === 'paused'

/** The request checked beyond its schema, with the defaults filled in; 400 on a bad plan. */
export function planOf(body: RampRequest): { steps: number[]; intervalSeconds: number; limits: GuardLimits; reason: string } {
  const { steps } = body
  for (let i = 1; i < steps.length; i++) {
    if (steps[i]! <= steps[i - 1]!) throw new errors.ADMIN_BAD_SETTINGS(`steps must be strictly ascending percentages (1..100), got [${steps.join(', ')}]`)
  }
  return {
    steps: [...steps],
    intervalSeconds: body.intervalSeconds ?? 300,
    limits: {
      maxErrorRatePercent: body.maxErrorRatePercent ?? DEFAULT_LIMITS.maxErrorRatePercent,
      maxMismatchRatePercent: body.maxMismatchRatePercent ?? DEFAULT_LIMITS.maxMismatchRatePercent,
      maxLatencyRatio: body.maxLatencyRatio ?? DEFAULT_LIMITS.maxLatencyRatio,
      minRequests: body.minRequests ?? DEFAULT_LIMITS.minRequests,
    },
    reason: body.reason ?? '',
  }
}

const at = (ramp: Ramp) => `${ramp.percent} % (step ${ramp.step + 1} of ${ramp.steps.length})`

export function startRamp(input: { id: string; route: string; plan: ReturnType<typeof planOf>; actor: string; version: number; now: number }): Transition {
  const { plan, now } = input
  const ramp: Ramp = {
    id: input.id,
    route: input.route,
    kind: 'ramp',
    state: 'running',
    steps: plan.steps,
    step: 0,
    percent: plan.steps[0]!,
    intervalSeconds: plan.intervalSeconds,
    limits: plan.limits,
    startedAt: now,
    updatedAt: now,
    windowStartedAt: now,
    nextStepAt: now + plan.intervalSeconds * 1000,
    reason: '',
    breach: null,
    window: null,
    startedBy: { actor: input.actor, reason: plan.reason },
    pending: null,
    version: input.version,
    fence: 0,
  }
  ramp.reason = `started by ${input.actor}: at ${at(ramp)}`
  return { ramp, rollout: { percent: ramp.percent, why: { actor: input.actor, reason: `ramp started: step 1 of ${ramp.steps.length}${plan.reason ? ` (${plan.reason})` : ''}`, source: 'admin' } } }
}

function rolledBack(ramp: Ramp, now: number, reason: string, why: Why, extra: Partial<Ramp> = {}): Transition {
  const next: Ramp = { ...ramp, ...extra, state: 'rolled_back', percent: 0, nextStepAt: null, updatedAt: now, reason }
  return { ramp: next, rollout: { percent: 0, why } }
}

/**
 * One tick of the scheduler with the guard's verdict on the current window. A breach ends an
 * active ramp at 0 % at once (paused too: a paused ramp is still guarded). A running ramp
 * whose step is due moves on when the guard holds, stays (a fresh interval, the window keeps
 * growing) when the window had too few requests, and completes after its last step held.
 * Undefined = nothing changes.
 */
export function tickRamp(ramp: Ramp, verdict: Verdict, window: WindowSignals, now: number): Transition | undefined {
  if (!isActive(ramp)) return undefined
  if (verdict.kind === 'breach') {
    const text = describeBreach(verdict.breach)
    return rolledBack(ramp, now, `rolled back by the guard at ${at(ramp)}: ${text}`, { actor: 'guard', reason: `ramp rolled back: ${text}`, source: 'guard' }, { breach: verdict.breach, window })
  }
  if (ramp.state !== 'running' || ramp.nextStepAt === null || now < ramp.nextStepAt) return undefined
  if (verdict.kind === 'insufficient') {
    const reason = `staying at ${at(ramp)}: ${verdict.requests} of ${verdict.needed} target requests in the window so far`
    return { ramp: { ...ramp, nextStepAt: now + ramp.intervalSeconds * 1000, updatedAt: now, reason, window } }
  }
  if (ramp.step === ramp.steps.length - 1) {
    return { ramp: { ...ramp, state: 'completed', nextStepAt: null, updatedAt: now, reason: `completed: ${ramp.percent} % held for ${ramp.intervalSeconds} s`, window } }
  }
  const step = ramp.step + 1
  const next: Ramp = { ...ramp, step, percent: ramp.steps[step]!, windowStartedAt: now, nextStepAt: now + ramp.intervalSeconds * 1000, updatedAt: now, window }
  next.reason = `at ${at(next)}: the guard held at ${ramp.percent} %`
  return { ramp: next, rollout: { percent: next.percent, why: { actor: 'ramp', reason: `ramp step ${step + 1} of ${ramp.steps.length}: the guard held at ${ramp.percent} %`, source: 'ramp' } } }
}

/** The guard breached but readers may not go back yet (writes on the target, parity not 0): hold, paused. */
export function freezeRamp(ramp: Ramp, breach: Breach, window: WindowSignals, now: number, waitingFor: string): Transition {
  const where = ramp.kind === 'ramp' ? at(ramp) : `${ramp.percent} %`
  const reason = `frozen at ${where} by the guard: ${describeBreach(breach)}; writes are on the target, reads go back only once parity is 0 (${waitingFor})`
  return { ramp: { ...ramp, state: 'paused', nextStepAt: null, updatedAt: now, reason, breach, window, frozen: { since: now, breach } } }
}

/** A frozen ramp whose stores agree again: its readers go back to legacy as the breach asked. */
export function thawRollback(ramp: Ramp & { frozen: { since: number; breach: Breach } }, now: number): Transition {
  const text = `${describeBreach(ramp.frozen.breach)}; parity is 0 now`
  return rolledBack(ramp, now, `rolled back by the guard after a freeze: ${text}`, { actor: 'guard', reason: `frozen ramp rolled back: ${text}`, source: 'guard' }, { frozen: null })
}

export function pauseRamp(ramp: Ramp, actor: string, now: number): Transition {
  if (ramp.state !== 'running') throw new errors.RAMP_CONFLICT(`the ramp of route "${ramp.route}" is ${ramp.state}, not running`)
  return { ramp: { ...ramp, state: 'paused', nextStepAt: null, updatedAt: now, reason: `paused by ${actor} at ${at(ramp)}` } }
}

export function resumeRamp(ramp: Ramp, actor: string, now: number): Transition {
  if (ramp.state !== 'paused') throw new errors.RAMP_CONFLICT(`the ramp of route "${ramp.route}" is ${ramp.state}, not paused`)
  // A fresh window: what happened while paused does not count towards the next step.
  if (ramp.kind !== 'ramp') throw new errors.RAMP_CONFLICT(`route "${ramp.route}" has no ramp to resume (the standing guard froze it): start a ramp or roll back`)
  return { ramp: { ...ramp, state: 'running', windowStartedAt: now, nextStepAt: now + ramp.intervalSeconds * 1000, updatedAt: now, frozen: null, reason: `resumed by ${actor} at ${at(ramp)}` } }
}

export function rollbackRamp(ramp: Ramp, actor: string, reason: string, now: number): Transition {
  const text = `rolled back by ${actor} at ${at(ramp)}${reason ? `: ${reason}` : ''}`
  return rolledBack(ramp, now, text, { actor, reason: `rollback${reason ? `: ${reason}` : ''}`, source: 'admin' })
}

/** The record of a standing-guard rollback (no ramp was running): shown by GET .../ramp. */
export function guardRollback(input: { id: string; route: string; from: number | undefined; limits: GuardLimits; breach: Breach; window: WindowSignals; version: number; now: number }): Transition {
  const text = describeBreach(input.breach)
  const from = input.from === undefined ? 'a rollout richer than a percentage' : `${input.from} %`
  const ramp: Ramp = {
    id: input.id,
    route: input.route,
    kind: 'guard',
    state: 'rolled_back',
    steps: [],
    step: 0,
    percent: 0,
    intervalSeconds: 0,
    limits: input.limits,
    startedAt: input.now,
    updatedAt: input.now,
    windowStartedAt: input.now,
    nextStepAt: null,
    reason: `rolled back from ${from} by the standing guard: ${text}`,
    breach: input.breach,
    window: input.window,
    startedBy: { actor: 'guard', reason: 'standing guard (route map)' },
    pending: null,
    version: input.version,
    fence: 0,
  }
  return { ramp, rollout: { percent: 0, why: { actor: 'guard', reason: `standing guard rolled back from ${from}: ${text}`, source: 'guard' } } }
}

/** What GET /admin/routes/:name/ramp answers. */
export function rampView(ramp: Ramp) {
  const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString())
  return {
    route: ramp.route,
    kind: ramp.kind,
    state: ramp.state,
    percent: ramp.percent,
    step: ramp.kind === 'ramp' ? ramp.step + 1 : null,
    steps: ramp.steps,
    intervalSeconds: ramp.intervalSeconds,
    nextStepAt: iso(ramp.nextStepAt),
    reason: ramp.reason,
    breach: ramp.breach,
    frozen: ramp.frozen ? { since: new Date(ramp.frozen.since).toISOString(), breach: ramp.frozen.breach } : null,
    limits: ramp.limits,
    window: ramp.window,
    startedBy: ramp.startedBy,
    /** A rollout decided and stored, not yet applied (retried every tick until it is). */
    pendingRollout: ramp.pending?.percent ?? null,
    startedAt: iso(ramp.startedAt),
    updatedAt: iso(ramp.updatedAt),
  }
}
