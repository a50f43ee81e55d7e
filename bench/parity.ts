// npm run bench:parity: the parity check of two stores of 1,000,000 movies each (with genres),
// as the proxy runs it (proxy/rollout/parity/parity-check.ts) against the stores' real parity
// endpoint (lib/parity/parity-routes.ts over lib/parity/sql-parity.ts), one bucket differing.
// Reports the time of the check and of its calls, the peak RSS of this process (both endpoints
// and the checker run in it) and what PostgreSQL spilled to disk (pg_stat_database temp_bytes)
// with the summary's plan (EXPLAIN ANALYZE: sort method and memory). Not part of npm test.
//
//   BENCH_PG_ADMIN_URL   a PostgreSQL superuser URL; unset = a private server started here
//   BENCH_PARITY_ROWS    (default 1000000) movies per store
//   BENCH_PARITY_BUCKETS (default 64) buckets of the comparison, as the route map's default
//
// Bounded: every statement has a timeout, the run stops by itself; the databases and a private
// server are removed at the end (Ctrl-C too).
import { loadavg } from 'node:os'
import Fastify, { type FastifyInstance } from 'fastify'
import { admin, createEmptyDatabase, type TestDatabase } from '../dev/pg-admin.ts'
import type { Database } from '../lib/db/database.ts'
import { migrate } from '../lib/db/migrate.ts'
import { createPgDatabase } from '../lib/db/pg-database.ts'
import { MOVIE_PARITY } from '../lib/movies/movie-parity.ts'
import { parityRoutes, PARITY_PATH } from '../lib/parity/parity-routes.ts'
import { paritySql, sqlParitySource } from '../lib/parity/sql-parity.ts'
import { checkParity } from '../proxy/rollout/parity/parity-check.ts'
import { startPrivatePostgres, type PrivateServer } from '../test/helpers/private-servers.ts'

const ROWS = Number(process.env.BENCH_PARITY_ROWS ?? 1_000_000)
const BUCKETS = Number(process.env.BENCH_PARITY_BUCKETS ?? 64)
const STATEMENT_TIMEOUT_MS = 600_000
const GENRES = ['Action', 'Comedy', 'Drama', 'Horror', 'Romance', 'Sci-Fi', 'Thriller', 'Documentary']

const mb = (bytes: number) => `${(bytes / 1048576).toFixed(0)} MB`
const seconds = (ms: number) => `${(ms / 1000).toFixed(2)} s`

/** Peak RSS of this process while `work` runs, sampled every 20 ms, besides the kernel's lifetime peak. */
async function measured<T>(work: () => Promise<T>): Promise<{ result: T; ms: number; peakRss: number }> {
  let peakRss = process.memoryUsage.rss()
  const sampler = setInterval(() => (peakRss = Math.max(peakRss, process.memoryUsage.rss())), 20)
  const started = performance.now()
  try {
    const result = await work()
    return { result, ms: performance.now() - started, peakRss: Math.max(peakRss, process.memoryUsage.rss()) }
  } finally {
    clearInterval(sampler)
  }
}

async function fill(db: Database): Promise<void> {
  // Titles, descriptions and ratings vary per row; 1 to 3 genres per movie.
  await db.query(`TRUNCATE movies RESTART IDENTITY CASCADE`)
  await db.query(
    `INSERT INTO movies (title, description, rating)
     SELECT 'Movie ' || i, 'Description of movie ' || i || ' — "quoted", ünïcödé', ((i * 37) % 101) / 10.0
       FROM generate_series(1, $1::int) i`,
    [ROWS],
  )
  await db.query(
    `INSERT INTO movie_genres (movie_id, genre)
     SELECT m.id, ($1::text[])[1 + (m.id * 7 + k * 3) % 8] FROM movies m, generate_series(0, 2) k
      WHERE k <= m.id % 3
     ON CONFLICT DO NOTHING`,
    [GENRES],
  )
  await db.query('ANALYZE movies')
  await db.query('ANALYZE movie_genres')
}

async function endpoint(db: Database): Promise<{ app: FastifyInstance; url: string }> {
  const app = Fastify()
  await app.register(parityRoutes, { source: sqlParitySource(db, MOVIE_PARITY, { statementTimeoutMs: STATEMENT_TIMEOUT_MS }) })
  const url = await app.listen({ port: 0, host: '127.0.0.1' })
  return { app, url }
}

const tempBytes = async (db: Database) =>
  Number((await db.query<{ t: string }>('SELECT temp_bytes::text AS t FROM pg_stat_database WHERE datname = current_database()')).rows[0].t)

let pgServer: PrivateServer | undefined
const databases: TestDatabase[] = []
const pools: Database[] = []
const apps: FastifyInstance[] = []
let cleaning: Promise<void> | undefined
const cleanUp = () =>
  (cleaning ??= (async () => {
    for (const app of apps) await app.close().catch(() => {})
    for (const pool of pools) await pool.close().catch(() => {})
    for (const d of databases) await d.drop().catch(() => {})
    await pgServer?.stop()
  })())
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => void cleanUp().finally(() => process.exit(130)))

try {
  const adminUrl = process.env.BENCH_PG_ADMIN_URL ?? (pgServer = await startPrivatePostgres()).url
  const legacy = await createEmptyDatabase(adminUrl, 'bench_parity_legacy')
  databases.push(legacy)
  const open = (url: string) => {
    const db = createPgDatabase({ connectionString: url, max: 4, statementTimeoutMs: STATEMENT_TIMEOUT_MS })
    pools.push(db)
    return db
  }
  const legacyDb = open(legacy.url)
  await migrate(legacyDb)
  const fillTime = await measured(() => fill(legacyDb))
  console.log(`filled legacy with ${ROWS.toLocaleString('en')} movies in ${seconds(fillTime.ms)}`)
  // The second store: a copy (CREATE DATABASE ... TEMPLATE), then one bucket made to differ.
  await legacyDb.close()
  pools.splice(pools.indexOf(legacyDb), 1)
  const target = await createEmptyDatabase(adminUrl, 'bench_parity_target')
  databases.push(target)
  await target.drop()
  await admin(adminUrl, (c) => c.query(`CREATE DATABASE "${target.name}" TEMPLATE "${legacy.name}"`))
  const legacyStore = open(legacy.url)
  const targetStore = open(target.url)
  const bucket = 5
  await targetStore.query(`UPDATE movies SET title = title || ' (changed)' WHERE id IN (SELECT id FROM movies WHERE id % $1 = $2 ORDER BY id LIMIT 3)`, [BUCKETS, bucket])
  await targetStore.query(`DELETE FROM movies WHERE id = (SELECT max(id) FROM movies WHERE id % $1 = $2)`, [BUCKETS, bucket])

  const [a, b] = [await endpoint(legacyStore), await endpoint(targetStore)]
  apps.push(a.app, b.app)
  const settings = { path: PARITY_PATH, buckets: BUCKETS, timeoutMs: STATEMENT_TIMEOUT_MS }
  const rssBefore = process.memoryUsage.rss()
  const summaryOnly = await measured(async () => (await fetch(`${a.url}${PARITY_PATH}?buckets=${BUCKETS}`)).json() as Promise<{ count: number }>)
  const bucketOnly = await measured(async () => (await fetch(`${a.url}${PARITY_PATH}?buckets=${BUCKETS}&bucket=${bucket}`)).json() as Promise<{ items: Record<string, string> }>)
  const tempBefore = (await tempBytes(legacyStore)) + (await tempBytes(targetStore))
  const check = await measured(() => checkParity('movies', { name: 'legacy', url: a.url }, { name: 'target', url: b.url }, settings))
  // pg_stat_database is updated when a backend reports its statistics: give it a moment.
  await new Promise((r) => setTimeout(r, 1_500))
  const tempAfter = (await tempBytes(legacyStore)) + (await tempBytes(targetStore))
  const plan = await legacyStore.transaction(async (tx) => {
    await tx.query(`SET LOCAL statement_timeout = ${STATEMENT_TIMEOUT_MS}`)
    const { rows } = await tx.query<{ 'QUERY PLAN': string }>(`EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) ${paritySql(MOVIE_PARITY).summary}`, [BUCKETS])
    return rows.map((r) => r['QUERY PLAN'])
  })
  const workMem = (await legacyStore.query<{ work_mem: string }>('SHOW work_mem')).rows[0].work_mem
  const version = (await legacyStore.query<{ server_version: string }>('SHOW server_version')).rows[0].server_version

  const r = check.result
  console.log(`\nPostgreSQL ${version}, work_mem ${workMem}; ${ROWS.toLocaleString('en')} movies per store, ${BUCKETS} buckets; load average ${loadavg().map((l) => l.toFixed(1)).join(' ')}`)
  console.log(`summary alone (one store):       ${seconds(summaryOnly.ms)} (count ${summaryOnly.result.count})`)
  console.log(`one bucket alone (one store):    ${seconds(bucketOnly.ms)} (${Object.keys(bucketOnly.result.items).length} ids)`)
  console.log(`parity check (both summaries, the differing bucket on both sides, the documents): ${seconds(check.ms)}`)
  console.log(`  drift ${r.drift}: missing on target ${r.missing.onTarget}, differing ${r.differingCount} (${r.differing.map((d) => `${d.id} ${d.paths.join(',')}`).join('; ')})`)
  console.log(`RSS of this node process (both endpoints and the checker): ${mb(rssBefore)} before the calls, peak ${mb(Math.max(summaryOnly.peakRss, bucketOnly.peakRss, check.peakRss))} during them (lifetime max ${mb(process.resourceUsage().maxRSS * 1024)})`)
  console.log(`PostgreSQL temp files written during the check (both stores): ${mb(tempAfter - tempBefore)}`)
  console.log(`\nthe summary's plan on one store:\n  ${plan.join('\n  ')}`)
} finally {
  await cleanUp()
}
