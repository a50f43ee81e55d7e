// Flags from an Unleash server (unleash-client polling). Until the first successful fetch the
// flags file answers (evaluated by unleash-client too); afterwards the last flags Unleash sent
// stay in force while it is unreachable. Never throws, never blocks a request.
// With UNLEASH_ADMIN_TOKEN, setRollout writes the change to Unleash (unleash-admin.ts) and the
// proxy follows it at once, without waiting for its next fetch.
import { readFile } from 'node:fs/promises'
import { InMemStorageProvider, Unleash, type ClientFeaturesResponse } from 'unleash-client'
import type { Logger } from '../../lib/logger.ts'
import type { ProxyConfig } from '../config.ts'
import { rolloutOf, toClientFeatures } from './flag-definitions.ts'
import { FlagStates, offlineEvaluator } from './flag-evaluator.ts'
import { errors } from '../../lib/errors.ts'
import { type FlagSource, type FlagSourceStatus, type FlagState } from './flag-source.ts'
import { createUnleashAdmin } from './unleash-admin.ts'

type Options = Pick<
  ProxyConfig,
  'unleashUrl' | 'unleashApiToken' | 'unleashAppName' | 'unleashRefreshIntervalMs' | 'unleashTimeoutMs' | 'flagsFile' | 'unleashAdminToken' | 'unleashAdminUrl' | 'unleashProject' | 'unleashEnvironment'
>
type Feature = ClientFeaturesResponse['features'][number]

/** A flag the proxy itself just wrote to Unleash, served locally until Unleash serves a newer definition of it. */
interface Written {
  state: FlagState
  evaluator: Unleash
  /** What Unleash served for the flag before the write (JSON): a fetch still showing it is older than the write. */
  before: string
}

export async function createUnleashFlagSource(config: Options, logger: Logger): Promise<FlagSource> {
  const url = config.unleashUrl!
  let fileFlags: ClientFeaturesResponse | undefined
  try {
    fileFlags = toClientFeatures(JSON.parse(await readFile(config.flagsFile, 'utf8')))
  } catch (error) {
    logger.warn({ file: config.flagsFile, err: (error as Error).message }, 'no usable flags file to bootstrap from; flags stay off until Unleash answers')
  }
  const bootstrap = fileFlags ? await offlineEvaluator(fileFlags, config.unleashAppName) : undefined
  const states = new FlagStates()
  if (fileFlags) states.refresh(fileFlags.features, () => 'file')

  // No bootstrap and no backup here: every 'changed' event is data from the server.
  const unleash = new Unleash({
    appName: config.unleashAppName,
    url,
    refreshInterval: config.unleashRefreshIntervalMs,
    timeout: config.unleashTimeoutMs,
    customHeaders: { Authorization: config.unleashApiToken! },
    storageProvider: new InMemStorageProvider(),
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
    if (first) logger.error({ url, err: err.message, keeping: synced ? 'last flags from Unleash' : bootstrap ? 'flags file' : 'no flags (everyone on legacy)' }, 'Unleash unavailable')
    changed()
  })
  unleash.on('warn', (msg: unknown) => logger.debug({ msg: String(msg) }, 'unleash-client warning'))

  return {
    kind: 'unleash',
    isEnabled(flag, userId) {
      const own = written.get(flag)
      if (own) return own.evaluator.isEnabled(flag, { userId })
      if (synced) return unleash.isEnabled(flag, { userId })
      return bootstrap !== undefined && bootstrap.isEnabled(flag, { userId })
    },
    state(flag) {
      const own = written.get(flag)
      if (own) return own.state
      return states.get(flag, synced ? 'unleash' : 'file')
    },
    status(): FlagSourceStatus {
      return { kind: 'unleash', loaded: synced || bootstrap !== undefined, healthy, location: url, lastSuccessAt, lastError }
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
      unleash.destroy()
      bootstrap?.destroy()
      for (const w of written.values()) w.evaluator.destroy()
    },
  }
}
