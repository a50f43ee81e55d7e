// Which flag source serves the proxy. Precedence, highest first (documented in proxy/README.md):
//   1. Unleash, when UNLEASH_URL is set: the server's flags; until the first successful fetch,
//      the last state a replica fetched, kept in Redis (REDIS_URL), else no flags at all (split
//      routes 503, not ready) — never the flags file. GRADUAL_MIGRATION/MOVIES_MIGRATION_PERCENT are ignored.
//   2. GRADUAL_MIGRATION (when set) pins the movies-migration flag: true = MOVIES_MIGRATION_PERCENT,
//      false = 0 %, as the original proxy did.
//   3. The flags file (FLAGS_FILE, Unleash export format), reloaded when it changes.
// Both sources evaluate with unleash-client, so a flag means the same thing everywhere.
import type { Logger } from '../../lib/logger.ts'
import type { Redis } from '../../lib/redis.ts'
import type { ProxyConfig } from '../config.ts'
import { createFileFlagSource } from './file-flag-source.ts'
import type { FlagSource } from './flag-source.ts'
import { createLastKnownFlags } from './last-known-flags.ts'
import { createUnleashFlagSource } from './unleash-flag-source.ts'

export async function createFlagSource(config: ProxyConfig, logger: Logger, redis?: Redis): Promise<FlagSource> {
  if (config.unleashUrl) {
    if (config.gradualMigration !== undefined) {
      logger.warn('UNLEASH_URL is set: GRADUAL_MIGRATION / MOVIES_MIGRATION_PERCENT are ignored, change movies-migration in Unleash')
    }
    if (!config.unleashAdminToken) logger.info('no UNLEASH_ADMIN_TOKEN: rollouts change in Unleash only (the admin API answers 409)')
    if (!redis) logger.warn('no REDIS_URL: the last flag state is not kept; a replica starting while Unleash is down is not ready until Unleash answers')
    return createUnleashFlagSource(config, logger, { lastKnown: redis ? createLastKnownFlags({ redis, key: config.flagsLastKnownKey, logger }) : undefined })
  }
  if (config.unleashAdminToken) logger.warn('UNLEASH_ADMIN_TOKEN is ignored without UNLEASH_URL')
  return createFileFlagSource(config, logger)
}
