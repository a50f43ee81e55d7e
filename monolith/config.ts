import { databaseEnv, envVarNames, env, parseEnv, serverEnv } from '../lib/config.ts'
import { contractRulesEnv } from '../lib/contract/rules.ts'
import { outboxEnv } from '../lib/outbox/service.ts'

const spec = {
  port: env.port('PORT', 8080),
  ...serverEnv,
  ...databaseEnv,
  ...contractRulesEnv,
  ...outboxEnv,
}

export type MonolithConfig = ReturnType<typeof loadConfig>
export const loadConfig = (source: Record<string, string | undefined> = process.env) => parseEnv(spec, source)
export const ENV_VARS = envVarNames(spec)
