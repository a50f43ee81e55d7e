import { databaseEnv, env, envVarNames, parseEnv, serverEnv } from '../lib/config.ts'
import { contractRulesEnv } from '../lib/contract/rules.ts'
import { outboxEnv } from '../lib/outbox/service.ts'

const spec = {
  port: env.port('PORT', 8081),
  ...serverEnv,
  ...databaseEnv,
  ...contractRulesEnv,
  ...outboxEnv,
  redisUrl: env.optionalUrl('REDIS_URL', 'Redis for the movie read cache; unset = no cache', ['redis', 'rediss']),
  cacheTtlSeconds: env.int('CACHE_TTL_SECONDS', 60, { min: 1, description: 'how long a cached movie read lives' }),
  cacheTimeoutMs: env.int('CACHE_TIMEOUT_MS', 200, { min: 1, description: 'bound on every Redis command; slower = read from PostgreSQL' }),
  cacheKeyPrefix: env.string('CACHE_KEY_PREFIX', 'cinemaabyss:', 'prefix of every cache key'),
}

export type MoviesServiceConfig = ReturnType<typeof loadConfig>
export const loadConfig = (source: Record<string, string | undefined> = process.env) => parseEnv(spec, source)
export const ENV_VARS = envVarNames(spec)
