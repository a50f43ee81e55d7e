// The kafkajs client of the service, logging through pino instead of console.
import { Kafka, logLevel, type LogEntry, type SASLOptions } from 'kafkajs'
import type { Logger } from '../logger.ts'
import type { KafkaSecurity } from './config.ts'

const LEVELS = { nothing: logLevel.NOTHING, error: logLevel.ERROR, warn: logLevel.WARN, info: logLevel.INFO, debug: logLevel.DEBUG } as const

// We limit the idempotent producer's retries on purpose (see publisher.ts: a failed producer
// is replaced, never reused), so kafkajs's warning about it is noise.
const EXPECTED = /Limiting retries for the idempotent producer/

/**
 * A group coordinator not ready yet: the normal state of a broker that just started (the
 * offsets topic loads, or is being created), retried by kafkajs and gone within seconds.
 */
/** kafkajs's words for one failed connect attempt (Connection, BrokerPool), retried by kafkajs or the caller. */
const CONNECT_ATTEMPT = /^(Connection error|Connection timeout|Failed to connect to seed broker)/

export const COORDINATOR_STARTING = /coordinator is (loading|not available)|not the correct coordinator/i

export interface KafkaClientOptions {
  brokers: string[]
  clientId: string
  connectionTimeoutMs: number
  /** Bound on one broker request; the publisher also races every send against its own timer. */
  requestTimeoutMs: number
  logLevel: keyof typeof LEVELS
  /** SASL and TLS (lib/kafka/config.ts, kafkaSecurityEnv); plaintext without authentication when absent. */
  security?: KafkaSecurity
}

export function createKafkaClient(options: KafkaClientOptions, logger: Logger): Kafka {
  const log = logger.child({ component: 'kafkajs' })
  return new Kafka({
    clientId: options.clientId,
    brokers: options.brokers,
    connectionTimeout: options.connectionTimeoutMs,
    requestTimeout: options.requestTimeoutMs,
    ssl: options.security?.ssl || undefined,
    // One object per mechanism in kafkajs's types; ours is checked against the same list.
    sasl: options.security?.sasl as SASLOptions | undefined,
    // Admin and consumer calls: a few quick retries, then the caller's own retry loop takes over.
    retry: { retries: 3, initialRetryTime: 200, maxRetryTime: 2_000 },
    logLevel: LEVELS[options.logLevel],
    logCreator: () => (entry: LogEntry) => {
      const { message, timestamp: _t, logger: _l, ...fields } = entry.log
      const line = { namespace: entry.namespace, ...fields }
      if (EXPECTED.test(message)) log.debug(line, message)
      // A broker's error code on one request ("Response GroupCoordinator": coordinator not
      // available / loading while a broker starts) is retried by kafkajs; only the outcome matters.
      else if (entry.namespace === 'Connection' && message.startsWith('Response ')) log.info(line, message)
      // The consumer's crash-and-restart on such an error: consumer.ts logs each restart itself.
      else if (entry.namespace === 'Consumer' && (/^Restarting the consumer/.test(message) || COORDINATOR_STARTING.test(`${message} ${entry.log.error ?? ''}`))) log.info(line, message)
      // kafkajs reports every failed attempt at ERROR; the service logs the outcome of each
      // publish and consume itself (at warn). A refused or timed-out connect (a broker not up
      // yet, or restarting) is one such attempt: info, or a start beside Kafka floods the log.
      else if (CONNECT_ATTEMPT.test(message)) log.info(line, message)
      else if (entry.level === logLevel.ERROR || entry.level === logLevel.WARN) log.warn(line, message)
      else if (entry.level === logLevel.INFO) log.info(line, message)
      else log.debug(line, message)
    },
  })
}

/** The client of a service, from its kafkaEnv settings (lib/kafka/config.ts) and its brokers. */
export function kafkaClientFromConfig(
  config: { kafkaBrokers: string[]; connectionTimeoutMs: number; sendTimeoutMs: number; kafkaLogLevel: KafkaClientOptions['logLevel']; kafkaSecurity?: KafkaSecurity },
  clientId: string,
  logger: Logger,
): Kafka {
  return createKafkaClient(
    {
      brokers: config.kafkaBrokers,
      clientId,
      connectionTimeoutMs: config.connectionTimeoutMs,
      requestTimeoutMs: config.sendTimeoutMs,
      logLevel: config.kafkaLogLevel,
      security: config.kafkaSecurity,
    },
    logger,
  )
}
