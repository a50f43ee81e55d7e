// Creates the service's topics when they are missing, once per process (retried by the
// next caller after a failure). Existing topics are left as they are.
import { setTimeout as sleep } from 'node:timers/promises'
import type { Admin, ITopicConfig, Kafka } from 'kafkajs'
import { eventTopics } from '../events/events.ts'
import type { Logger } from '../logger.ts'

/**
 * Creates topics and resolves once every partition has a leader that serves it. kafkajs's own
 * waitForLeaders gives up when the broker answers UNKNOWN_TOPIC_OR_PARTITION, which a KRaft
 * broker does for a moment after the creation; and a leader named in the metadata may still
 * answer NOT_LEADER_OR_FOLLOWER for a while (a produce then fails). So: every retriable
 * metadata error is retried, then the partitions' offsets are asked of their leaders (served
 * only by an active leader), until `timeoutMs`. Resolves to what createTopics said: false when
 * they all existed already.
 */
export async function createTopicsWithLeaders(admin: Admin, topics: ITopicConfig[], timeoutMs = 30_000): Promise<boolean> {
  const created = await admin.createTopics({ topics, waitForLeaders: false, timeout: timeoutMs })
  const names = topics.map((t) => t.topic)
  const deadline = Date.now() + timeoutMs
  let lastError: Error | undefined
  for (;;) {
    try {
      const { topics: found } = await admin.fetchTopicMetadata({ topics: names })
      const named = topics.every((want) => {
        const partitions = found.find((t) => t.name === want.topic)?.partitions ?? []
        return partitions.length >= (want.numPartitions ?? 1) && partitions.every((p) => p.leader >= 0)
      })
      if (named && (await leadersServe(admin, names))) return created
    } catch (error) {
      if (!(error as { retriable?: boolean }).retriable) throw error
      lastError = error as Error
    }
    if (Date.now() > deadline) throw new Error(`kafka topics ${names.join(', ')} have no serving leader after ${timeoutMs} ms${lastError ? ` (${lastError.message})` : ''}`)
    await sleep(100)
  }
}

/** Whether every partition's leader answers for it (ListOffsets); a refusal means not yet. */
async function leadersServe(admin: Admin, names: string[]): Promise<boolean> {
  try {
    for (const name of names) await admin.fetchTopicOffsets(name)
    return true
  } catch {
    // kafkajs wraps NOT_LEADER_OR_FOLLOWER in its non-retriable "retries exceeded" after its own
    // retries: the caller's loop (bounded by its deadline) asks again.
    return false
  }
}

export interface TopicSettings {
  names: string[]
  partitions: number
  /** -1 = the broker's default.replication.factor. */
  replicationFactor: number
  timeoutMs: number
  /** Topic-level settings of some topics, e.g. cleanup.policy=compact. */
  configEntries?: Record<string, Array<{ name: string; value: string }>>
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
        await createTopicsWithLeaders(
          admin,
          missing.map((topic) => ({
            topic,
            numPartitions: settings.partitions,
            replicationFactor: settings.replicationFactor,
            ...(settings.configEntries?.[topic] ? { configEntries: settings.configEntries[topic] } : {}),
          })),
          settings.timeoutMs,
        )
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

type TopicConfig = { topicPrefix?: string; topicPartitions: number; topicReplicationFactor: number; sendTimeoutMs: number }

/** The event topics (every kind, KAFKA_TOPIC_PREFIX applied) from a service's kafkaEnv settings. */
export function eventTopicsFromConfig(kafka: Kafka, config: TopicConfig, logger: Logger): Topics {
  return topicsFromConfig(kafka, config, logger, eventTopics(config.topicPrefix ?? ''))
}

/**
 * Topics (names with KAFKA_TOPIC_PREFIX applied) created with the service's kafkaEnv settings;
 * `compacted` ones keep the latest message of each key (cleanup.policy=compact).
 */
export function topicsFromConfig(kafka: Kafka, config: TopicConfig, logger: Logger, names: string[], compacted: string[] = []): Topics {
  return createTopics(
    kafka,
    {
      names,
      partitions: config.topicPartitions,
      replicationFactor: config.topicReplicationFactor,
      timeoutMs: Math.max(config.sendTimeoutMs, 5_000),
      configEntries: Object.fromEntries(compacted.map((t) => [t, [{ name: 'cleanup.policy', value: 'compact' }]])),
    },
    logger,
  )
}
