// Runs once per `vitest run`: prepares the real infrastructure every suite shares and
// hands its addresses to the tests through `inject()` (see test/helpers/infra.ts).
// PostgreSQL, Redis and Kafka are the ones named by TEST_PG_ADMIN_URL, TEST_REDIS_URL and
// TEST_KAFKA_BROKERS, or private ones started here on free ports and stopped at the end.
import type { TestProject } from 'vitest/node'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { startKafka } from '../dev/kafka/launcher.ts'
import { createTemplateDatabase } from '../dev/pg-admin.ts'
import { checkPrerequisites } from './helpers/prerequisites.ts'
import { startPrivatePostgres, startPrivateRedis, type PrivateServer } from './helpers/private-servers.ts'

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
  checkPrerequisites() // before anything starts: each missing one named with its install command
  const started: PrivateServer[] = []
  const stopStarted = () => Promise.all(started.splice(0).map((s) => s.stop()))
  const given = (url: string | undefined, start: () => Promise<PrivateServer>) =>
    url ? Promise.resolve(url) : start().then((server) => (started.push(server), server.url))
  // A real single-node Kafka for the whole run (dev/kafka/launcher.ts), unless one is given.
  const kafkaDataDir = process.env.TEST_KAFKA_BROKERS ? undefined : mkdtempSync(join(tmpdir(), 'test-kafka-'))
  // Started alongside the databases; if those fail first, the JVM still dies with this process.
  const kafkaStarting = kafkaDataDir ? startKafka({ dataDir: kafkaDataDir }) : undefined
  kafkaStarting?.catch(() => {}) // rejection is reported by the await below, not as unhandled
  let template: Awaited<ReturnType<typeof createTemplateDatabase>>
  let redisUrl: string
  let kafka: Awaited<typeof kafkaStarting>
  try {
    const pgAdminUrl = given(process.env.TEST_PG_ADMIN_URL, startPrivatePostgres)
    const redis = given(process.env.TEST_REDIS_URL, startPrivateRedis)
    await Promise.allSettled([pgAdminUrl, redis]) // both started (or failed) before either error is thrown
    project.provide('pgAdminUrl', await pgAdminUrl)
    redisUrl = await redis
    template = await createTemplateDatabase(await pgAdminUrl)
    kafka = await kafkaStarting
  } catch (err) {
    await stopStarted()
    throw err
  }
  project.provide('pgTemplateDb', template.name)
  project.provide('redisUrl', redisUrl)
  project.provide('kafkaBrokers', kafka ? kafka.brokers.join(',') : process.env.TEST_KAFKA_BROKERS!)

  return async () => {
    await template.drop()
    if (kafka) {
      await kafka.stop()
      rmSync(kafkaDataDir!, { recursive: true, force: true })
    }
    await stopStarted()
  }
}
