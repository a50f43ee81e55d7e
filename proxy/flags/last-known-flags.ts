// The last flag state a proxy replica fetched from Unleash, kept in Redis for every replica: a
// replica that starts while Unleash is unreachable routes by it (the writer side and retirement
// included) instead of the bundled flags file, which knows neither. unleash-client hands every
// fetched state that changed to its storage provider (this one writes it to Redis, when it differs
// from what this replica wrote last and is not too large); the state read back is given to an
// offline unleash-client as its bootstrap data (flag-evaluator.ts), so it means what Unleash's does.
import type { ClientFeaturesResponse, Unleash } from 'unleash-client'
import type { Logger } from '../../lib/logger.ts'
import type { Redis } from '../../lib/redis.ts'

/** Larger states are not kept (logged): far beyond a route map's flags, and bounded in Redis. */
export const MAX_LAST_KNOWN_BYTES = 1 << 20

/** unleash-client's storage provider contract (not exported by the package itself). */
type StorageProvider = NonNullable<ConstructorParameters<typeof Unleash>[0]['storageProvider']>

export interface LastKnownState {
  features: ClientFeaturesResponse
  /** When a replica saved it (its fetch from Unleash). */
  savedAt: string
}

export interface LastKnownFlags {
  /** unleash-client's storage provider: saves to Redis, reads nothing back (the source bootstraps itself, retrying). */
  readonly storageProvider: StorageProvider
  /** The state kept in Redis; undefined when there is none; throws when Redis cannot say. */
  load(): Promise<LastKnownState | undefined>
  readonly location: string
}

export function createLastKnownFlags(opts: { redis: Redis; key: string; logger: Logger }): LastKnownFlags {
  const { redis, key } = opts
  const logger = opts.logger.child({ component: 'last-known-flags' })
  let lastWritten: string | undefined
  let saving = Promise.resolve()

  async function save(features: ClientFeaturesResponse): Promise<void> {
    const text = JSON.stringify({ version: features.version, features: features.features, segments: features.segments ?? [] })
    if (text === lastWritten) return
    if (Buffer.byteLength(text) > MAX_LAST_KNOWN_BYTES) return void logger.warn({ key, bytes: Buffer.byteLength(text), max: MAX_LAST_KNOWN_BYTES }, 'flag state too large to keep in Redis; not saved')
    try {
      await redis.set(key, JSON.stringify({ savedAt: new Date().toISOString(), state: text }))
      lastWritten = text
      logger.debug({ key, flags: features.features.length }, 'last known flag state saved')
    } catch (err) {
      // Saved again at the next change, or by another replica; Unleash still serves this one.
      logger.warn({ key, err: (err as Error).message }, 'cannot save the last known flag state in Redis')
    }
  }

  return {
    location: `redis ${key}`,
    storageProvider: {
      // One save at a time, in the order the states were fetched.
      set: (_appName, features) => (saving = saving.then(() => save(features))),
      get: async () => undefined,
    },
    async load() {
      const raw = await redis.get(key)
      if (raw === null) return undefined
      const stored = JSON.parse(raw) as { savedAt?: unknown; state?: unknown }
      if (typeof stored.savedAt !== 'string' || typeof stored.state !== 'string') throw new Error(`${key} does not hold a flag state`)
      const features = JSON.parse(stored.state) as ClientFeaturesResponse
      if (!Array.isArray(features.features)) throw new Error(`${key} does not hold a flag state`)
      return { features, savedAt: stored.savedAt }
    },
  }
}
