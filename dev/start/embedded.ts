// The infrastructure of `npm start`: each piece is the real one when its variable is set,
// otherwise an embedded stand-in. Every piece knows how to stop itself.
import { copyFileSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Database } from '../../lib/db/database.ts'
import { loadMigrationSet, migrate, type MigrationSet } from '../../lib/db/migrate.ts'
import { createPgDatabase } from '../../lib/db/pg-database.ts'
import { createPgliteDatabase } from '../../lib/db/pglite-database.ts'
import type { Logger } from '../../lib/logger.ts'
import { createRedis, type Redis } from '../../lib/redis.ts'
import { startKafka } from '../kafka/launcher.ts'
import type { StartConfig } from './config.ts'
import { describeKafkaStep, type Progress } from './progress.ts'

export interface Piece<T> {
  value: T
  /** What the banner says: "embedded PGlite (in memory)", "real (postgres://db:5432/...)". */
  description: string
  embedded: boolean
  stop(): Promise<void>
}

const redact = (url: string) => url.replace(/\/\/([^:@/]+):[^@/]+@/, '//$1:***@')

/**
 * One of the two stores: legacy-db (the monolith's; DB_CONNECTION_STRING, else PGlite) or
 * catalog-db (the movies service's own; CATALOG_DB_CONNECTION_STRING, else a second PGlite),
 * migrated with its own schema. `label` prefixes the progress lines.
 */
export async function openDatabase(config: StartConfig, progress: Progress, set: MigrationSet = 'legacy'): Promise<Piece<Database>> {
  const label = set === 'legacy' ? 'PostgreSQL' : 'catalog-db'
  const url = set === 'legacy' ? config.databaseUrl : config.catalogDatabaseUrl
  const migrations = await loadMigrationSet(set)
  if (url) {
    const description = `real PostgreSQL (${redact(url)})`
    progress(`${label}: migrating ${description}…`)
    const db = createPgDatabase({ connectionString: url })
    await migrate(db, migrations)
    progress(`${label}: ready and migrated`)
    return { value: db, embedded: false, description, stop: () => db.close() }
  }
  const dataDir = config.pgliteDataDir && (set === 'legacy' ? config.pgliteDataDir : `${config.pgliteDataDir}-catalog`)
  const where = dataDir ? `in ${dataDir}` : 'in memory'
  const description = `embedded PGlite (${where})`
  progress(`${label}: starting ${description} and migrating…`)
  const db = await createPgliteDatabase({ dataDir })
  await migrate(db, migrations)
  progress(`${label}: ready and migrated`)
  return { value: db, embedded: true, description, stop: () => db.close() }
}

export async function openKafka(config: StartConfig, logger: Logger, progress: Progress): Promise<Piece<string[]>> {
  if (config.kafkaBrokers) {
    const brokers = config.kafkaBrokers.split(',').map((b) => b.trim()).filter(Boolean)
    progress(`Kafka: real brokers ${brokers.join(',')} (KAFKA_BROKERS)`)
    return { value: brokers, embedded: false, description: `real Kafka (${brokers.join(',')})`, stop: async () => {} }
  }
  const temporary = !config.kafkaDataDir
  const dataDir = config.kafkaDataDir ?? mkdtempSync(join(tmpdir(), 'cinemaabyss-kafka-'))
  const kafka = await startKafka({
    port: config.ports.kafka,
    dataDir,
    onExit: (code, signal) => logger.error({ code, signal }, 'embedded Kafka exited unexpectedly'),
    onProgress: (event) => progress(describeKafkaStep(event)),
  })
  return {
    value: kafka.brokers,
    embedded: true,
    description: `embedded Kafka ${kafka.brokers.join(',')} (data ${dataDir}${temporary ? ', removed at exit' : ''}; log ${kafka.logFile})`,
    stop: async () => {
      await kafka.stop()
      if (temporary) rmSync(dataDir, { recursive: true, force: true })
    },
  }
}

/** Redis clients made on demand, one per service (each with its own key prefix), all closed by stop(). */
export type RedisFactory = (opts?: { keyPrefix?: string; commandTimeoutMs?: number }) => Redis | undefined

export function openRedis(config: StartConfig, logger: Logger): Piece<RedisFactory> {
  const { redisUrl } = config
  if (!redisUrl) return { value: () => undefined, embedded: true, description: 'none: no movie cache, rate limits in memory', stop: async () => {} }
  const clients: Redis[] = []
  return {
    value: (opts) => {
      const redis = createRedis(redisUrl, logger, opts)
      clients.push(redis)
      return redis
    },
    embedded: false,
    description: `real Redis (${redact(redisUrl)})`,
    stop: async () => clients.forEach((c) => c.disconnect()),
  }
}

/** The flags file the proxy follows: FLAGS_FILE, or a scratch copy of flags/flags.json so the admin API never edits the repository. */
export function flagsFile(config: StartConfig, repoRoot: string): Piece<string> {
  if (config.flagsFile) return { value: config.flagsFile, embedded: false, description: config.flagsFile, stop: async () => {} }
  const dir = mkdtempSync(join(tmpdir(), 'cinemaabyss-flags-'))
  const file = join(dir, 'flags.json')
  copyFileSync(join(repoRoot, 'flags', 'flags.json'), file)
  return { value: file, embedded: true, description: `${file} (a copy of flags/flags.json)`, stop: async () => rmSync(dir, { recursive: true, force: true }) }
}
