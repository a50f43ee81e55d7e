// Where the rollout flags come from. Two sources, one evaluator: unleash-client decides in
// both modes (the file's definitions are its bootstrap, with polling off), so a flag means
// exactly the same thing in development and in production.
//
// Precedence, highest first (documented in proxy/README.md):
//   1. Unleash, when UNLEASH_URL is set: the server's flags (the flags file only bootstraps
//      until the first successful fetch; GRADUAL_MIGRATION/MOVIES_MIGRATION_PERCENT are ignored).
//   2. GRADUAL_MIGRATION (when set) pins the movies-migration flag: true = MOVIES_MIGRATION_PERCENT,
//      false = 0 %, as the original proxy did.
//   3. The flags file (FLAGS_FILE, Unleash export format), reloaded when it changes.
import { once } from 'node:events'
import { InMemStorageProvider, Unleash, type ClientFeaturesResponse } from 'unleash-client'
import type { Logger } from '../lib/logger.ts'
import type { ProxyConfig } from './config.ts'
import { rolloutOf } from './flag-definitions.ts'

export type FlagOrigin = 'unleash' | 'file' | 'env'

export interface FlagState {
  flag: string
  /** Share of identities sent to the target; undefined when the flag is richer than a plain rollout. */
  percent: number | undefined
  sticky: boolean
  /** Which source the current definition came from. */
  source: FlagOrigin
}

export interface FlagSourceStatus {
  kind: 'unleash' | 'file'
  /** Definitions are loaded (from the source or, for Unleash, at least the bootstrap file). */
  loaded: boolean
  /** The last fetch or read succeeded. False = serving the last known flags. */
  healthy: boolean
  location: string
  lastSuccessAt?: string
  lastError?: string
}

export interface FlagSource {
  readonly kind: 'unleash' | 'file'
  /** Hot path: is `flag` on for `userId`. Never throws, never waits. */
  isEnabled(flag: string, userId: string): boolean
  state(flag: string): FlagState
  status(): FlagSourceStatus
  /** Sets a plain rollout; only the file source can (Unleash is changed in Unleash). */
  setRollout?(flag: string, percent: number): Promise<FlagState>
  /** Called after every change of definitions or health. */
  onChange(listener: () => void): void
  close(): Promise<void>
}

/** Thrown by setRollout when the change has to be made elsewhere (answered 409). */
export class FlagConflictError extends Error {
  override readonly name = 'FlagConflictError'
}

/** An unleash-client that only evaluates `features`: no polling, no metrics, no disk. */
export async function offlineEvaluator(features: ClientFeaturesResponse, appName: string): Promise<Unleash> {
  const unleash = new Unleash({
    appName,
    url: 'http://127.0.0.1:9/offline',
    refreshInterval: 0,
    disableMetrics: true,
    bootstrap: { data: features.features },
    bootstrapOverride: true,
    storageProvider: new InMemStorageProvider(),
    skipInstanceCountWarning: true,
  })
  unleash.on('error', () => {})
  unleash.on('warn', () => {})
  if (features.features.length > 0) {
    // The bootstrap is in memory; 'ready' follows within a tick or two.
    await Promise.race([once(unleash, 'ready'), new Promise((r) => setTimeout(r, 2_000).unref())])
  }
  return unleash
}

/** Cached per-flag shape so the hot path does not re-derive it. */
export class FlagStates {
  private readonly states = new Map<string, FlagState>()

  refresh(features: ClientFeaturesResponse['features'], originOf: (flag: string) => FlagOrigin): void {
    this.states.clear()
    for (const f of features) this.states.set(f.name, { flag: f.name, ...rolloutOf(f), source: originOf(f.name) })
  }

  summary(): Record<string, number | 'custom'> {
    return Object.fromEntries([...this.states.values()].map((s) => [s.flag, s.percent ?? 'custom']))
  }

  get(flag: string, fallbackOrigin: FlagOrigin): FlagState {
    return this.states.get(flag) ?? { flag, percent: 0, sticky: true, source: fallbackOrigin }
  }
}

export async function createFlagSource(config: ProxyConfig, logger: Logger): Promise<FlagSource> {
  if (config.unleashUrl) {
    if (config.gradualMigration !== undefined) {
      logger.warn('UNLEASH_URL is set: GRADUAL_MIGRATION / MOVIES_MIGRATION_PERCENT are ignored, change movies-migration in Unleash')
    }
    const { createUnleashFlagSource } = await import('./unleash-flag-source.ts')
    return createUnleashFlagSource(config, logger)
  }
  const { createFileFlagSource } = await import('./file-flag-source.ts')
  return createFileFlagSource(config, logger)
}
