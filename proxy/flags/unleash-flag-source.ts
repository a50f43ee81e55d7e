// Flags from an Unleash server (unleash-client polling). Until the first successful fetch the
// last state a replica fetched from Unleash answers, kept in Redis (last-known-flags.ts,
// evaluated by unleash-client too); with neither, nothing is loaded: split routes answer 503 and
// /ready 503 — never the bundled flags file, which has no writer side and no retirement. After
// the first fetch the last flags Unleash sent stay in force while it is unreachable. Never
// throws, never blocks a request.
// With UNLEASH_ADMIN_TOKEN, setRollout writes the change to Unleash (unleash-admin.ts) and the
// proxy follows it at once, without waiting for its next fetch.
import { setTimeout as sleep } from 'node:timers/promises'
import { InMemStorageProvider, Unleash, type ClientFeaturesResponse } from 'unleash-client'
import type { Logger } from '../../lib/logger.ts'
import type { ProxyConfig } from '../config.ts'
import { rolloutOf } from './flag-definitions.ts'
import { FlagStates, offlineEvaluator } from './flag-evaluator.ts'
import { errors } from '../../lib/errors.ts'
import { type FlagSource, type FlagSourceStatus, type FlagState } from './flag-source.ts'
import { createUnleashAdmin } from './unleash-admin.ts'
import type { LastKnownFlags } from './last-known-flags.ts'

type Options = Pick<
  ProxyConfig,
  'unleashUrl' | 'unleashApiToken' | 'unleashAppName' | 'unleashRefreshIntervalMs' | 'unleashTimeoutMs' | 'unleashAdminToken' | 'unleashAdminUrl' | 'unleashProject' | 'unleashEnvironment'
>
type Feature = ClientFeaturesResponse['features'][number]

/** A flag the proxy itself just wrote to Unleash, served locally until Unleash serves a newer definition of it. */
interface Written {
  state: FlagState
  evaluator: Unleash
  /** What Unleash served for the flag before the write (JSON): a fetch still showing it is older than the write. */
  before: string
}

/** The last flag state a replica fetched, in Redis; undefined = none kept (no REDIS_URL). */
export interface UnleashFlagSourceDeps {
  lastKnown?: LastKnownFlags
}

export async function createUnleashFlagSource(config: Options, logger: Logger, deps: UnleashFlagSourceDeps = {}): Promise<FlagSource> {
  const url = config.unleashUrl!
  const { lastKnown } = deps
  const states = new FlagStates()
  /** The last known state from Redis, in force until the first fetch from Unleash. */
  let fallback: { evaluator: Unleash; savedAt: string } | undefined
  let closed = false
  const closing = new AbortController()

  // No bootstrap and no backup read here: every 'changed' event is data from the server. Each
  // state that changed goes to the storage provider: Redis, for the replicas that start later.
  const unleash = new Unleash({
    appName: config.unleashAppName,
    url,
    refreshInterval: config.unleashRefreshIntervalMs,
    timeout: config.unleashTimeoutMs,
    customHeaders: { Authorization: config.unleashApiToken! },
    storageProvider: lastKnown?.storageProvider ?? new InMemStorageProvider(),
    skipInstanceCountWarning: true,
  })
  const admin =
    config.unleashAdminToken && config.unleashAdminUrl
      ? createUnleashAdmin({ url: config.unleashAdminUrl, token: config.unleashAdminToken, project: config.unleashProject, environment: config.unleashEnvironment, timeoutMs: config.unleashTimeoutMs })
      : undefined
  let served = new Map<string, string>()
  const written = new Map<string, Written>()
  let synced = false
  let healthy = false
  let lastSuccessAt: string | undefined
  let lastError: string | undefined
  const listeners: Array<() => void> = []
  const changed = () => listeners.forEach((l) => l())

  const succeeded = () => {
    if (!healthy) logger.info({ url, flags: states.summary() }, synced ? 'Unleash reachable again' : 'flags from Unleash')
    healthy = true
    lastError = undefined
    lastSuccessAt = new Date().toISOString()
  }
  unleash.on('changed', (features: ClientFeaturesResponse['features']) => {
    states.refresh(features, () => 'unleash')
    served = new Map(features.map((f) => [f.name, JSON.stringify(f)]))
    for (const [flag, w] of written) {
      if ((served.get(flag) ?? '') === w.before) continue
      written.delete(flag)
      w.evaluator.destroy()
    }
    synced = true
    fallback?.evaluator.destroy()
    fallback = undefined
    succeeded()
    changed()
  })
  unleash.on('unchanged', () => {
    const wasHealthy = healthy
    succeeded()
    if (!wasHealthy) changed()
  })
  unleash.on('error', (err: Error) => {
    // Usage metrics failing to send does not make the flags stale.
    if (err.message.startsWith('Unleash Metrics error')) return void logger.debug({ err: err.message }, 'Unleash metrics not sent')
    const first = healthy || lastError !== err.message || lastError === undefined
    healthy = false
    lastError = err.message
    if (first) logger.error({ url, err: err.message, keeping: synced ? 'last flags from Unleash' : fallback ? 'last known flags (Redis)' : 'no flags (split routes answer 503, not ready)' }, 'Unleash unavailable')
    changed()
  })
  unleash.on('warn', (msg: unknown) => logger.debug({ msg: String(msg) }, 'unleash-client warning'))

  // Until the first fetch: the last known state from Redis, tried again while Redis cannot say
  // or holds none (a replica reaching Unleash saves one).
  let lastKnownProblem = lastKnown ? 'none read yet' : 'no REDIS_URL: none kept'
  async function loadLastKnown(): Promise<void> {
    for (let attempt = 0; lastKnown && !closed && !synced && !fallback; attempt++) {
      try {
        const state = await lastKnown.load()
        if (state && !synced && !closed) {
          const evaluator = await offlineEvaluator(state.features, config.unleashAppName)
          if (synced || closed) return void evaluator.destroy()
          fallback = { evaluator, savedAt: state.savedAt }
          states.refresh(state.features.features, () => 'unleash')
          logger.warn({ from: lastKnown.location, savedAt: state.savedAt, flags: states.summary() }, 'routing by the last flag state known to the replicas until Unleash answers')
          changed()
          return
        }
        lastKnownProblem = `none in ${lastKnown.location}`
      } catch (err) {
        lastKnownProblem = `${lastKnown.location}: ${(err as Error).message}`
        if (attempt === 0) logger.warn({ err: (err as Error).message, from: lastKnown.location }, 'cannot read the last known flag state yet, retrying')
      }
      await sleep(Math.min(Math.max(config.unleashRefreshIntervalMs, 500), 2_000), undefined, { signal: closing.signal }).catch(() => {})
    }
  }
  const loading = loadLastKnown()

  return {
    kind: 'unleash',
    isEnabled(flag, userId) {
      const own = written.get(flag)
      if (own) return own.evaluator.isEnabled(flag, { userId })
      if (synced) return unleash.isEnabled(flag, { userId })
      return fallback !== undefined && fallback.evaluator.isEnabled(flag, { userId })
    },
    state(flag) {
      const own = written.get(flag)
      if (own) return own.state
      return states.get(flag, 'unleash')
    },
    status(): FlagSourceStatus {
      const servedFrom = synced ? 'unleash' : fallback ? 'last-known' : 'none'
      return {
        kind: 'unleash',
        loaded: servedFrom !== 'none',
        servedFrom,
        ...(fallback ? { lastKnownSavedAt: fallback.savedAt } : {}),
        ...(servedFrom === 'none' ? { notLoaded: `no answer from Unleash yet${lastError ? ` (${lastError})` : ''} and no last known state (${lastKnownProblem})` } : {}),
        healthy,
        location: url,
        lastSuccessAt,
        lastError,
      }
    },
    async setRollout(flag, percent) {
      if (!admin) throw new errors.FLAG_IN_UNLEASH(url, flag)
      const before = served.get(flag) ?? ''
      const feature: Feature = await admin.setRollout(flag, percent)
      const evaluator = await offlineEvaluator({ version: 2, features: [feature] }, config.unleashAppName)
      written.get(flag)?.evaluator.destroy()
      const state: FlagState = { flag, ...rolloutOf(feature), source: 'unleash', defined: true }
      written.set(flag, { state, evaluator, before })
      logger.info({ flag, percent, project: config.unleashProject, environment: config.unleashEnvironment }, 'rollout written to Unleash')
      changed()
      return state
    },
    onChange(listener) {
      listeners.push(listener)
    },
    async close() {
      closed = true
      closing.abort()
      unleash.destroy()
      await loading
      fallback?.evaluator.destroy()
      for (const w of written.values()) w.evaluator.destroy()
    },
  }
}
