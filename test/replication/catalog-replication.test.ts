// Acceptance of "the movies service owns its data": two PostgreSQL databases of their own
// (different roles), a real Kafka of this file's own, the monolith, the movies service and the
// proxy as processes. The movies service starts on an empty catalog-db beside a legacy that holds
// movies and converges by itself; 200 movies written on the monolith reach catalog-db, then the
// writes are handed over (the stores' own protocol) and 200 written on the movies service reach
// legacy-db; a write to the store that is not the writer is refused; Kafka is killed (SIGKILL, by its pid) and
// restarted during each phase; ids never collide; the proxy's parity check finds no drift, and
// no change was applied twice.
import { setTimeout as sleep } from 'node:timers/promises'
import pg from 'pg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { RunningKafka } from '../../dev/kafka/launcher.ts'
import { admin } from '../../dev/pg-admin.ts'
import { pgAdminUrl } from '../helpers/infra.ts'
import { metric } from '../helpers/metrics.ts'
import { eventually } from '../helpers/poll.ts'
import { startService, untilCaughtUp, type ServiceProcess } from '../helpers/processes.ts'
import { ADMIN_TOKEN, flagsFileAt } from '../proxy/proxy-harness.ts'
import { killKafka, startTwoStores, withCredentialsOf, type OwnedDatabase, type TwoStores } from './support.ts'

interface Movie {
  id: number
  title: string
  description: string
  genres: string[]
  rating: number
}

let stores: TwoStores
let kafka: RunningKafka
let legacyDb: OwnedDatabase
let catalogDb: OwnedDatabase
let monolith: ServiceProcess
let movies: ServiceProcess | undefined
let proxy: ServiceProcess | undefined
const serviceEnv = () => stores.serviceEnv()

beforeAll(async () => {
  stores = await startTwoStores(pgAdminUrl())
  ;({ kafka, legacyDb, catalogDb } = stores)
  monolith = await startService('monolith/server.ts', { ...serviceEnv(), DB_CONNECTION_STRING: legacyDb.url })
  await untilCaughtUp(monolith)
}, 180_000)

afterAll(async () => {
  await proxy?.stop()
  await movies?.stop()
  await monolith?.stop()
  await stores?.close()
})

async function list(service: ServiceProcess): Promise<Movie[]> {
  const res = await fetch(`${service.url}/api/movies`, { signal: AbortSignal.timeout(10_000) })
  const body = await res.text()
  expect(res.status, body).toBe(200)
  return JSON.parse(body) as Movie[]
}

/** The list once the store serves reads: a store catching up with the stream answers 503 (STORE_CATCHING_UP) until it has. */
async function listWhenReadable(service: ServiceProcess): Promise<Movie[] | undefined> {
  const res = await fetch(`${service.url}/api/movies`, { signal: AbortSignal.timeout(10_000) })
  const body = await res.text()
  if (res.status === 503 && body.includes('catching up')) return undefined
  expect(res.status, body).toBe(200)
  return JSON.parse(body) as Movie[]
}

async function create(service: ServiceProcess, title: string, i: number): Promise<Movie> {
  // A write that meets a restarting database pool answers 503: the client retries (bounded).
  for (let attempt = 1; ; attempt++) {
    const res = await fetch(`${service.url}/api/movies`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ title, description: `written as #${i}`, genres: i % 3 === 0 ? [] : ['Drama', `G${i % 7}`], rating: (i % 100) / 10 }),
      signal: AbortSignal.timeout(10_000),
    })
    if (res.status === 201) return (await res.json()) as Movie
    if (attempt >= 5) throw new Error(`create ${title}: ${res.status} ${await res.text()}`)
    await sleep(200)
  }
}

/**
 * `count` creates on `service`, 8 at a time: Kafka is killed (SIGKILL, by pid) once a third are
 * written and restarted once two thirds are, while the writes go on.
 */
async function writeThroughKafkaCrash(service: ServiceProcess, prefix: string, count: number): Promise<Movie[]> {
  const created: Movie[] = []
  let next = 0
  let killed: Promise<void> | undefined
  let restarted: Promise<void> | undefined
  const worker = async () => {
    while (next < count) {
      const i = next++
      created.push(await create(service, `${prefix} ${i}`, i))
      if (created.length >= Math.floor(count / 3)) killed ??= killKafka(kafka)
      if (created.length >= Math.floor((2 * count) / 3)) restarted ??= killed!.then(() => kafka.restart())
    }
  }
  await Promise.all(Array.from({ length: 8 }, worker))
  await restarted
  return created
}

const byId = (a: Movie, b: Movie) => a.id - b.id
async function metricsOf(service: ServiceProcess): Promise<string> {
  return (await fetch(`${service.url}/metrics`)).text()
}

describe('catalog-db, kept in step with legacy-db through Kafka', () => {
  it('neither service\'s credentials open the other\'s database', async () => {
    for (const url of [withCredentialsOf(legacyDb, catalogDb), withCredentialsOf(catalogDb, legacyDb)]) {
      const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5_000 })
      await expect(client.connect()).rejects.toThrow(/permission denied|not permitted|authentication/)
      await client.end().catch(() => {})
    }
  })

  it('a movies service started on an empty catalog-db serves the legacy\'s movies within 30 s', { timeout: 120_000 }, async () => {
    const before = await Promise.all(Array.from({ length: 20 }, (_, i) => create(monolith, `Before ${i}`, i)))
    expect(before).toHaveLength(20)
    const legacyMovies = await list(monolith)
    expect(legacyMovies.length).toBe(25) // the 5 of the seed and ours
    const client = new pg.Client({ connectionString: catalogDb.url })
    await client.connect()
    expect((await client.query('SELECT count(*)::int AS n FROM movies')).rows[0].n).toBe(0)
    await client.end()

    movies = await startService('movies-service/server.ts', { ...serviceEnv(), DB_CONNECTION_STRING: catalogDb.url })
    const started = Date.now()
    await eventually('catalog-db holds the legacy movies', async () => JSON.stringify(await listWhenReadable(movies!)) === JSON.stringify(legacyMovies), 30_000)
    console.log(`catalog-db converged ${Date.now() - started} ms after the movies service answered`)
  })

  it('200 movies written on the monolith reach the movies service, through a Kafka crash', { timeout: 300_000 }, async () => {
    const created = await writeThroughKafkaCrash(monolith, 'Legacy', 200)
    expect(new Set(created.map((m) => m.id)).size).toBe(200)
    await eventually('catalog-db caught up', async () => (await listWhenReadable(movies!))?.length === 225, 120_000)
    const [legacyMovies, catalogMovies] = await Promise.all([list(monolith), list(movies!)])
    expect(catalogMovies).toEqual(legacyMovies)
    for (const m of created) expect(catalogMovies.find((c) => c.id === m.id)).toEqual(m)
  })

  it('a direct write to the movies service is refused while legacy writes: nothing written, a clean 421', async () => {
    const res = await fetch(`${movies!.url}/api/movies`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ title: 'Sneaked in', description: '', rating: 1 }) })
    expect([res.status, res.headers.get('x-store-refused'), ((await res.json()) as { error: string }).error]).toEqual([421, 'not-writer', expect.stringMatching(/does not take writes of movies/)])
    expect((await list(movies!)).some((m) => m.title === 'Sneaked in')).toBe(false)
  })

  it('writes handed over to the movies service: 200 movies written there reach the monolith, ids from its own range', { timeout: 300_000 }, async () => {
    const release = await fetch(`${monolith.url}/internal/writer/release`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' })
    expect(((await release.json()) as { released: boolean }).released).toBe(true)
    await eventually('the movies service takes the writes', async () => {
      const state = (await (await fetch(`${movies!.url}/internal/writer`)).json()) as { writer: boolean; catchingUp: boolean }
      return state.writer && !state.catchingUp
    }, 30_000)
    const refused = await fetch(`${monolith.url}/api/movies`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ title: 'Too late', description: '', rating: 1 }) })
    expect(refused.status).toBe(421)
    const created = await writeThroughKafkaCrash(movies!, 'Catalog', 200)
    expect(Math.min(...created.map((m) => m.id))).toBeGreaterThanOrEqual(1_000_000_000)
    await eventually('legacy-db caught up', async () => (await list(monolith)).length === 425, 120_000)
    const [legacyMovies, catalogMovies] = await Promise.all([list(monolith), list(movies!)])
    expect(legacyMovies).toEqual(catalogMovies)
    const ids = legacyMovies.map((m) => m.id)
    expect(new Set(ids).size).toBe(425)
    for (const m of created) expect(legacyMovies.find((l) => l.id === m.id)).toEqual(m)
    expect([...legacyMovies].sort(byId)).toEqual(legacyMovies)
  })

  it('no change was applied twice, none echoed back, nothing parked', { timeout: 90_000 }, async () => {
    // Each side sees its own changes come back from the topic and skips them. Its consumer may
    // still be reading them when the other side already has them all: wait until it has read
    // its own back, so that the counts below are final.
    const echoes = async () => {
      const [monolithMetrics, moviesMetrics] = await Promise.all([metricsOf(monolith), metricsOf(movies!)])
      return { monolithMetrics, moviesMetrics, catalog: metric(moviesMetrics, 'movie_replication_events_total{origin="catalog",result="echo"}') ?? 0, legacy: metric(monolithMetrics, 'movie_replication_events_total{origin="legacy",result="echo"}') ?? 0 }
    }
    await eventually('each side has read its own changes back', async () => {
      const seen = await echoes()
      return seen.catalog >= 200 && seen.legacy >= 225
    }, 60_000)
    const { monolithMetrics, moviesMetrics } = await echoes()
    // Each movie's state applied exactly once on the other side; re-deliveries (a relay retrying
    // after the crash) are counted as duplicates, never applied.
    expect(metric(moviesMetrics, 'movie_replication_events_total{origin="legacy",result="applied"}')).toBe(225)
    expect(metric(monolithMetrics, 'movie_replication_events_total{origin="catalog",result="applied"}')).toBe(200)
    expect(metric(moviesMetrics, 'movie_replication_events_total{result="parked"}') ?? 0).toBe(0)
    expect(metric(monolithMetrics, 'movie_replication_events_total{result="parked"}') ?? 0).toBe(0)
  })

  it('through a real proxy, GET /admin/routes/movies/parity shows drift 0', { timeout: 60_000 }, async () => {
    proxy = await startService('proxy/server.ts', {
      MONOLITH_URL: monolith.url,
      MOVIES_SERVICE_URL: movies!.url,
      EVENTS_SERVICE_URL: 'http://127.0.0.1:9',
      // The movies service writes now (handed over above): the proxy's flags say so too.
      FLAGS_FILE: flagsFileAt({ 'movies-migration': 0, 'movies-migration-writes': 100 }),
      ADMIN_TOKEN,
    })
    const res = await fetch(`${proxy.opsUrl}/admin/routes/movies/parity`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } })
    const body = await res.json()
    expect(res.status).toBe(200)
    expect(body, JSON.stringify(body).slice(0, 2000)).toMatchObject({ route: 'movies', available: true, drift: 0, legacy: { count: 425 }, target: { count: 425 }, missingOnLegacy: [], missingOnTarget: [], differing: [] })
    const proxyMetrics = await (await fetch(`${proxy.opsUrl}/metrics`)).text()
    expect(metric(proxyMetrics, 'migration_data_drift{route="movies"}')).toBe(0)
    expect(metric(proxyMetrics, 'migration_replication_lag_seconds{route="movies"}')).toBeGreaterThanOrEqual(0)
  })
  it('catalog-db restored from a backup while it is the writer: it replays what it lost (its own writes included) before it writes, and reuses no id', { timeout: 300_000 }, async () => {
    const backup = `${catalogDb.name}_backup`
    const port = movies!.port
    const env = { ...serviceEnv(), DB_CONNECTION_STRING: catalogDb.url, PORT: String(port) }
    // The backup: a copy of catalog-db taken while the service is stopped (CREATE DATABASE … TEMPLATE).
    await movies!.stop()
    await admin(pgAdminUrl(), (c) => c.query(`CREATE DATABASE "${backup}" TEMPLATE "${catalogDb.name}" OWNER "${catalogDb.role}"`))
    try {
      movies = await startService('movies-service/server.ts', env, { readyPath: '/ready' })
      const lost = await Promise.all(Array.from({ length: 30 }, (_, i) => create(movies!, `After the backup ${i}`, i)))
      const highest = Math.max(...lost.map((m) => m.id))
      await eventually('legacy-db has them', async () => (await list(monolith)).filter((m) => m.title.startsWith('After the backup')).length === 30, 60_000)
      // The disk is lost: catalog-db is restored from the backup, without the 30 movies written since.
      await movies!.stop()
      await admin(pgAdminUrl(), async (c) => {
        await c.query(`DROP DATABASE "${catalogDb.name}" WITH (FORCE)`)
        await c.query(`CREATE DATABASE "${catalogDb.name}" TEMPLATE "${backup}" OWNER "${catalogDb.role}"`)
        await c.query(`REVOKE ALL ON DATABASE "${catalogDb.name}" FROM PUBLIC`)
      })
      const restored = new pg.Client({ connectionString: catalogDb.url })
      await restored.connect()
      expect((await restored.query("SELECT count(*)::int AS n FROM movies WHERE title LIKE 'After the backup%'")).rows[0].n).toBe(0)
      await restored.end()
      // Ready (and writing) only once it has replayed the stream: its own 30 movies are back, and its next id comes after them.
      movies = await startService('movies-service/server.ts', env, { readyPath: '/ready', timeoutMs: 120_000 })
      const back = (await list(movies!)).filter((m) => m.title.startsWith('After the backup'))
      expect(back.map((m) => m.id).sort()).toEqual(lost.map((m) => m.id).sort())
      const next = await create(movies!, 'After the restore', 1)
      expect(next.id).toBeGreaterThan(highest)
      await eventually('both stores equal again', async () => JSON.stringify(await list(monolith)) === JSON.stringify(await listWhenReadable(movies!)), 60_000)
    } finally {
      await admin(pgAdminUrl(), (c) => c.query(`DROP DATABASE IF EXISTS "${backup}" WITH (FORCE)`))
    }
  })
})
