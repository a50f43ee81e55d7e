// Creates the service's topics when they are missing, once per process (retried by the
// next caller after a failure). Existing topics are left as they are.
import type { Kafka } from 'kafkajs'
import { eventTopics } from '../events/events.ts'
import type { Logger } from '../logger.ts'

export interface TopicSettings {
  names: string[]
  partitions: number
  /** -1 = the broker's default.replication.factor. */
  replicationFactor: number
  timeoutMs: number
}

export interface Topics {
  names: string[]
  /** Resolves once every topic exists with a leader; concurrent callers share one attempt. */
  ensure(): Promise<void>
}

export function createTopics(kafka: Kafka, settings: TopicSettings, logger: Logger): Topics {
  let done = false
  let attempt: Promise<void> | undefined

  const create = async () => {
    const admin = kafka.admin()
    try {
      await admin.connect()
      const existing = new Set(await admin.listTopics())
      const missing = settings.names.filter((t) => !existing.has(t))
      if (missing.length > 0) {
        await admin.createTopics({
          topics: missing.map((topic) => ({ topic, numPartitions: settings.partitions, replicationFactor: settings.replicationFactor })),
          waitForLeaders: true,
          timeout: settings.timeoutMs,
        })
        logger.info({ topics: missing, partitions: settings.partitions }, 'created kafka topics')
      }
      done = true
    } finally {
      await admin.disconnect().catch(() => {})
    }
  }

  return {
    names: settings.names,
    ensure() {
      if (done) return Promise.resolve()
      attempt ??= create().finally(() => (attempt = undefined))
      return attempt
    },
  }
}

/** The event topics (every kind, KAFKA_TOPIC_PREFIX applied) from a service's kafkaEnv settings. */
export function eventTopicsFromConfig(
  kafka: Kafka,
  config: { topicPrefix?: string; topicPartitions: number; topicReplicationFactor: number; sendTimeoutMs: number },
  logger: Logger,
): Topics {
  return createTopics(
    kafka,
    {
      names: eventTopics(config.topicPrefix ?? ''),
      partitions: config.topicPartitions,
      replicationFactor: config.topicReplicationFactor,
      timeoutMs: Math.max(config.sendTimeoutMs, 5_000),
    },
    logger,
  )
}
