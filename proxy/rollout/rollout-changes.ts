// Every rollout change the proxy makes goes through changeRollout (the admin API, ramps, the
// guard): the flag source's setRollout and then one ledger entry with the actor and the reason.
// Changes someone else makes — a hand edit of the flags file, a change in Unleash — are seen
// through FlagSource.onChange and recorded too, once: the proxy remembers the change it is
// making itself while it makes it, so its own write is not recorded a second time as observed.
import type { Logger } from '../../lib/logger.ts'
import { errors } from '../../lib/errors.ts'
import type { FlagSource, FlagState } from '../flags/flag-source.ts'
import type { Ledger, LedgerSource } from './ledger.ts'
import type { Route } from '../model/route-map.ts'

/** Why a rollout changes: who asked (an admin token's name, "ramp", "guard"), in their words, and through what. */
export interface RolloutChangeReason {
  actor: string
  reason: string
  source: 'admin' | 'ramp' | 'guard'
}

/** The one way the proxy changes a rollout (what ramps and the guard are given). */
export type ChangeRollout = (route: Route, percent: number, why: RolloutChangeReason) => Promise<void>

export interface RolloutChanges {
  changeRollout: ChangeRollout
  /** Resolves once the entries of changes noticed so far are stored (on close). */
  settled(): Promise<void>
}

export interface RolloutChangesDeps {
  routes: readonly Route[]
  flags: FlagSource
  ledger: Ledger
  logger: Logger
}

const percentOf = (state: FlagState) => state.percent ?? null

export function createRolloutChanges(deps: RolloutChangesDeps): RolloutChanges {
  const { flags, ledger, logger } = deps
  const split = deps.routes.filter((r): r is Route & { flag: string } => r.flag !== undefined)
  // What the proxy last saw per route, and the changes it is making itself right now.
  const known = new Map(split.map((r) => [r.name, flags.state(r.flag)]))
  const ownChanges = new Map<string, number>()
  const recording = new Set<Promise<void>>()
  // One change of a flag at a time: each one's `from` is the previous one's `to`, and the change
  // being made is the only one the observer has to tell apart from someone else's.
  const queues = new Map<string, Promise<unknown>>()
  const oneAtATime = <T>(flag: string, work: () => Promise<T>): Promise<T> => {
    const run = (queues.get(flag) ?? Promise.resolve()).then(work, work)
    queues.set(flag, run.catch(() => {}))
    return run
  }

  const observedActor: Record<FlagState['source'], { actor: string; source: LedgerSource } | undefined> = {
    file: { actor: 'flags-file', source: 'flags-file' },
    unleash: { actor: 'unleash', source: 'unleash' },
    env: undefined, // pinned at start by GRADUAL_MIGRATION: never changes while running
  }

  // Replicas sharing a ledger all notice a change made in Unleash (or by one of them): the first
  // to claim it records it. The proxy that makes a change claims it before writing it.
  const changeId = (route: string, from: number | null, to: number | null) => `${route}:${from ?? 'custom'}:${to ?? 'custom'}`
  async function recordOnce(entry: Parameters<Ledger['append']>[0]): Promise<void> {
    if (await ledger.claim(changeId(entry.route, entry.from, entry.to))) await ledger.append(entry)
    else logger.debug({ route: entry.route, from: entry.from, to: entry.to }, 'rollout change already recorded by another replica')
  }

  // Where an Unleash source's flags come from (nothing yet, the replicas' last known state, Unleash).
  let servedBefore = flags.status().servedFrom
  flags.onChange(() => {
    const served = flags.status().servedFrom
    const learning = served !== servedBefore
    servedBefore = served
    for (const route of split) {
      const now = flags.state(route.flag)
      const before = known.get(route.name)!
      if (percentOf(now) === percentOf(before) && now.source === before.source) continue
      known.set(route.name, now)
      if (percentOf(now) === percentOf(before)) continue
      if (ownChanges.get(route.flag) === percentOf(now)) continue // recorded by changeRollout
      const by = observedActor[now.source]
      // A change of where the flags come from (none, the last known state, then Unleash's first answer; or the file and the env pin) is the proxy learning, not someone moving users.
      if (!by || now.source !== before.source || learning) {
        logger.info({ route: route.name, flag: route.flag, from: percentOf(before), to: percentOf(now), source: now.source }, 'rollout now from another flag source')
        continue
      }
      const entry = { route: route.name, flag: route.flag, from: percentOf(before), to: percentOf(now), actor: by.actor, reason: `${now.source === 'file' ? 'flags file' : 'Unleash'} changed`, source: by.source }
      const done = recordOnce(entry).finally(() => recording.delete(done))
      recording.add(done)
    }
  })

  return {
    async changeRollout(route, percent, why) {
      const flag = route.flag
      if (!flag) throw new errors.ROUTE_HAS_NO_TARGET(route.name)
      if (!flags.setRollout) throw new errors.FLAGS_READ_ONLY()
      const setRollout = flags.setRollout.bind(flags)
      await oneAtATime(flag, async () => {
        const from = percentOf(flags.state(flag))
        const id = changeId(route.name, from, percent)
        await ledger.claim(id)
        ownChanges.set(flag, percent)
        try {
          await setRollout(flag, percent)
        } catch (error) {
          await ledger.unclaim(id)
          throw error
        } finally {
          ownChanges.delete(flag)
        }
        known.set(route.name, flags.state(flag))
        await ledger.append({ route: route.name, flag, from, to: percent, actor: why.actor, reason: why.reason, source: why.source })
      })
    },
    async settled() {
      await Promise.all([...recording])
    },
  }
}
