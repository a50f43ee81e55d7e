// Kafka variables shared by every service that publishes (the events service, and the outbox
// relay of the monolith and the movies service): same names, same meaning everywhere.
import { env } from '../config.ts'

export const kafkaEnv = {
  topicPrefix: env.optionalString('KAFKA_TOPIC_PREFIX', 'prepended to every topic name, e.g. "staging." (default none)'),
  topicPartitions: env.int('KAFKA_TOPIC_PARTITIONS', 3, { min: 1, max: 10_000, description: 'partitions of a topic the service creates at start' }),
  topicReplicationFactor: env.int('KAFKA_TOPIC_REPLICATION_FACTOR', -1, {
    min: -1,
    max: 100,
    description: 'replication factor of a topic the service creates; -1 = the broker default',
  }),
  sendTimeoutMs: env.int('KAFKA_SEND_TIMEOUT_MS', 2_000, {
    min: 100,
    description: 'bound on one publish waiting for the broker ack (also the kafkajs request timeout)',
  }),
  connectionTimeoutMs: env.int('KAFKA_CONNECTION_TIMEOUT_MS', 1_000, { min: 100, description: 'TCP connect timeout to a broker' }),
  kafkaLogLevel: env.oneOf('KAFKA_LOG_LEVEL', ['nothing', 'error', 'warn', 'info', 'debug'], 'warn', 'level of the kafkajs client\'s own log lines'),
}
