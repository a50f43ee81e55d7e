// Kafka variables shared by every service that publishes (the events service, and the outbox
// relay of the monolith and the movies service): same names, same meaning everywhere.
import { ConfigError, env, envGroup, parseBool, readConfigFile } from '../config.ts'

/** How a client proves who it is to the brokers, and whether the connection is TLS. */
export interface KafkaSecurity {
  sasl?: { mechanism: KafkaSaslMechanism; username: string; password: string }
  /** false = plaintext; true = TLS with the system's CAs; { ca } = TLS trusting these CAs. */
  ssl: boolean | { ca: string[] }
}

export const KAFKA_SASL_MECHANISMS = ['plain', 'scram-sha-256', 'scram-sha-512'] as const
export type KafkaSaslMechanism = (typeof KAFKA_SASL_MECHANISMS)[number]

/**
 * KAFKA_SASL_MECHANISM with KAFKA_SASL_USERNAME/KAFKA_SASL_PASSWORD, KAFKA_SSL and
 * KAFKA_SSL_CA_FILE, parsed together: a mechanism without credentials (or credentials without a
 * mechanism) is refused at start, not discovered at the first publish.
 */
export const kafkaSecurityEnv = envGroup(
  ['KAFKA_SASL_MECHANISM', 'KAFKA_SASL_USERNAME', 'KAFKA_SASL_PASSWORD', 'KAFKA_SSL', 'KAFKA_SSL_CA_FILE'],
  'SASL authentication (KAFKA_SASL_MECHANISM plain, scram-sha-256 or scram-sha-512 with KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD) and TLS (KAFKA_SSL=true; KAFKA_SSL_CA_FILE = a PEM bundle to trust instead of the system CAs) towards the brokers; unset = plaintext, no authentication',
  (v): KafkaSecurity => {
    const mechanism = v.KAFKA_SASL_MECHANISM?.trim().toLowerCase()
    const { KAFKA_SASL_USERNAME: username, KAFKA_SASL_PASSWORD: password } = v
    let sasl: KafkaSecurity['sasl']
    if (mechanism === undefined || mechanism === 'none') {
      if (username !== undefined || password !== undefined) throw new ConfigError('KAFKA_SASL_USERNAME/KAFKA_SASL_PASSWORD are set but KAFKA_SASL_MECHANISM is not (plain, scram-sha-256 or scram-sha-512)')
    } else {
      if (!(KAFKA_SASL_MECHANISMS as readonly string[]).includes(mechanism)) {
        throw new ConfigError(`KAFKA_SASL_MECHANISM must be one of none, ${KAFKA_SASL_MECHANISMS.join(', ')}, got "${v.KAFKA_SASL_MECHANISM}"`)
      }
      if (!username) throw new ConfigError(`KAFKA_SASL_USERNAME is required with KAFKA_SASL_MECHANISM=${mechanism}`)
      if (!password) throw new ConfigError(`KAFKA_SASL_PASSWORD is required with KAFKA_SASL_MECHANISM=${mechanism}`)
      sasl = { mechanism: mechanism as KafkaSaslMechanism, username, password }
    }
    const tls = v.KAFKA_SSL === undefined ? undefined : parseBool(v.KAFKA_SSL, 'KAFKA_SSL')
    if (v.KAFKA_SSL_CA_FILE !== undefined) {
      if (tls === false) throw new ConfigError('KAFKA_SSL_CA_FILE is set but KAFKA_SSL=false')
      return { sasl, ssl: { ca: [readConfigFile(v.KAFKA_SSL_CA_FILE, 'KAFKA_SSL_CA_FILE')] } }
    }
    return { sasl, ssl: tls ?? false }
  },
)

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
  kafkaSecurity: kafkaSecurityEnv,
}
