// Flags from a local file (Unleash export format), reloaded when the file changes. A broken
// file never replaces good flags: the last good ones stay, the error is logged and reported.
import { randomBytes } from 'node:crypto'
import { watch, type FSWatcher } from 'node:fs'
import { readFile, rename, writeFile } from 'node:fs/promises'
import { basename, dirname } from 'node:path'
import type { Unleash, ClientFeaturesResponse } from 'unleash-client'
import type { Logger } from '../../lib/logger.ts'
import type { ProxyConfig } from '../config.ts'
import { LEGACY_ENV_FLAG, rolloutFeature, setRolloutInDocument, toClientFeatures, withFeature } from './flag-definitions.ts'
import { FlagStates, offlineEvaluator } from './flag-evaluator.ts'
import { errors } from '../../lib/errors.ts'
import { type FlagOrigin, type FlagSource, type FlagSourceStatus, type FlagState } from './flag-source.ts'

type Options = Pick<ProxyConfig, 'flagsFile' | 'gradualMigration' | 'moviesMigrationPercent' | 'unleashAppName'>

/** The legacy env pair as a flag definition, or undefined when GRADUAL_MIGRATION is unset. */
export function legacyEnvFeature(config: Pick<ProxyConfig, 'gradualMigration' | 'moviesMigrationPercent'>) {
  if (config.gradualMigration === undefined) return undefined
  return rolloutFeature(LEGACY_ENV_FLAG, config.gradualMigration ? (config.moviesMigrationPercent ?? 0) : 0, config.gradualMigration)
}

export async function createFileFlagSource(config: Options, logger: Logger): Promise<FlagSource> {
  const file = config.flagsFile
  const pinned = legacyEnvFeature(config)
  if (pinned) logger.info({ flag: LEGACY_ENV_FLAG, percent: config.gradualMigration ? (config.moviesMigrationPercent ?? 0) : 0 }, 'GRADUAL_MIGRATION pins the movies flag; the flags file does not change it')
  else if (config.moviesMigrationPercent !== undefined) logger.warn('MOVIES_MIGRATION_PERCENT is ignored without GRADUAL_MIGRATION=true (as in the original proxy)')

  let evaluator: Unleash | undefined
  let loaded = false
  let healthy = false
  let lastSuccessAt: string | undefined
  let lastError: string | undefined
  let lastText: string | undefined
  const states = new FlagStates()
  const listeners: Array<() => void> = []
  const changed = () => listeners.forEach((l) => l())
  const originOf = (flag: string): FlagOrigin => (pinned && flag === LEGACY_ENV_FLAG ? 'env' : 'file')

  async function apply(features: ClientFeaturesResponse): Promise<void> {
    const effective = pinned ? withFeature(features, pinned) : features
    const next = await offlineEvaluator(effective, config.unleashAppName)
    const previous = evaluator
    evaluator = next
    states.refresh(effective.features, originOf)
    loaded = true
    previous?.destroy()
  }

  // Reloads are serialised: a write through the admin API and the watcher never interleave.
  let queue: Promise<unknown> = Promise.resolve()
  const serial = <T>(work: () => Promise<T>): Promise<T> => {
    const run = queue.then(work, work)
    queue = run.catch(() => {})
    return run
  }

  const reload = (reason: string) =>
    serial(async () => {
      let text: string
      try {
        text = await readFile(file, 'utf8')
      } catch (error) {
        return fail(`cannot read ${file}: ${(error as Error).message}`, reason)
      }
      if (text === lastText && healthy) return
      try {
        await apply(toClientFeatures(JSON.parse(text)))
      } catch (error) {
        return fail(`${file}: ${(error as Error).message}`, reason)
      }
      lastText = text
      healthy = true
      lastError = undefined
      lastSuccessAt = new Date().toISOString()
      logger.info({ file, reason, flags: states.summary() }, 'flags loaded')
      changed()
    })

  function fail(message: string, reason: string): void {
    const first = healthy || lastError !== message
    healthy = false
    lastError = message
    if (first) logger.error({ file, reason, keeping: loaded ? 'last good flags' : 'no flags (split routes answer 503, not ready)' }, `flags file rejected: ${message}`)
    changed()
  }

  await reload('start')
  if (!loaded && pinned) await apply({ version: 2, features: [] })

  // Watch the directory: an editor or the admin API replaces the file (rename), which a
  // watch on the file itself would lose.
  let timer: NodeJS.Timeout | undefined
  let watcher: FSWatcher | undefined
  try {
    watcher = watch(dirname(file), (_event, name) => {
      if (name !== null && name !== basename(file)) return
      clearTimeout(timer)
      timer = setTimeout(() => void reload('file changed'), 50)
    })
    watcher.on('error', (err) => logger.warn({ err: err.message }, 'flags file watch failed; changes need the admin API or a restart'))
  } catch (error) {
    logger.warn({ err: (error as Error).message }, 'cannot watch the flags file directory')
  }

  return {
    kind: 'file',
    isEnabled(flag, userId) {
      return evaluator !== undefined && evaluator.isEnabled(flag, { userId })
    },
    state(flag): FlagState {
      return states.get(flag, originOf(flag))
    },
    status(): FlagSourceStatus {
      return { kind: 'file', loaded, healthy, location: file, lastSuccessAt, lastError }
    },
    async setRollout(flag, percent) {
      if (pinned && flag === LEGACY_ENV_FLAG) {
        throw new errors.FLAG_PINNED_BY_ENV(flag)
      }
      await serial(async () => {
        const doc = setRolloutInDocument(JSON.parse(await readFile(file, 'utf8')), flag, percent)
        const tmp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`
        await writeFile(tmp, `${JSON.stringify(doc, null, 2)}\n`)
        await rename(tmp, file)
      })
      await reload('admin API')
      if (!healthy) throw new Error(lastError)
      return states.get(flag, originOf(flag))
    },
    onChange(listener) {
      listeners.push(listener)
    },
    async close() {
      clearTimeout(timer)
      watcher?.close()
      await queue
      evaluator?.destroy()
    },
  }
}
