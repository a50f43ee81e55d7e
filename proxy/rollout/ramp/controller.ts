// The ramp scheduler: every tick, for each split route with an active ramp or a standing
// guard, the process holding the route's lease judges the window (its own traffic since the
// window began, the shadow comparisons, the target's breaker) and applies what the state
// machine (state.ts) decides. The admin endpoints call start/pause/resume/rollback here.
// Other replicas only follow the flag. The clock is injectable; timers are the global ones
// (vitest's fake timers drive both in unit tests).
import { randomUUID } from 'node:crypto'
import type { FastifyRequest } from 'fastify'
import { errors } from '../../../lib/errors.ts'
import type { Logger } from '../../../lib/logger.ts'
import type { FlagSource } from '../../flags/flag-source.ts'
import type { ChangeRollout } from '../rollout-changes.ts'
import type { ProxyMetrics } from '../../observability/metrics.ts'
import type { Route } from '../../model/route-map.ts'
import type { Upstreams } from '../../forward/upstreams.ts'
import type { Coordination, SaveResult } from './coordination.ts'
import type { GuardLimits, ShadowTotals, WindowSignals } from '../../model/guard.ts'
import { judge, noShadowData, signalsOf, type ShadowTotalsFn } from './guard.ts'
import { freezeRamp, thawRollback, guardRollback, isActive, pauseRamp, planOf, rampView, resumeRamp, rollbackRamp, startRamp, tickRamp, type Ramp, type RampRequest, type Transition } from './state.ts'
import { sideWindow, type RouteTotals, type TrafficRecorder } from './traffic.ts'

/** The acting admin of a request. */
export type ActorOf = (request: FastifyRequest) => string

export interface RampControllerOptions {
  routes: readonly Route[]
  traffic: TrafficRecorder
  upstreams: Upstreams
  flags: FlagSource
  coordination: Coordination
  changeRollout: ChangeRollout
  /** Records a ramp action that leaves the rollout where it is (pause, resume, freeze) in the ledger. */
  recordAction?: (entry: { route: string; flag: string; from: number; to: number; actor: string; reason: string; source: 'ramp' | 'guard'; stage?: 'freeze'; guard?: Record<string, number | string | boolean | null>; sample?: unknown }) => Promise<void>
  /** Whether a breach may send readers back to legacy now (proxy/rollout/stages.ts); absent = always. */
  readsMayGoBack?: (route: Route) => Promise<{ ok: boolean; guard: Record<string, number | string | boolean | null>; sample: unknown }>
  /** Cumulative shadow comparison counts per route; default: no shadow data. */
  shadowTotals?: ShadowTotalsFn
  metrics: ProxyMetrics
  logger: Logger
  /** How often the scheduler looks at the routes. */
  tickMs?: number
  clock?: { now(): number }
}

interface Baseline {
  key: string
  at: number
  traffic: RouteTotals
  shadow: ShadowTotals
}

export type RampController = ReturnType<typeof createRampController>

export function createRampController(opts: RampControllerOptions) {
  const { traffic, upstreams, flags, coordination, metrics, logger } = opts
  const { lease, store } = coordination
  const now = () => (opts.clock ?? Date).now()
  const shadowTotals = opts.shadowTotals ?? noShadowData
  const tickMs = opts.tickMs ?? 1_000
  const splitRoutes = opts.routes.filter((r) => r.target && r.flag)
  const baselines = new Map<string, Baseline>()

  const routeNamed = (name: string): Route => {
    const route = opts.routes.find((r) => r.name === name)
    if (!route) throw new errors.ROUTE_NOT_FOUND(name, opts.routes.map((r) => r.name).join(', '))
    if (!route.target || !route.flag) throw new errors.NOTHING_TO_RAMP(route.name)
    return route
  }

  /** The window since `key` began; a key this process has not seen starts a window now. */
  function windowOf(route: Route, key: string, limits: GuardLimits): WindowSignals {
    const totals = traffic.totals(route.name)!
    const shadow = shadowTotals(route.name)
    let base = baselines.get(route.name)
    if (base?.key !== key) baselines.set(route.name, (base = { key, at: now(), traffic: totals, shadow }))
    return signalsOf(
      {
        startedAt: new Date(base.at).toISOString(),
        seconds: Math.round((now() - base.at) / 100) / 10,
        target: sideWindow(totals.target, base.traffic.target),
        legacy: sideWindow(totals.legacy, base.traffic.legacy),
        // Counts that went backwards (the shadow component restarted) count as none.
        shadow: { comparisons: Math.max(0, shadow.comparisons - base.shadow.comparisons), mismatches: Math.max(0, shadow.mismatches - base.shadow.mismatches) },
        breaker: upstreams.get(route.target!.name)!.breaker.state(),
      },
      limits,
    )
  }
  const rampKey = (ramp: Ramp) => `${ramp.id}@${ramp.windowStartedAt}`

  function publish(route: Route, ramp: Ramp | undefined, window: WindowSignals | undefined): void {
    if (ramp) metrics.publishRampState(route.name, ramp.state)
    if (window) metrics.publishGuardSignals(route.name, window)
  }

  /**
   * Stores a transition with its rollout as pending, then applies it (settle). Stored first: a
   * driver whose lease is gone (fenced) changes nothing. A driver passes its fencing token.
   */
  async function apply(route: Route, expected: number, t: Transition, fence?: number): Promise<SaveResult> {
    const stored: Ramp = { ...t.ramp, pending: t.rollout ?? t.ramp.pending ?? null }
    const result = await store.save(stored, expected, fence)
    if (result !== 'saved') {
      logger.warn({ route: route.name, result, state: t.ramp.state }, 'ramp change not stored: changed meanwhile or the lease was lost')
      return result
    }
    metrics.publishRampState(route.name, stored.state)
    if (t.rollout) {
      if (stored.state === 'rolled_back') metrics.rampRollbacks.labels(route.name, t.rollout.why.source, stored.breach?.signal ?? 'admin').inc()
      await settle(route, stored, fence)
    }
    return result
  }

  /** Applies a stored ramp's pending rollout, then clears it. A failure leaves it pending: the next tick retries. */
  async function settle(route: Route, ramp: Ramp, fence?: number): Promise<void> {
    const { percent, why } = ramp.pending!
    await opts.changeRollout(route, percent, why)
    logger.info({ route: route.name, flag: route.flag, percent, actor: why.actor, source: why.source, reason: why.reason }, 'rollout changed by the ramp controller')
    if ((await store.save({ ...ramp, pending: null, version: ramp.version + 1 }, ramp.version, fence)) === 'saved') return
    // Changed meanwhile (an admin on another replica, say a rollback): its percentage stands.
    const after = await store.load(route.name)
    if (after && !after.pending && after.percent !== percent) {
      await opts.changeRollout(route, after.percent, { actor: 'ramp', reason: `re-applying ${after.percent} %: the ramp was changed meanwhile (${after.reason})`, source: 'ramp' })
    }
  }

  /**
   * A rollback the guard decided, unless readers may not go back yet (writes on the target,
   * parity not 0): then the ramp freezes where it is, with the guard's window, the parity values
   * and a diff sample in the ledger, and the frozen ramp rolls back on a later tick once parity is 0.
   */
  async function rollbackOrFreeze(route: Route, ramp: Ramp, t: Transition, fence: number): Promise<Transition | undefined> {
    if (t.ramp.state !== 'rolled_back' || !t.ramp.breach || !opts.readsMayGoBack) return t
    const back = await opts.readsMayGoBack(route)
    if (back.ok) return t
    // The rollout stays where the ramp (or, for the standing guard, whoever) left it.
    const percent = flags.state(route.flag!).percent ?? ramp.percent
    const frozen = freezeRamp({ ...t.ramp, percent, pending: null }, t.ramp.breach, t.ramp.window!, now(), `drift ${back.guard.drift ?? 'unknown'}, ${back.guard.unreplicatedToLegacy ?? 'unknown'} changes not on legacy`)
    metrics.rampFrozen.labels(route.name).set(1)
    logger.warn({ route: route.name, percent, breach: t.ramp.breach, guard: back.guard }, 'ramp frozen: the guard breached while writes are on the target')
    await opts.recordAction?.({ route: route.name, flag: route.flag!, from: percent, to: percent, actor: 'guard', reason: frozen.ramp.reason, source: 'guard', stage: 'freeze', guard: { ...back.guard, ...windowValues(t.ramp.window) }, sample: back.sample })
    return { ramp: { ...frozen.ramp, fence } }
  }

  /** A frozen ramp rolls back once readers may go back. */
  /** The guard's window as ledger values. */
  const windowValues = (w: WindowSignals | null): Record<string, number | string | null> =>
    w ? { errorRatePercent: w.errorRatePercent, mismatchRatePercent: w.mismatchRatePercent, latencyRatio: w.latencyRatio, targetRequests: w.target.requests, breaker: w.breaker } : {}

  async function thawIfParity(route: Route, ramp: Ramp & { frozen: NonNullable<Ramp['frozen']> }, fence: number): Promise<void> {
    const back = opts.readsMayGoBack ? await opts.readsMayGoBack(route) : { ok: true }
    if (!back.ok) return
    metrics.rampFrozen.labels(route.name).set(0)
    const t = thawRollback(ramp, now())
    await apply(route, ramp.version, { ...t, ramp: { ...t.ramp, version: ramp.version + 1, fence } }, fence)
  }

  async function driveRamp(route: Route, ramp: Ramp, fence: number): Promise<void> {
    const window = windowOf(route, rampKey(ramp), ramp.limits)
    publish(route, ramp, window)
    if (ramp.frozen) return thawIfParity(route, { ...ramp, frozen: ramp.frozen }, fence)
    const decided = tickRamp(ramp, judge(ramp.limits, window), window, now())
    const t = decided && (await rollbackOrFreeze(route, ramp, decided, fence))
    if (!t) return
    const next = { ...t, ramp: { ...t.ramp, version: ramp.version + 1, fence } }
    if ((await apply(route, ramp.version, next, fence)) === 'saved' && next.ramp.windowStartedAt !== ramp.windowStartedAt) {
      // The next step's window starts from these counts, not from the next tick's.
      baselines.delete(route.name)
      windowOf(route, rampKey(next.ramp), ramp.limits)
    }
  }

  async function standingGuard(route: Route, last: Ramp | undefined, fence: number): Promise<void> {
    const guard = route.guard!
    const percent = flags.state(route.flag!).percent
    let base = baselines.get(route.name)
    // A fresh window every interval: the standing guard judges recent traffic.
    if (percent === 0 || !base?.key.startsWith('guard@') || now() - base.at >= guard.intervalSeconds * 1000) {
      baselines.delete(route.name)
      base = undefined
    }
    const window = windowOf(route, base?.key ?? `guard@${now()}`, guard.limits)
    publish(route, undefined, window)
    if (percent === 0) return
    const verdict = judge(guard.limits, window)
    if (verdict.kind !== 'breach') return
    const rollback = guardRollback({ id: randomUUID(), route: route.name, from: percent, limits: guard.limits, breach: verdict.breach, window, version: (last?.version ?? 0) + 1, now: now() })
    const t = (await rollbackOrFreeze(route, { ...rollback.ramp, state: 'running' }, rollback, fence))!
    await apply(route, last?.version ?? 0, { ...t, ramp: { ...t.ramp, fence } }, fence)
    baselines.delete(route.name)
  }

  async function tickRoute(route: Route): Promise<void> {
    const ramp = await store.load(route.name)
    // Every replica shows the stored state; only the holder shows a window (its own traffic).
    if (ramp) metrics.publishRampState(route.name, ramp.state)
    // A replica that has not loaded the flags does not know the rollout: it leaves ramps and guards to the others.
    if ((!isActive(ramp) && !route.guard && !ramp?.pending) || !flags.status().loaded) {
      metrics.rampLeaseHeld.labels(route.name).set(0)
      return
    }
    const fence = await lease.hold(route.name)
    metrics.rampLeaseHeld.labels(route.name).set(fence === undefined ? 0 : 1)
    if (fence === undefined) {
      baselines.delete(route.name)
      metrics.clearGuardSignals(route.name)
      return
    }
    if (ramp?.pending) return settle(route, ramp, fence)
    if (isActive(ramp)) await driveRamp(route, ramp, fence)
    else await standingGuard(route, ramp, fence)
  }

  let timer: NodeJS.Timeout | undefined
  let running: Promise<void> = Promise.resolve()
  let closed = false
  const tick = async () => {
    for (const route of splitRoutes) {
      try {
        await tickRoute(route)
      } catch (error) {
        logger.error({ route: route.name, err: (error as Error).message }, 'ramp controller tick failed (a pending rollout stays pending); trying again next tick')
        // Cut off from the store: this replica cannot renew its lease, so it does not drive the route.
        metrics.rampLeaseHeld.labels(route.name).set(0)
        metrics.clearGuardSignals(route.name)
        baselines.delete(route.name)
      }
    }
  }
  const schedule = () => {
    if (closed) return
    timer = setTimeout(() => {
      running = tick().finally(schedule)
    }, tickMs)
    timer.unref?.()
  }

  /** The store as admin calls see it: unreachable (Redis down) is a 503, not a 500. */
  const admin = {
    async load(route: Route): Promise<Ramp | undefined> {
      try {
        return await store.load(route.name)
      } catch (error) {
        throw unavailable(error)
      }
    },
    async save(ramp: Ramp, expected: number): Promise<SaveResult> {
      try {
        return await store.save(ramp, expected)
      } catch (error) {
        throw unavailable(error)
      }
    },
  }
  /** Pause or resume: the rollout stays where it is; the ledger records who did it and why. */
  async function pauseOrResume(name: string, actor: string, reason: string, done: 'paused' | 'resumed', transition: typeof pauseRamp) {
    const route = routeNamed(name)
    const ramp = await current(route)
    const view = await adminApply(route, ramp, transition(ramp, actor, now()))
    await opts.recordAction?.({ route: route.name, flag: route.flag!, from: ramp.percent, to: ramp.percent, actor, reason: `ramp ${done} at ${ramp.percent} %${reason ? `: ${reason}` : ''}`, source: 'ramp' })
    return view
  }
  const unavailable = (error: unknown) => new errors.RAMP_STATE_UNAVAILABLE((error as Error).message)

  /** Loads a route's ramp for an admin action; 409 when there is none. */
  async function current(route: Route): Promise<Ramp> {
    const ramp = await admin.load(route)
    if (!ramp) throw new errors.RAMP_CONFLICT(`route "${route.name}" has no ramp`)
    return ramp
  }
  async function adminApply(route: Route, ramp: Ramp, t: Transition) {
    const next = { ...t, ramp: { ...t.ramp, version: ramp.version + 1 } }
    if ((await apply(route, ramp.version, next)) !== 'saved') throw new errors.RAMP_CONFLICT(`the ramp of route "${route.name}" changed meanwhile; look again and retry`)
    if (isActive(next.ramp)) windowOf(route, rampKey(next.ramp), next.ramp.limits)
    return rampView(next.ramp)
  }

  return {
    start() {
      if (splitRoutes.length) schedule()
    },
    /** Stops ticking and gives up the leases (another replica takes over at its next tick). */
    async close() {
      closed = true
      clearTimeout(timer)
      await running
      await lease.releaseAll()
    },
    /** One pass over the routes now (tests; the scheduler calls it every tick). */
    tick: () => tick(),

    async view(name: string) {
      const route = routeNamed(name)
      const ramp = await admin.load(route)
      if (!ramp) throw new errors.NO_RAMP(route.name)
      const base = baselines.get(route.name)
      const live = isActive(ramp) && base?.key === rampKey(ramp) ? windowOf(route, base.key, ramp.limits) : ramp.window
      return { ...rampView(ramp), window: live }
    },

    async startRamp(name: string, body: RampRequest, actor: string) {
      const route = routeNamed(name)
      const plan = planOf(body)
      const existing = await admin.load(route)
      if (isActive(existing)) throw new errors.RAMP_CONFLICT(`a ramp is already ${existing.state} on route "${route.name}" at ${existing.percent} %: pause, resume or roll it back`)
      const t = startRamp({ id: randomUUID(), route: route.name, plan, actor, version: (existing?.version ?? 0) + 1, now: now() })
      // The first step first: a mode where the rollout cannot change (409) starts no ramp.
      await opts.changeRollout(route, t.rollout!.percent, t.rollout!.why)
      if ((await admin.save(t.ramp, existing?.version ?? 0)) !== 'saved') throw new errors.RAMP_CONFLICT(`the ramp of route "${route.name}" changed meanwhile; look again and retry`)
      windowOf(route, rampKey(t.ramp), t.ramp.limits) // the window starts now, if this process drives it
      metrics.publishRampState(route.name, 'running')
      logger.info({ route: route.name, flag: route.flag, percent: t.ramp.percent, steps: t.ramp.steps, actor, reason: plan.reason }, 'ramp started')
      return rampView(t.ramp)
    },

    pause: (name: string, actor: string, reason = '') => pauseOrResume(name, actor, reason, 'paused', pauseRamp),
    resume: (name: string, actor: string, reason = '') => pauseOrResume(name, actor, reason, 'resumed', resumeRamp),

    /** To 0 % at once (before anything is stored: the store may be down); ends an active ramp. */
    async rollback(name: string, actor: string, reason: string) {
      const route = routeNamed(name)
      await opts.changeRollout(route, 0, { actor, reason: `rollback${reason ? `: ${reason}` : ''}`, source: 'admin' })
      metrics.rampRollbacks.labels(route.name, 'admin', 'admin').inc()
      for (let attempt = 0; attempt < 3; attempt++) {
        let ramp: Ramp | undefined
        try {
          ramp = await store.load(route.name)
        } catch (error) {
          logger.error({ route: route.name, err: (error as Error).message }, 'rolled back to 0 %, but the ramp state is unavailable: a running ramp may step again once it is back')
          return { route: route.name, state: null, percent: 0, reason: `rolled back by ${actor}; the ramp state is unavailable (${(error as Error).message}): roll back again once it is back` }
        }
        if (!isActive(ramp)) return { route: route.name, state: ramp?.state ?? null, percent: 0, reason: `rolled back by ${actor}${reason ? `: ${reason}` : ''} (no ramp was running)` }
        const t = rollbackRamp(ramp, actor, reason, now())
        const next = { ...t.ramp, pending: null, version: ramp.version + 1 }
        if ((await admin.save(next, ramp.version)) === 'saved') {
          metrics.publishRampState(route.name, next.state)
          logger.info({ route: route.name, flag: route.flag, percent: 0, actor, reason }, 'ramp rolled back through the admin API')
          return rampView(next)
        }
      }
      throw new errors.RAMP_CONFLICT(`route "${route.name}" is at 0 %, but its ramp kept changing meanwhile; look again`)
    },
  }
}
