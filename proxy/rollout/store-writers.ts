// The proxy's side of one writer per record (lib/replication/write-authority.ts): the stores of a
// route with `writer` in the route map decide who writes; the proxy only asks them to hand over
// and keeps them in view.
//
// Every `checkMs`, each replica reads both stores' /internal/writer and compares the writer with
// the one the flags want (`<flag>-writes` at 100 % or retired = target, anything else or missing
// = legacy). When they differ and the store that writes has no open conflict on either side, it
// asks that store to release (with the epoch it saw, so a stale ask changes nothing): the store
// stops writing and publishes the handover after its last change; the other store takes the
// writes once it has applied everything up to there. A switch made in the Unleash UI, in the
// flags file, by the admin API or forced is the same handover, whichever replica sees it first;
// the ledger records each release once (claimed by epoch). The last state seen is the hint the
// write path tries first (proxy-routes.ts); a store's refusal is what counts.
import type { Logger } from '../../lib/logger.ts'
import { errors } from '../../lib/errors.ts'
import { internalCallHeaders } from '../../lib/http/internal-auth.ts'
import type { FlagSource } from '../flags/flag-source.ts'
import type { Route } from '../model/route-map.ts'
import type { ProxyMetrics } from '../observability/metrics.ts'
import { isRetired, writerSideOf, writesFlagOf, type Side } from '../routing/decision.ts'
import type { Ledger } from './ledger.ts'

/** What a store says of its write authority (GET /internal/writer). */
export interface StoreWriterState {
  store: string
  /** When this store's authority last changed (a release or a take-up), by the store's clock. */
  changedAt: string
  writer: boolean
  epoch: number
  pendingEpoch: number | null
  handedTo: string | null
  catchingUp: boolean
  conflicts: number
  replicating: boolean
}

export interface RouteWriters {
  route: string
  /** The side the flags want to write. */
  desired: Side
  /** The side whose store writes now (and has caught up); null = none (a handover in flight, or a store unreachable). */
  writer: Side | null
  legacy: StoreWriterState | { error: string }
  target: StoreWriterState | { error: string }
  /** settled: the desired store writes; handing-over: no store writes yet; blocked: conflicts refuse the handover; standalone: a store replicates nothing (no Kafka) and takes any write; unknown: a store did not answer. */
  handover: 'settled' | 'handing-over' | 'blocked' | 'standalone' | 'unknown'
  conflicts: number
  checkedAt: string
}

export interface StoreWriters {
  /** The side to try first for a write (the store that wrote last as far as this replica knows). */
  hint(route: string): Side | undefined
  /** Notes the side a store took a write on, or refused one (the write path's own evidence). */
  noteWriter(route: string, side: Side): void
  /** Reads both stores now and hands over if the flags want another writer; the state after. */
  reconcile(route: Route, why?: { actor: string; reason: string; source: 'admin' | 'flags' }): Promise<RouteWriters>
  /** The last state read, if any. */
  last(route: string): RouteWriters | undefined
  /** Waits (reconciling) until the desired store writes, at most `timeoutMs`; the last state. */
  settle(route: Route, timeoutMs: number, why?: { actor: string; reason: string; source: 'admin' | 'flags' }): Promise<RouteWriters>
  /** Open conflicts of both stores. */
  conflicts(route: Route): Promise<{ legacy: unknown; target: unknown }>
  /** Resolves a conflict on each store: `keep` on one side, `take` (or `rekey`) on the other. */
  resolve(route: Route, key: string, plan: { legacy: 'keep' | 'take' | 'rekey'; target: 'keep' | 'take' | 'rekey' }, actor: string): Promise<{ legacy: unknown; target: unknown }>
  start(): void
  stop(): void
}

export interface StoreWritersOptions {
  routes: readonly Route[]
  flags: FlagSource
  ledger: Ledger
  metrics: ProxyMetrics
  logger: Logger
  /** How often each replica compares the stores' writer with the flags. */
  checkMs: number
  /** Bound on each call to a store. */
  timeoutMs: number
  /**
   * After a handover, a replica whose flags have not changed since asks for none for this long
   * (longer than any replica takes to see a flag change): a replica that has not seen the switch
   * yet does not undo it. A replica that saw the flag change after the handover asks at once.
   */
  quietMs: number
  /** INTERNAL_TOKEN: the stores' /internal answers only the proxy. */
  internalToken?: string
}

const isState = (s: StoreWriterState | { error: string }): s is StoreWriterState => !('error' in s)

/** The side the flags want to write the route: retired or `<flag>-writes` at 100 % = target, else legacy. */
export function desiredWriter(route: Route, flags: Pick<FlagSource, 'state'>): Side {
  return isRetired(route, flags) ? 'target' : (writerSideOf(route, flags) ?? 'legacy')
}

export function createStoreWriters(options: StoreWritersOptions): StoreWriters {
  const { flags, ledger, metrics } = options
  const logger = options.logger.child({ component: 'store-writers' })
  const routes = options.routes.filter((r) => r.writer && r.target)
  const lastState = new Map<string, RouteWriters>()
  const hints = new Map<string, Side>()
  const inFlight = new Map<string, Promise<RouteWriters>>()
  /** Per route, the desired side this replica last saw and since when (0: since it started). */
  const views = new Map<string, { side: Side; since: number }>()
  function viewOf(route: Route, desired: Side): { side: Side; since: number } {
    const seen = views.get(route.name)
    if (seen?.side === desired) return seen
    const view = { side: desired, since: seen ? Date.now() : 0 }
    views.set(route.name, view)
    return view
  }
  let timer: NodeJS.Timeout | undefined
  let stopped = false

  async function call<T>(route: Route, side: Side, path: string, body?: unknown): Promise<T> {
    const upstream = side === 'target' ? route.target! : route.legacy
    let res: Response
    try {
      res = await fetch(upstream.url + path, {
        method: body === undefined ? 'GET' : 'POST',
        signal: AbortSignal.timeout(options.timeoutMs),
        headers: { accept: 'application/json', ...internalCallHeaders(options.internalToken), ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
        body: body === undefined ? undefined : JSON.stringify(body),
      })
    } catch (err) {
      throw new errors.STORE_UNREACHABLE(`${upstream.name} ${path}`, (err as Error).message)
    }
    const text = await res.text().catch(() => '')
    if (res.status >= 400) {
      const error = new errors.STORE_UNREACHABLE(`${upstream.name} ${path}`, `${res.status} ${text.slice(0, 200)}`)
      ;(error as { storeStatus?: number }).storeStatus = res.status
      throw error
    }
    return JSON.parse(text) as T
  }

  const readState = (route: Route, side: Side): Promise<StoreWriterState | { error: string }> =>
    call<StoreWriterState>(route, side, route.writer!.path).then(
      (s) => (typeof s?.writer === 'boolean' && Number.isSafeInteger(s.epoch) ? s : { error: `${route.writer!.path} did not answer a write authority ({writer, epoch, …})` }),
      (err: Error) => ({ error: err.message }),
    )

  function summarise(route: Route, legacy: RouteWriters['legacy'], target: RouteWriters['target']): RouteWriters {
    const desired = desiredWriter(route, flags)
    // A store that replicates nothing (no Kafka) takes any write: there is nothing to hand over, and the flag alone decides.
    const standalone = (isState(legacy) && !legacy.replicating) || (isState(target) && !target.replicating)
    const writing = (s: RouteWriters['legacy']) => !standalone && isState(s) && s.writer && !s.catchingUp
    const writer: Side | null = writing(legacy) ? 'legacy' : writing(target) ? 'target' : null
    const conflicts = (isState(legacy) ? legacy.conflicts : 0) + (isState(target) ? target.conflicts : 0)
    const handover = !isState(legacy) || !isState(target) ? 'unknown' : standalone ? 'standalone' : writer === desired ? 'settled' : conflicts > 0 ? 'blocked' : 'handing-over'
    if (!standalone && isState(legacy) && isState(target) && legacy.writer && target.writer) {
      // Cannot happen by construction (one release per epoch); said loudly if it ever does.
      logger.error({ route: route.name, legacy, target }, 'both stores say they write: the write authority is broken')
    }
    return { route: route.name, desired, writer, legacy, target, handover, conflicts, checkedAt: new Date().toISOString() }
  }

  async function reconcileOnce(route: Route, why?: { actor: string; reason: string; source: 'admin' | 'flags' }): Promise<RouteWriters> {
    const [legacy, target] = await Promise.all([readState(route, 'legacy'), readState(route, 'target')])
    let state = summarise(route, legacy, target)
    if (state.writer) hints.set(route.name, state.writer)
    else if (state.handover === 'standalone') hints.delete(route.name)
    const from: Side = state.desired === 'target' ? 'legacy' : 'target'
    const losing = from === 'legacy' ? legacy : target
    const view = viewOf(route, state.desired)
    // The last handover; none yet (the stores as migrated: epochs 0 and 1) never holds a first one back.
    const handedOver = [legacy, target].some((s) => isState(s) && s.epoch > 1)
    const lastHandover = handedOver ? Math.max(...[legacy, target].map((s) => (isState(s) ? Date.parse(s.changedAt) || 0 : 0))) : 0
    // This replica saw the flags change after the last handover, or the handover is old enough that every replica has seen the flags since.
    // A replica that has not loaded its flags knows no wish of anyone's: it asks for nothing.
    const mayAsk = flags.status().loaded && (why?.source === 'admin' || view.since > lastHandover || Date.now() - lastHandover > options.quietMs)
    if (state.handover === 'handing-over' && isState(losing) && losing.writer && mayAsk) {
      const released = await call<{ released: boolean; epoch: number } & StoreWriterState>(route, from, `${route.writer!.path}/release`, { expectEpoch: losing.epoch }).catch((err: Error) => {
        logger.warn({ route: route.name, from, err: err.message }, 'release of the writes not asked yet')
        return undefined
      })
      if (released?.released) {
        logger.warn({ route: route.name, from, to: state.desired, epoch: released.epoch }, 'writes handed over: the old writer stopped, the new one takes them once it has applied its last change')
        // A switch through the admin API records itself, with its guard values (proxy/rollout/stages.ts).
        if (why?.source !== 'admin' && (await ledger.claim(`handover:${route.name}:${released.epoch}`))) {
          await ledger.append({
            route: route.name,
            flag: writesFlagOf(route.flag!),
            from: from === 'target' ? 100 : 0,
            to: state.desired === 'target' ? 100 : 0,
            // Made in the flag source (the Unleash UI, a flags file edit): the proxy noticed it and asked for the handover.
            actor: flags.status().kind === 'unleash' ? 'unleash' : 'flags-file',
            reason: `the flags want ${state.desired} to write: the stores handed over`,
            source: flags.status().kind === 'unleash' ? 'unleash' : 'flags-file',
            stage: 'writes',
            fromSide: from,
            toSide: state.desired,
            guard: { epoch: released.epoch, conflicts: 0 },
          })
        }
        state = summarise(route, from === 'legacy' ? released : legacy, from === 'target' ? released : target)
      }
    }
    metrics.writesSide.labels(route.name).set(state.writer === 'target' ? 1 : state.writer === 'legacy' ? 0 : Number.NaN)
    metrics.writerHandover.labels(route.name).set(state.handover === 'settled' ? 0 : state.handover === 'handing-over' ? 1 : state.handover === 'blocked' ? 2 : state.handover === 'standalone' ? 3 : Number.NaN)
    metrics.replicationConflicts.labels(route.name).set(state.conflicts)
    lastState.set(route.name, state)
    return state
  }

  /** One reconciliation per route at a time (concurrent callers share it). */
  function reconcile(route: Route, why?: { actor: string; reason: string; source: 'admin' | 'flags' }): Promise<RouteWriters> {
    const running = inFlight.get(route.name)
    if (running) return running
    const run = reconcileOnce(route, why).finally(() => inFlight.delete(route.name))
    inFlight.set(route.name, run)
    return run
  }

  async function tick(): Promise<void> {
    await Promise.all(routes.map((route) => reconcile(route).catch((err: Error) => logger.warn({ route: route.name, err: err.message }, 'store writers not checked'))))
    if (!stopped) timer = setTimeout(() => void tick(), options.checkMs)
  }

  return {
    hint: (route) => hints.get(route),
    noteWriter: (route, side) => void hints.set(route, side),
    reconcile,
    last: (route) => lastState.get(route),
    async settle(route, timeoutMs, why) {
      const until = Date.now() + timeoutMs
      let state = await reconcile(route, why)
      // Only a handover in flight is waited for: settled, blocked by conflicts or a store that cannot say end the wait.
      while (state.handover === 'handing-over' && Date.now() < until) {
        await new Promise((resolve) => setTimeout(resolve, 50))
        state = await reconcile(route, why)
      }
      return state
    },
    async conflicts(route) {
      const path = route.writer!.conflictsPath
      const [legacy, target] = await Promise.all([call(route, 'legacy', path), call(route, 'target', path)])
      return { legacy, target }
    },
    async resolve(route, key, plan, actor) {
      const path = `${route.writer!.conflictsPath}/resolve`
      // A side without an open conflict for the key has nothing to resolve (404): it says so, nothing fails.
      const one = (side: Side, resolution: string) =>
        call(route, side, path, { key, resolution, actor }).catch((err: Error & { storeStatus?: number }) => {
          if (err.storeStatus === 404) return { key, resolution, closed: 0 }
          throw err
        })
      // The side that keeps first: its newer version is on its way before the other takes.
      const order: Side[] = plan.legacy === 'keep' ? ['legacy', 'target'] : ['target', 'legacy']
      const results: Partial<Record<Side, unknown>> = {}
      for (const side of order) results[side] = await one(side, plan[side])
      return { legacy: results.legacy, target: results.target }
    },
    start() {
      if (routes.length === 0 || timer || stopped) return
      flags.onChange(() => {
        for (const route of routes) void reconcile(route).catch(() => {})
      })
      void tick()
    },
    stop() {
      stopped = true
      clearTimeout(timer)
    },
  }
}
