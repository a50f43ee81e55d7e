import { databaseEnv, envVarNames, env, parseEnv, serverEnv } from '../lib/config.ts'
import { contractRulesEnv } from '../lib/contract/rules.ts'
import { outboxEnv } from '../lib/outbox/service.ts'

const spec = {
  port: env.port('PORT', 8080),
  ...serverEnv,
  ...databaseEnv,
  ...contractRulesEnv,
  ...outboxEnv,
  disabledDomains: env.subsetOf('DISABLED_DOMAINS', ['movies'], 'domains turned off for good once a service owns them (movies: /api/movies answers 410, its replication stops)'),
}

export type MonolithConfig = ReturnType<typeof loadConfig>
export const loadConfig = (source: Record<string, string | undefined> = process.env) => parseEnv(spec, source)
export const ENV_VARS = envVarNames(spec)
