// What both flag sources share: unleash-client evaluating a set of definitions offline (the
// file's flags, or Unleash's bootstrap), and the per-flag shape cached for the hot path.
import { once } from 'node:events'
import { InMemStorageProvider, Unleash, type ClientFeaturesResponse } from 'unleash-client'
import { rolloutOf } from './flag-definitions.ts'
import type { FlagOrigin, FlagState } from './flag-source.ts'

/** An unleash-client that only evaluates `features`: no polling, no metrics, no disk. */
export async function offlineEvaluator(features: ClientFeaturesResponse, appName: string): Promise<Unleash> {
  const unleash = new Unleash({
    appName,
    url: 'http://127.0.0.1:9/offline',
    refreshInterval: 0,
    disableMetrics: true,
    bootstrap: { data: features.features, ...(features.segments ? { segments: features.segments } : {}) },
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
    for (const f of features) this.states.set(f.name, { flag: f.name, ...rolloutOf(f), source: originOf(f.name), defined: true })
  }

  summary(): Record<string, number | 'custom'> {
    return Object.fromEntries([...this.states.values()].map((s) => [s.flag, s.percent ?? 'custom']))
  }

  get(flag: string, fallbackOrigin: FlagOrigin): FlagState {
    return this.states.get(flag) ?? { flag, percent: 0, sticky: true, source: fallbackOrigin, defined: false }
  }
}
