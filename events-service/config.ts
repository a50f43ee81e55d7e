import { env, envVarNames, parseEnv, serverEnv } from '../lib/config.ts'
import { kafkaEnv } from '../lib/kafka/config.ts'

const spec = {
  port: env.port('PORT', 8082),
  ...serverEnv,
  kafkaBrokers: env.list('KAFKA_BROKERS', ['localhost:9092'], 'comma-separated Kafka bootstrap brokers, e.g. kafka:9092'),
  kafkaClientId: env.string('KAFKA_CLIENT_ID', 'events-service', 'client id the broker sees in its logs and quotas'),
  consumerGroup: env.string('KAFKA_CONSUMER_GROUP', 'events-service', 'consumer group of the service\'s own consumer'),
  consumerEnabled: env.bool('KAFKA_CONSUMER_ENABLED', true, 'run the service\'s own consumer (false = publish only)'),
  ...kafkaEnv,
  sessionTimeoutMs: env.int('KAFKA_SESSION_TIMEOUT_MS', 10_000, {
    min: 1_000,
    description: 'consumer group session timeout: how soon a vanished member (e.g. after a broker restart) is replaced',
  }),
  handlerAttempts: env.int('EVENT_HANDLER_ATTEMPTS', 3, {
    min: 1,
    max: 100,
    description: 'attempts to process one consumed event before it is logged as failed and skipped',
  }),
}

export type EventsServiceConfig = ReturnType<typeof loadConfig>
export const loadConfig = (source: Record<string, string | undefined> = process.env) => parseEnv(spec, source)
export const ENV_VARS = envVarNames(spec)
