// Runs the parity check of every route that declares a parity endpoint: on demand (the admin
// API) and every `intervalSeconds`, keeping the last report and the two gauges SREs alert on:
// migration_data_drift{route} and migration_replication_lag_seconds{route}. A check that fails
// (a side unreachable or without the endpoint) sets migration_parity_check_ok{route} to 0 and
// the two gauges to NaN: "unknown" is never shown as 0.
import { Gauge, type Registry } from 'prom-client'
import type { Logger } from '../../../lib/logger.ts'
import type { Route } from '../../model/route-map.ts'
import { internalCallHeaders } from '../../../lib/http/internal-auth.ts'
import { checkParity, type ParityReport } from './parity-check.ts'

export interface ParityFailure {
  route: string
  available: false
  checkedAt: string
  /** Why there is no comparison: no parity endpoint declared, or a side that failed to answer. */
  reason: string
  drift: null
  lagSeconds: null
}

export type ParityOutcome = ParityReport | ParityFailure

export interface ParityMonitor {
  /** Compares now (concurrent callers share one check per route). */
  check(route: Route): Promise<ParityOutcome>
  /** The last outcome, if any check ran. */
  last(route: string): ParityOutcome | undefined
  /** Called with every outcome, periodic checks and checks on demand alike (the retirement window counts each). */
  onOutcome(listener: (outcome: ParityOutcome) => void): void
  stop(): void
}

export interface ParityMonitorOptions {
  routes: readonly Route[]
  registry: Registry
  logger: Logger
  /** Bound on each call to a side's parity endpoint (default: the route's parity.timeoutSeconds). */
  timeoutMs?: number
  /** INTERNAL_TOKEN, sent with every call to a side's /internal endpoint. */
  internalToken?: string
}

export function createParityMonitor(options: ParityMonitorOptions): ParityMonitor {
  const logger = options.logger.child({ component: 'parity' })
  const drift = new Gauge({
    name: 'migration_data_drift',
    help: 'Records that differ between the two stores of a split route (missing on either side or different), from the last parity check; NaN when the check failed. Alerted on',
    labelNames: ['route'] as const,
    aggregator: 'max',
    registers: [options.registry],
  })
  const lag = new Gauge({
    name: 'migration_replication_lag_seconds',
    help: 'The larger replication lag the two stores of a split route report (oldest change not yet applied on the other side), from the last parity check; NaN when unknown. Alerted on',
    labelNames: ['route'] as const,
    aggregator: 'max',
    registers: [options.registry],
  })
  const ok = new Gauge({
    name: 'migration_parity_check_ok',
    help: '1 when the last parity check of the route compared both stores, 0 when it failed (the drift and lag gauges are NaN then)',
    labelNames: ['route'] as const,
    aggregator: 'min',
    registers: [options.registry],
  })
  const reports = new Map<string, ParityOutcome>()
  const listeners: Array<(outcome: ParityOutcome) => void> = []
  const running = new Map<string, Promise<ParityOutcome>>()
  // One pending timer per route (replaced at each tick, so the set stays as large as the route map).
  const timers = new Map<string, NodeJS.Timeout>()

  const failure = (route: string, reason: string): ParityFailure => ({ route, available: false, checkedAt: new Date().toISOString(), reason, drift: null, lagSeconds: null })

  async function run(route: Route): Promise<ParityOutcome> {
    if (!route.parity || !route.target) return failure(route.name, `route "${route.name}" declares no parity endpoint (route map: "parity")`)
    let outcome: ParityOutcome
    try {
      const headers = internalCallHeaders(options.internalToken)
      outcome = await checkParity(route.name, { name: route.legacy.name, url: route.legacy.url, headers }, { name: route.target.name, url: route.target.url, headers }, {
        path: route.parity.path,
        buckets: route.parity.buckets,
        timeoutMs: options.timeoutMs ?? route.parity.timeoutSeconds * 1000,
      })
    } catch (err) {
      outcome = failure(route.name, (err as Error).message)
      logger.warn({ route: route.name, err: (err as Error).message }, 'parity check failed')
    }
    reports.set(route.name, outcome)
    ok.labels(route.name).set(outcome.available ? 1 : 0)
    drift.labels(route.name).set(outcome.drift ?? Number.NaN)
    lag.labels(route.name).set(outcome.lagSeconds ?? Number.NaN)
    if (outcome.available && outcome.drift > 0) logger.warn({ route: route.name, drift: outcome.drift, missing: outcome.missing, differing: outcome.differingCount }, 'stores of the route differ')
    for (const listener of listeners) {
      try {
        listener(outcome)
      } catch (err) {
        logger.error({ route: route.name, err: (err as Error).message }, 'a parity outcome listener failed')
      }
    }
    return outcome
  }

  function check(route: Route): Promise<ParityOutcome> {
    const pending = running.get(route.name)
    if (pending) return pending
    const started = run(route).finally(() => running.delete(route.name))
    running.set(route.name, started)
    return started
  }

  for (const route of options.routes) {
    if (!route.parity || !route.target) continue
    const every = route.parity.intervalSeconds * 1000
    const tick = () => {
      void check(route).finally(() => {
        if (!stopped) timers.set(route.name, setTimeout(tick, every).unref())
      })
    }
    timers.set(route.name, setTimeout(tick, Math.min(every, 5_000)).unref())
  }
  let stopped = false

  return {
    check,
    last: (name) => reports.get(name),
    onOutcome(listener) {
      listeners.push(listener)
    },
    stop() {
      stopped = true
      for (const timer of timers.values()) clearTimeout(timer)
    },
  }
}
