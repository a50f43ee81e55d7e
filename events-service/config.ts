import { env, envVarNames, parseEnv, serverEnv } from '../lib/config.ts'

const spec = {
  port: env.port('PORT', 8082),
  ...serverEnv,
  kafkaBrokers: env.list('KAFKA_BROKERS', ['localhost:9092'], 'comma-separated Kafka bootstrap brokers, e.g. kafka:9092'),
  kafkaClientId: env.string('KAFKA_CLIENT_ID', 'events-service', 'client id the broker sees in its logs and quotas'),
  consumerGroup: env.string('KAFKA_CONSUMER_GROUP', 'events-service', 'consumer group of the service\'s own consumer'),
  consumerEnabled: env.bool('KAFKA_CONSUMER_ENABLED', true, 'run the service\'s own consumer (false = publish only)'),
  topicPrefix: env.optionalString('KAFKA_TOPIC_PREFIX', 'prepended to every topic name, e.g. "staging." (default none)'),
  topicPartitions: env.int('KAFKA_TOPIC_PARTITIONS', 3, { min: 1, max: 10_000, description: 'partitions of a topic the service creates at start' }),
  topicReplicationFactor: env.int('KAFKA_TOPIC_REPLICATION_FACTOR', -1, {
    min: -1,
    max: 100,
    description: 'replication factor of a topic the service creates; -1 = the broker default',
  }),
  sendTimeoutMs: env.int('KAFKA_SEND_TIMEOUT_MS', 2_000, {
    min: 100,
    description: 'bound on one POST waiting for the broker ack; beyond it the POST answers 503',
  }),
  connectionTimeoutMs: env.int('KAFKA_CONNECTION_TIMEOUT_MS', 1_000, { min: 100, description: 'TCP connect timeout to a broker' }),
  sessionTimeoutMs: env.int('KAFKA_SESSION_TIMEOUT_MS', 10_000, {
    min: 1_000,
    description: 'consumer group session timeout: how soon a vanished member (e.g. after a broker restart) is replaced',
  }),
  handlerAttempts: env.int('EVENT_HANDLER_ATTEMPTS', 3, {
    min: 1,
    max: 100,
    description: 'attempts to process one consumed event before it is logged as failed and skipped',
  }),
  kafkaLogLevel: env.oneOf('KAFKA_LOG_LEVEL', ['nothing', 'error', 'warn', 'info', 'debug'], 'warn', 'level of the kafkajs client\'s own log lines'),
}

export type EventsServiceConfig = ReturnType<typeof loadConfig>
export const loadConfig = (source: Record<string, string | undefined> = process.env) => parseEnv(spec, source)
export const ENV_VARS = envVarNames(spec)
