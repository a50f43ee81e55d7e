// Runs once per `vitest run`: prepares the real infrastructure every suite shares and
// hands its addresses to the tests through `inject()` (see test/helpers/infra.ts).
import type { TestProject } from 'vitest/node'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { startKafka } from '../dev/kafka/launcher.ts'
import { createTemplateDatabase } from './helpers/pg-admin.ts'

declare module 'vitest' {
  export interface ProvidedContext {
    pgAdminUrl: string
    pgTemplateDb: string
    redisUrl: string
    /** Comma-separated bootstrap servers of the run's Kafka (TEST_KAFKA_BROKERS, or one started here). */
    kafkaBrokers: string
  }
}

export default async function setup(project: TestProject) {
  const pgAdminUrl = process.env.TEST_PG_ADMIN_URL ?? 'postgres://postgres:postgres@127.0.0.1:5432/postgres'
  const redisUrl = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379'
  // A real single-node Kafka for the whole run (dev/kafka/launcher.ts), unless one is given.
  const kafkaDataDir = process.env.TEST_KAFKA_BROKERS ? undefined : mkdtempSync(join(tmpdir(), 'test-kafka-'))
  // Started alongside the database work; if that fails first, the JVM still dies with this process.
  const kafkaStarting = kafkaDataDir ? startKafka({ dataDir: kafkaDataDir }) : undefined
  kafkaStarting?.catch(() => {}) // rejection is reported by the await below, not as unhandled
  const template = await createTemplateDatabase(pgAdminUrl)
  const kafka = await kafkaStarting
  project.provide('pgAdminUrl', pgAdminUrl)
  project.provide('pgTemplateDb', template.name)
  project.provide('redisUrl', redisUrl)
  project.provide('kafkaBrokers', kafka ? kafka.brokers.join(',') : process.env.TEST_KAFKA_BROKERS!)

  return async () => {
    await template.drop()
    if (kafka) {
      await kafka.stop()
      rmSync(kafkaDataDir!, { recursive: true, force: true })
    }
  }
}
