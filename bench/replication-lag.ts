// npm run bench:replication: movie replication lag between legacy-db and catalog-db, from the
// writing side's commit (movie_versions.changed_at there) to the change applied on the other
// side (movie_versions.applied_at there), both read from the databases' own clocks (one
// PostgreSQL server), at rest and under a steady write rate, in both directions. Not part of
// npm test.
//
//   BENCH_PG_ADMIN_URL  a PostgreSQL superuser URL; unset = a private server started here
//   KAFKA_BROKERS       unset = a Kafka started with dev/kafka
//   BENCH_REST_WRITES (default 50)   creates at rest, one every 200 ms
//   BENCH_RATE        (default 100)  creates per second of the loaded run
//   BENCH_LOAD_S      (default 10)   length of the loaded run
//
// The monolith and the movies service run in-process as their server.ts builds them (relays
// with LISTEN/NOTIFY wake-ups, replica consumers); everything started here is stopped at the end.
import { setTimeout as sleep } from 'node:timers/promises'
import type { FastifyInstance } from 'fastify'
import { startKafka, type RunningKafka } from '../dev/kafka/launcher.ts'
import { createEmptyDatabase, type TestDatabase } from '../dev/pg-admin.ts'
import type { Database } from '../lib/db/database.ts'
import { loadMigrationSet, migrate } from '../lib/db/migrate.ts'
import { createPgDatabase } from '../lib/db/pg-database.ts'
import { createLogger } from '../lib/logger.ts'
import { pgRelayDeps } from '../lib/outbox/pg-relay.ts'
import { buildApp as buildMonolith } from '../monolith/app.ts'
import { loadConfig as monolithConfig } from '../monolith/config.ts'
import { buildApp as buildMovies } from '../movies-service/app.ts'
import { loadConfig as moviesConfig } from '../movies-service/config.ts'
import { startPrivatePostgres, type PrivateServer } from '../test/helpers/private-servers.ts'

const REST_WRITES = Number(process.env.BENCH_REST_WRITES ?? 50)
const RATE = Number(process.env.BENCH_RATE ?? 100)
const LOAD_S = Number(process.env.BENCH_LOAD_S ?? 10)
const PREFIX = `bench-repl-${Date.now().toString(36)}.`

interface Side {
  name: string
  app: FastifyInstance
  db: Database
}

async function create(side: Side, title: string): Promise<number | undefined> {
  const res = await side.app.inject({ method: 'POST', url: '/api/movies', payload: { title, description: 'bench', rating: 5, genres: ['Bench'] } })
  return res.statusCode === 201 ? (res.json() as { id: number }).id : undefined
}

/** Lag in ms per id: applied_at on `reader` minus changed_at on `writer`; waits (bounded) until every id arrived. */
async function lags(writer: Side, reader: Side, ids: number[]): Promise<number[]> {
  const deadline = Date.now() + 120_000
  for (;;) {
    const { rows } = await reader.db.query<{ n: number }>('SELECT count(*)::int AS n FROM movie_versions WHERE movie_id = ANY($1::int[]) AND applied_at IS NOT NULL', [ids])
    if (rows[0].n >= ids.length || Date.now() > deadline) break
    await sleep(100)
  }
  const epoch = (db: Database, column: string) =>
    db.query<{ movie_id: number; at: number }>(`SELECT movie_id, EXTRACT(EPOCH FROM ${column}) * 1000 AS at FROM movie_versions WHERE movie_id = ANY($1::int[])`, [ids])
  const [written, applied] = await Promise.all([epoch(writer.db, 'changed_at'), epoch(reader.db, 'applied_at')])
  const at = new Map(applied.rows.map((r) => [r.movie_id, Number(r.at)]))
  return written.rows.flatMap((r) => (at.has(r.movie_id) ? [at.get(r.movie_id)! - Number(r.at)] : []))
}

function report(label: string, sent: number, ms: number[]): void {
  const d = [...ms].sort((a, b) => a - b)
  const q = (p: number) => (d.length ? d[Math.min(d.length - 1, Math.floor(p * d.length))]!.toFixed(1) : 'n/a')
  console.log(`${label}: ${d.length}/${sent} applied; commit-to-applied ms p50 ${q(0.5)}, p95 ${q(0.95)}, p99 ${q(0.99)}, max ${d.length ? d.at(-1)!.toFixed(1) : 'n/a'}`)
}

async function atRest(writer: Side, reader: Side): Promise<void> {
  const ids: number[] = []
  for (let i = 0; i < REST_WRITES; i++) {
    const id = await create(writer, `rest-${writer.name}-${i}`)
    if (id !== undefined) ids.push(id)
    await sleep(200)
  }
  report(`${writer.name} -> ${reader.name} at rest (${REST_WRITES} creates, one per 200 ms)`, REST_WRITES, await lags(writer, reader, ids))
}

async function underLoad(writer: Side, reader: Side): Promise<void> {
  const pending: Array<Promise<number | undefined>> = []
  const started = performance.now()
  const total = RATE * LOAD_S
  for (let i = 0; i < total; i++) {
    const wait = started + (i * 1000) / RATE - performance.now()
    if (wait > 0) await sleep(wait)
    pending.push(create(writer, `load-${writer.name}-${i}`))
  }
  const ids = (await Promise.all(pending)).filter((id): id is number => id !== undefined)
  const achieved = (total / ((performance.now() - started) / 1000)).toFixed(0)
  report(`${writer.name} -> ${reader.name} under load (${total} creates at ${RATE}/s for ${LOAD_S} s, achieved ${achieved}/s, ${total - ids.length} not 201)`, total, await lags(writer, reader, ids))
}

let pgServer: PrivateServer | undefined
let kafka: RunningKafka | undefined
const databases: TestDatabase[] = []
const pools: Database[] = []
const apps: FastifyInstance[] = []
try {
  const adminUrl = process.env.BENCH_PG_ADMIN_URL ?? (pgServer = await startPrivatePostgres()).url
  const brokers = process.env.KAFKA_BROKERS?.split(',') ?? (kafka = await startKafka()).brokers
  const logger = createLogger({ level: 'warn', name: 'bench' })
  const env = { KAFKA_BROKERS: brokers.join(','), KAFKA_TOPIC_PREFIX: PREFIX, LOG_LEVEL: 'warn', KAFKA_LOG_LEVEL: 'error' }
  const open = async (set: 'legacy' | 'catalog') => {
    const database = await createEmptyDatabase(adminUrl, `bench_${set}`)
    databases.push(database)
    const db = createPgDatabase({ connectionString: database.url, max: 20 })
    pools.push(db)
    await migrate(db, await loadMigrationSet(set))
    return { database, db }
  }
  const [legacyDb, catalogDb] = [await open('legacy'), await open('catalog')]
  const mConfig = monolithConfig(env)
  const monolith = buildMonolith(mConfig, { db: legacyDb.db, logger, outbox: pgRelayDeps({ ...mConfig, databaseUrl: legacyDb.database.url }, logger) })
  const cConfig = moviesConfig(env)
  const movies = buildMovies(cConfig, { db: catalogDb.db, logger, outbox: pgRelayDeps({ ...cConfig, databaseUrl: catalogDb.database.url }, logger) })
  apps.push(monolith, movies)
  await Promise.all([monolith.ready(), movies.ready()])
  const legacy: Side = { name: 'legacy', app: monolith, db: legacyDb.db }
  const catalog: Side = { name: 'catalog', app: movies, db: catalogDb.db }
  // Warm-up: the seed's movies reach catalog-db (topics created, consumers joined).
  const warm = Date.now()
  while ((await catalog.db.query<{ n: number }>('SELECT count(*)::int AS n FROM movies')).rows[0].n < 5) {
    if (Date.now() - warm > 120_000) throw new Error('catalog-db did not receive the seed within 120 s')
    await sleep(100)
  }
  console.log(`bootstrap: the 5 seed movies on catalog-db ${Date.now() - warm} ms after both services were ready`)
  await sleep(2_000)

  await atRest(legacy, catalog)
  await underLoad(legacy, catalog)
  // Writes move to the movies service (one writer at a time): the stores hand them over.
  await sleep(2_000)
  const released = await monolith.inject({ method: 'POST', url: '/internal/writer/release', payload: {} })
  if (released.statusCode !== 200) throw new Error(`release: ${released.statusCode} ${released.body}`)
  const handover = Date.now()
  for (;;) {
    const authority = (await movies.inject({ url: '/internal/writer' })).json<{ writer: boolean; catchingUp: boolean }>()
    if (authority.writer && !authority.catchingUp) break
    if (Date.now() - handover > 60_000) throw new Error('the movies service did not take the writes within 60 s')
    await sleep(50)
  }
  console.log(`handover: the movies service took the writes ${Date.now() - handover} ms after the monolith released them`)
  await atRest(catalog, legacy)
  await underLoad(catalog, legacy)
} finally {
  for (const app of apps) await app.close().catch(() => {})
  for (const db of pools) await db.close().catch(() => {})
  for (const d of databases) await d.drop().catch(() => {})
  await kafka?.stop()
  await pgServer?.stop()
}
