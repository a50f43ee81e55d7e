// Two stores of their own for the replication tests: legacy-db and catalog-db, each a database
// owned by a login role of its own that cannot connect to the other's (as in compose and the
// chart), migrated with its own schema.
import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { startKafka, type RunningKafka } from '../../dev/kafka/launcher.ts'
import { isAlive } from '../kafka/helpers.ts'
import { eventually } from '../helpers/poll.ts'
import { admin } from '../../dev/pg-admin.ts'
import { loadMigrationSet, migrate, type MigrationSet } from '../../lib/db/migrate.ts'
import { createPgDatabase } from '../../lib/db/pg-database.ts'

export interface OwnedDatabase {
  name: string
  role: string
  /** Connects as the owner role. */
  url: string
  drop(): Promise<void>
}

/** A new database owned by a new role, closed to every other role (PUBLIC's CONNECT revoked), migrated with `set`. */
export async function ownedDatabase(adminUrl: string, set: MigrationSet): Promise<OwnedDatabase> {
  const suffix = `${Date.now().toString(36)}_${randomBytes(3).toString('hex')}`
  const name = `${set}_db_${suffix}`
  const role = `${set}_user_${suffix}`
  const password = randomBytes(12).toString('hex')
  await admin(adminUrl, async (c) => {
    await c.query(`CREATE ROLE "${role}" LOGIN PASSWORD '${password}'`)
    await c.query(`CREATE DATABASE "${name}" OWNER "${role}"`)
    await c.query(`REVOKE ALL ON DATABASE "${name}" FROM PUBLIC`)
  })
  const url = new URL(adminUrl)
  url.username = role
  url.password = password
  url.pathname = `/${name}`
  const db = createPgDatabase({ connectionString: url.toString(), max: 1 })
  try {
    await migrate(db, await loadMigrationSet(set))
  } finally {
    await db.close()
  }
  return {
    name,
    role,
    url: url.toString(),
    drop: () =>
      admin(adminUrl, async (c) => {
        await c.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`)
        await c.query(`DROP ROLE IF EXISTS "${role}"`)
      }),
  }
}

/** The URL of `target` with the credentials of `other`: what must never open it. */
export function withCredentialsOf(target: OwnedDatabase, other: OwnedDatabase): string {
  const url = new URL(target.url)
  const theirs = new URL(other.url)
  url.username = theirs.username
  url.password = theirs.password
  return url.toString()
}

/** Kills the test's Kafka broker (SIGKILL, by its pid) and waits until the JVM is gone. */
export async function killKafka(kafka: RunningKafka): Promise<void> {
  const pid = kafka.pid
  process.kill(pid, 'SIGKILL')
  await eventually('the Kafka JVM is gone', () => !isAlive(pid), 20_000)
}

/** The two stores of the catalog's tests and the Kafka between them, all of the test file's own. */
export interface TwoStores {
  kafka: RunningKafka
  legacyDb: OwnedDatabase
  catalogDb: OwnedDatabase
  /** What the monolith and the movies service are started with (besides their database). */
  serviceEnv(): Record<string, string>
  /** Stops Kafka and drops both databases (stop the services first). */
  close(): Promise<void>
}

export async function startTwoStores(adminUrl: string): Promise<TwoStores> {
  const kafkaDir = mkdtempSync(join(tmpdir(), 'test-two-stores-kafka-'))
  const [kafka, legacyDb, catalogDb] = await Promise.all([startKafka({ dataDir: kafkaDir }), ownedDatabase(adminUrl, 'legacy'), ownedDatabase(adminUrl, 'catalog')])
  return {
    kafka,
    legacyDb,
    catalogDb,
    serviceEnv: () => ({ KAFKA_BROKERS: kafka.brokers.join(','), KAFKA_LOG_LEVEL: 'nothing', KAFKA_TOPIC_PARTITIONS: '3', LOG_LEVEL: 'warn' }),
    async close() {
      await kafka.stop()
      rmSync(kafkaDir, { recursive: true, force: true })
      await legacyDb.drop()
      await catalogDb.drop()
    },
  }
}

/**
 * A proxy replica's environment in front of the two stores' services, its Redis keys all under
 * `run` (test files share one Redis): add the flag source and what the test tunes.
 */
export function storesProxyEnv(run: string, services: { monolith: string; movies: string }, redisUrl: string, adminToken: string): Record<string, string> {
  return {
    MONOLITH_URL: services.monolith,
    MOVIES_SERVICE_URL: services.movies,
    EVENTS_SERVICE_URL: 'http://127.0.0.1:9',
    ADMIN_TOKEN: adminToken,
    REDIS_URL: redisUrl,
    RATE_LIMIT_MAX: '0',
    RATE_LIMIT_KEY_PREFIX: `${run}:rl:`,
    LEDGER_REDIS_KEY: `${run}:ledger`,
    RAMP_KEY_PREFIX: `${run}:ramp:`,
    READ_YOUR_WRITES_KEY_PREFIX: `${run}:ryw:`,
    FLAGS_LAST_KNOWN_KEY: `${run}:flags`,
    LOG_LEVEL: 'warn',
  }
}
