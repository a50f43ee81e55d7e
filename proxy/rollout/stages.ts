// The stages of a route's migration beyond the read percentage: which side takes the writes
// (PUT /admin/routes/:name/writes) and the retirement of legacy (POST .../retire). Both live in
// the flag source beside the read flag (`<flag>-writes`, `<flag>-retired`, plain rollouts at 0 or
// 100 %), so every replica switches together, from the flags file and Unleash alike, and a
// restart keeps them. Each step is guarded by the route's parity check (proxy/rollout/parity/)
// and recorded in the ledger with the actor, the reason and the guard values of that moment.
import { errors } from '../../lib/errors.ts'
import type { Logger } from '../../lib/logger.ts'
import type { FlagSource } from '../flags/flag-source.ts'
import type { Route } from '../model/route-map.ts'
import type { ProxyMetrics } from '../observability/metrics.ts'
import { isRetired, retiredFlagOf, writerSideOf, writesFlagOf, type Side } from '../routing/decision.ts'
import type { Ledger } from './ledger.ts'
import type { RouteWriters, StoreWriters } from './store-writers.ts'
import type { ParityMonitor, ParityOutcome } from './parity/parity-monitor.ts'
import type { ParityReport } from './parity/parity-check.ts'

export interface StageLimits {
  /** Largest replication lag (seconds) a switch of the writer side accepts. */
  maxLagSeconds: number
  /** Longest a switch waits for the stores' handover to finish before it answers (still handing over). */
  holdMs: number
  /** Retirement needs parity 0 in every check of this long a window (and one now). */
  retireWindowSeconds: number
}

export interface StageStep {
  actor: string
  reason: string
  /** Past a refusing guard (the reason is required then, and the ledger says so). */
  force?: boolean
}

export type GuardValues = Record<string, number | string | boolean | null>

export interface RouteStage {
  route: string
  readPercent: number | null
  /** The side the flags want to write; null: no writer-side flag, writes follow the read flag. */
  writes: Side | null
  /** Where the stores decide who writes: what they said last (writer, handover, conflicts); null otherwise. */
  writers: RouteWriters | null
  retired: boolean
  parity: { drift: number | null; lagSeconds: number | null; checkedAt: string | null; unreplicatedToLegacy: number | null }
}

export interface Stages {
  switchWrites(route: Route, side: Side, step: StageStep): Promise<RouteStage>
  retire(route: Route, step: StageStep): Promise<RouteStage>
  stage(route: Route): RouteStage
  /** When the route's last parity check found the stores equal with nothing left to replicate (read-your-writes ends there). */
  caughtUpAt(route: string): number | undefined
  /** Whether the route's readers may be sent back to legacy now (writes on legacy, or parity 0): the ramp guard asks before a rollback. */
  readsMayGoBack(route: Route): Promise<{ ok: boolean; guard: GuardValues; sample: unknown }>
}

export interface StagesDeps {
  flags: FlagSource
  parity: ParityMonitor
  ledger: Ledger
  metrics: ProxyMetrics
  logger: Logger
  limits: StageLimits
  writers: StoreWriters
}

/** A parity check younger than this answers the frozen ramp's question again. */
const RECENT_CHECK_MS = 5_000

const num = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null)

/**
 * Changes the target wrote that legacy has not applied yet: the target's outbox not yet on the
 * topic plus the topic's messages legacy has not consumed (the sides' parity endpoints report
 * both, lib/replication/service.ts). null = a side cannot say.
 */
export function unreplicatedToLegacy(report: ParityReport): number | null {
  const published = num(report.target.replication?.unpublished_changes)
  const unapplied = num(report.legacy.replication?.unapplied_messages)
  return published === null || unapplied === null ? null : published + unapplied
}

/** Changes still on their way to the target (legacy's outbox, the topic's messages the target has not applied); 0 when a side cannot say. */
function inFlightToTarget(report: ParityReport): number {
  return (num(report.legacy.replication?.unpublished_changes) ?? 0) + (num(report.target.replication?.unapplied_messages) ?? 0)
}

/**
 * Drift that replication in flight does not explain: records missing on a side beyond the
 * changes still on their way to it, plus records that differ. While clients keep writing, a
 * record written a moment ago is missing on the other side until it is applied — that is lag
 * (bounded by its own guard), not a difference between the stores.
 */
export function unexplainedDrift(report: ParityReport): number {
  const toLegacy = unreplicatedToLegacy(report) ?? 0
  return Math.max(0, report.missing.onTarget - inFlightToTarget(report)) + Math.max(0, report.missing.onLegacy - toLegacy) + report.differingCount
}

function guardValuesOf(outcome: ParityOutcome): GuardValues {
  if (!outcome.available) return { parity: 'unavailable', why: outcome.reason, checkedAt: outcome.checkedAt }
  return {
    drift: outcome.drift,
    unexplainedDrift: unexplainedDrift(outcome),
    inFlightToTarget: inFlightToTarget(outcome),
    lagSeconds: outcome.lagSeconds,
    unreplicatedToLegacy: unreplicatedToLegacy(outcome),
    checkedAt: outcome.checkedAt,
  }
}

const sampleOf = (outcome: ParityOutcome) =>
  outcome.available ? { missingOnLegacy: outcome.missingOnLegacy.slice(0, 10), missingOnTarget: outcome.missingOnTarget.slice(0, 10), differing: outcome.differing.slice(0, 10) } : null

export function createStages(deps: StagesDeps): Stages {
  const { flags, parity, ledger, limits } = deps
  // Per route: since when every check found the stores equal (retirement's window), and when the last such check started.
  const cleanSince = new Map<string, number>()
  const queues = new Map<string, Promise<unknown>>()
  const oneAtATime = <T>(route: string, work: () => Promise<T>): Promise<T> => {
    const run = (queues.get(route) ?? Promise.resolve()).then(work, work)
    queues.set(route, run.catch(() => {}))
    return run
  }

  const splitFlag = (route: Route): string => {
    if (!route.target || !route.flag) throw new errors.ROUTE_HAS_NO_TARGET(route.name)
    if (!flags.setRollout) throw new errors.FLAGS_READ_ONLY()
    return route.flag
  }

  /** A fresh parity check (the window hears of it through onOutcome, as of every check). */
  const checkNow = (route: Route): Promise<ParityOutcome> => parity.check(route)
  // Retirement's window counts every check the monitor makes, periodic ones included: any check
  // that is not clean (drift, lag, a side unreachable) restarts it.
  parity.onOutcome((outcome) => {
    const clean = outcome.available && outcome.drift === 0 && (outcome.lagSeconds ?? 0) === 0
    if (!clean) cleanSince.delete(outcome.route)
    else if (!cleanSince.has(outcome.route)) cleanSince.set(outcome.route, Date.parse(outcome.checkedAt))
  })

  /** Throws the refusal of the first guard that does not hold (unless forced). */
  function refuseUnless(force: boolean | undefined, checks: Array<[guard: string, failed: boolean, value: string, limit: string, hint: string]>): void {
    const failed = checks.find(([, bad]) => bad)
    if (failed && !force) throw new errors.STAGE_GUARD_REFUSED(failed[0], failed[2], failed[3], failed[4])
  }

  function stage(route: Route): RouteStage {
    const last = parity.last(route.name)
    return {
      route: route.name,
      readPercent: route.flag ? (flags.state(route.flag).percent ?? null) : null,
      writes: writerSideOf(route, flags) ?? null,
      writers: route.writer ? (deps.writers.last(route.name) ?? null) : null,
      retired: isRetired(route, flags),
      parity: {
        drift: last?.drift ?? null,
        lagSeconds: last?.lagSeconds ?? null,
        checkedAt: last?.checkedAt ?? null,
        unreplicatedToLegacy: last?.available ? unreplicatedToLegacy(last) : null,
      },
    }
  }

  return {
    stage,
    switchWrites(route, side, step) {
      const flag = splitFlag(route)
      return oneAtATime(route.name, async () => {
        const why = { actor: step.actor, reason: step.reason, source: 'admin' as const }
        // Where the stores decide who writes, what they say now (another replica may have switched a moment ago).
        const before = route.writer ? await deps.writers.reconcile(route) : undefined
        const from = before ? (before.writer ?? before.desired) : (writerSideOf(route, flags) ?? null)
        // Nothing to do when the flag and the stores agree already (this replica's flag may lag a switch made through another).
        if (writerSideOf(route, flags) === side && (!before || before.writer === side)) return stage(route)
        if (side === 'legacy' && isRetired(route, flags)) throw new errors.ROUTE_RETIRED(route.name)
        // Conflicts are never switched past, not even forced: the store that would stop writing is one side of them.
        if (before && before.conflicts > 0) throw new errors.STAGE_GUARD_REFUSED('replication conflicts', String(before.conflicts), '0', 'resolve them first: GET /admin/routes/:name/conflicts')
        const outcome = await checkNow(route)
        const guard = guardValuesOf(outcome)
        if (!outcome.available) refuseUnless(step.force, [['parity', true, `unknown (${outcome.reason})`, 'a comparison of both stores', 'force with a reason to switch without one']])
        else {
          const back = side === 'legacy' ? unreplicatedToLegacy(outcome) : 0
          refuseUnless(step.force, [
            // Going back first: what legacy lacks is the reason to wait, and the number to watch.
            ['unreplicated changes', side === 'legacy' && back !== 0, back === null ? 'unknown' : `${back} changes of the target not applied on legacy`, '0', 'wait for legacy to apply them (GET /admin/routes/:name/parity)'],
            ['parity drift', unexplainedDrift(outcome) > 0, `${unexplainedDrift(outcome)} (${outcome.drift} records differ, ${inFlightToTarget(outcome)} + ${unreplicatedToLegacy(outcome) ?? 0} changes in flight)`, '0', 'the stores differ: see GET /admin/routes/:name/parity'],
            ['replication lag', outcome.lagSeconds === null || outcome.lagSeconds > limits.maxLagSeconds, outcome.lagSeconds === null ? 'unknown' : `${outcome.lagSeconds} s`, `${limits.maxLagSeconds} s`, 'wait for replication to catch up'],
          ])
        }
        // The handover this switch starts is recorded here, with the guard values; claimed by its
        // epoch so that the replica whose check asks the store to release does not record it again.
        const losing = before && (side === 'target' ? before.legacy : before.target)
        const epoch = losing && 'epoch' in losing && losing.writer ? losing.epoch + 1 : null
        if (epoch !== null) await ledger.claim(`handover:${route.name}:${epoch}`)
        await flags.setRollout!(writesFlagOf(flag), side === 'target' ? 100 : 0)
        const started = Date.now()
        const after = route.writer ? await deps.writers.settle(route, limits.holdMs, why) : undefined
        // How long writes waited: from the flag to the new store taking them (or the bound, still handing over).
        Object.assign(guard, { heldMs: Date.now() - started, epoch, handover: after?.handover ?? null })
        await ledger.append({
          route: route.name,
          flag: writesFlagOf(flag),
          from: from === null ? null : from === 'target' ? 100 : 0,
          to: side === 'target' ? 100 : 0,
          actor: step.actor,
          reason: step.reason,
          source: 'admin',
          stage: 'writes',
          fromSide: from,
          toSide: side,
          guard,
          ...(step.force ? { forced: true } : {}),
        })
        deps.logger.info({ route: route.name, from, to: side, guard, forced: step.force === true }, 'writer side switched')
        return stage(route)
      })
    },
    retire(route, step) {
      const flag = splitFlag(route)
      return oneAtATime(route.name, async () => {
        if (isRetired(route, flags)) return stage(route)
        const percent = flags.state(flag).percent
        const writes = writerSideOf(route, flags)
        if (percent !== 100) throw new errors.STAGE_REFUSED(`reads of route "${route.name}" are at ${percent ?? 'a custom rollout'} %, not 100 % on the target`)
        if (writes !== 'target') throw new errors.STAGE_REFUSED(`writes of route "${route.name}" are ${writes === undefined ? 'not switched (no writer side)' : 'on legacy'}: PUT /admin/routes/${route.name}/writes {"side":"target"} first`)
        if (route.writer) {
          const writers = await deps.writers.reconcile(route)
          if (writers.conflicts > 0) throw new errors.STAGE_GUARD_REFUSED('replication conflicts', String(writers.conflicts), '0', 'resolve them first: GET /admin/routes/:name/conflicts')
          if (writers.writer !== 'target') throw new errors.STAGE_REFUSED(`the target's store of route "${route.name}" does not take the writes yet (handover ${writers.handover}): retry once it does`)
        }
        const outcome = await checkNow(route)
        const guard = guardValuesOf(outcome)
        const since = cleanSince.get(route.name)
        const cleanFor = since === undefined ? 0 : Math.round((Date.now() - since) / 1000)
        guard.cleanForSeconds = cleanFor
        if (!outcome.available) refuseUnless(step.force, [['parity', true, `unknown (${outcome.reason})`, 'a comparison of both stores', 'retry when both stores answer']])
        else {
          refuseUnless(step.force, [
            ['parity drift', outcome.drift > 0, String(outcome.drift), '0', 'the stores differ: see GET /admin/routes/:name/parity'],
            ['parity window', cleanFor < limits.retireWindowSeconds, `parity 0 for ${cleanFor} s`, `${limits.retireWindowSeconds} s`, 'retry once parity has held for the window'],
          ])
        }
        await flags.setRollout!(retiredFlagOf(flag), 100)
        await ledger.append({ route: route.name, flag: retiredFlagOf(flag), from: 0, to: 100, actor: step.actor, reason: step.reason, source: 'admin', stage: 'retire', guard, ...(step.force ? { forced: true } : {}) })
        deps.logger.warn({ route: route.name, guard }, 'legacy retired for the route: no fallback to it any more')
        return stage(route)
      })
    },
    caughtUpAt(name) {
      const last = parity.last(name)
      if (!last?.available || last.drift !== 0) return undefined
      const back = unreplicatedToLegacy(last)
      // Nothing left anywhere: the check started after every write it saw applied on both sides.
      return back === 0 && (last.lagSeconds ?? 1) === 0 ? Date.parse(last.checkedAt) : undefined
    },
    async readsMayGoBack(route) {
      if (writerSideOf(route, flags) !== 'target') return { ok: true, guard: {}, sample: null }
      // Asked on every tick of a frozen ramp: a check of the last few seconds answers.
      const last = parity.last(route.name)
      const outcome = last && Date.now() - Date.parse(last.checkedAt) < RECENT_CHECK_MS ? last : await checkNow(route)
      return { ok: outcome.available && outcome.drift === 0 && unreplicatedToLegacy(outcome) === 0, guard: guardValuesOf(outcome), sample: sampleOf(outcome) }
    },
  }
}
