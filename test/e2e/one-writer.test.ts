// Acceptance of "one writer per record, by construction" (issue 35): every way the catalog's two
// stores could once both hand out the same id, tried one after another while 50 clients write,
// against real PostgreSQL ×2 (each database owned by its own role), a Kafka of this file's own,
// a private Redis, a real Unleash server, the monolith and the movies service as processes, and
// TWO proxy replicas — A follows Unleash, B a flags file of its own:
//   1. reads ramp to 50 % with no writer flag defined anywhere (writes stay on legacy);
//   2. the writer side is switched in Unleash directly, not through the proxy;
//   3. and back, in replica B's flags file;
//   4. replica A is restarted while Unleash is stopped (it routes by the last state in Redis);
//   5. Redis is paused (SIGSTOP) during a switch's handover (through B's admin API);
//   6. a client writes to the monolith directly while the movies service is the writer;
//   7. catalog-db is dropped and rebuilt from the stream while clients write.
// At the end: every create was answered 201 or a clean 4xx/503, no two records share an id, every
// record answered 201 is in BOTH databases with the content its client sent, parity drift 0, no
// conflict left, and the ledger shows each switch. The time a client's write waited during each
// handover is logged (the closing note's figures).
import { randomUUID } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import pg from 'pg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createEmptyDatabase, type TestDatabase } from '../../dev/pg-admin.ts'
import type { RunningKafka } from '../../dev/kafka/launcher.ts'
import type { LedgerEntry } from '../../proxy/rollout/ledger.ts'
import { pgAdminUrl } from '../helpers/infra.ts'
import { eventually } from '../helpers/poll.ts'
import { startPrivateRedis, type PrivateServer } from '../helpers/private-servers.ts'
import { startService, untilCaughtUp, type ServiceProcess } from '../helpers/processes.ts'
import { ADMIN_TOKEN, flagsFileAt, writeFlagsFile } from '../proxy/proxy-harness.ts'
import { ownedDatabase, startTwoStores, storesProxyEnv, type OwnedDatabase, type TwoStores } from '../replication/support.ts'

const UNLEASH_ADMIN = '*:*.one-writer-admin-0123456789abcdef'
const UNLEASH_CLIENT = 'default:development.one-writer-client-0123456789abcdef'
const run = `one-writer-${randomUUID().slice(0, 8)}`
const auth = { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' }

let stores: TwoStores
let kafka: RunningKafka
let legacyDb: OwnedDatabase
let catalogDb: OwnedDatabase
let redis: PrivateServer
let unleashDb: TestDatabase
let unleash: ServiceProcess
let monolith: ServiceProcess
let movies: ServiceProcess
let proxyA: ServiceProcess
let proxyB: ServiceProcess
let flagsFile: string
/** The replicas the clients use now (A leaves it while it restarts). */
let live: ServiceProcess[] = []
const serviceEnv = () => stores.serviceEnv()

const commonProxyEnv = () => ({
  ...storesProxyEnv(run, { monolith: monolith.url, movies: movies.url }, redis.url, ADMIN_TOKEN),
  REDIS_TIMEOUT_MS: '200',
  WRITES_HANDOVER_QUIET_MS: '10000',
  WRITES_SWITCH_MAX_LAG_SECONDS: '10',
})
const proxyAEnv = () => ({ ...commonProxyEnv(), UNLEASH_URL: `${unleash.url}/api`, UNLEASH_API_TOKEN: UNLEASH_CLIENT, UNLEASH_REFRESH_INTERVAL_MS: '300', UNLEASH_TIMEOUT_MS: '1000' })
const startUnleash = (port?: number) =>
  startService('test/proxy/unleash-server-main.ts', { UNLEASH_DB_URL: unleashDb.url, ADMIN_TOKEN: UNLEASH_ADMIN, CLIENT_TOKEN: UNLEASH_CLIENT, ...(port ? { PORT: String(port) } : {}) }, { timeoutMs: 150_000 })

async function unleashApi(method: string, path: string, body?: unknown): Promise<any> {
  const res = await fetch(`${unleash.url}/api/admin${path}`, { method, headers: { authorization: UNLEASH_ADMIN, 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body), signal: AbortSignal.timeout(10_000) })
  const text = await res.text()
  if (!res.ok) throw new Error(`Unleash ${method} ${path}: ${res.status} ${text}`)
  return text ? JSON.parse(text) : undefined
}
const strategies = new Map<string, string>()
const rollout = (flag: string, percent: number) => ({ name: 'flexibleRollout', constraints: [], parameters: { groupId: flag, rollout: String(percent), stickiness: 'default' } })
/** A flag's rollout in Unleash, set in Unleash itself (never through the proxy); created at the first call. */
async function setInUnleash(flag: string, percent: number): Promise<void> {
  const feature = `/projects/default/features/${flag}`
  const id = strategies.get(flag)
  if (id) return void (await unleashApi('PUT', `${feature}/environments/development/strategies/${id}`, rollout(flag, percent)))
  await unleashApi('POST', '/projects/default/features', { name: flag, type: 'release', description: `test: ${flag}` })
  strategies.set(flag, (await unleashApi('POST', `${feature}/environments/development/strategies`, rollout(flag, percent))).id)
  await unleashApi('POST', `${feature}/environments/development/on`)
}

async function adminCall(proxy: ServiceProcess, method: string, path: string, body?: unknown): Promise<{ status: number; body: any }> {
  const res = await fetch(`${proxy.opsUrl}${path}`, { method, headers: auth, body: body === undefined ? undefined : JSON.stringify(body), signal: AbortSignal.timeout(30_000) })
  const text = await res.text()
  return { status: res.status, body: text ? JSON.parse(text) : undefined }
}
const stageOf = async (proxy: ServiceProcess) => (await adminCall(proxy, 'GET', '/admin/routes/movies/stage')).body

interface WriterState {
  writer: boolean
  epoch: number
  catchingUp: boolean
  conflicts: number
}
const writerOf = async (service: ServiceProcess): Promise<WriterState | undefined> =>
  fetch(`${service.url}/internal/writer`, { signal: AbortSignal.timeout(5_000) })
    .then((r) => (r.ok ? (r.json() as Promise<WriterState>) : undefined))
    .catch(() => undefined)
/** Waits until `side`'s store takes the writes (and has caught up); returns how long it took. */
async function untilWriter(side: 'legacy' | 'target', timeoutMs = 90_000): Promise<number> {
  const started = Date.now()
  await eventually(`the ${side} store takes the writes`, async () => {
    const [legacy, target] = await Promise.all([writerOf(monolith), writerOf(movies)])
    const mine = side === 'legacy' ? legacy : target
    const other = side === 'legacy' ? target : legacy
    return mine?.writer === true && !mine.catchingUp && other?.writer !== true
  }, timeoutMs)
  return Date.now() - started
}

// --- the clients ----------------------------------------------------------------------------

interface Sent {
  title: string
  description: string
  genres: string[]
  rating: number
}
interface Outcome {
  client: string
  sent: Sent
  status: number
  /** The answer's JSON (a 201's movie, an error's {error}); undefined when it was not JSON. */
  body?: { id?: number; error?: string; genres?: string[]; rating?: number }
  startedAt: number
  ms: number
}
const outcomes: Outcome[] = []
let writing = false
let clients: Promise<void>[] = []

async function client(c: number): Promise<void> {
  const name = `client-${c}`
  for (let k = 0; writing; k++) {
    const sent: Sent = { title: `${name} #${k} ${randomUUID().slice(0, 6)}`, description: `written by ${name}, create ${k}`, genres: [`G${(c + k) % 7}`, ...(k % 3 ? ['Drama'] : [])], rating: ((c * 7 + k) % 101) / 10 }
    const proxy = live[(c + k) % live.length]!
    const startedAt = Date.now()
    try {
      const res = await fetch(`${proxy.url}/api/movies`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-user-id': name },
        body: JSON.stringify(sent),
        signal: AbortSignal.timeout(60_000),
      })
      const text = await res.text()
      let body: Outcome['body']
      try {
        body = JSON.parse(text) as Outcome['body']
      } catch {
        body = undefined
      }
      outcomes.push({ client: name, sent, status: res.status, body, startedAt, ms: Date.now() - startedAt })
    } catch (err) {
      // No answer at all (a replica going away): not a create anybody was answered for.
      outcomes.push({ client: name, sent, status: 0, body: { error: (err as Error).message }, startedAt, ms: Date.now() - startedAt })
    }
    await sleep(100 + ((c * 13 + k * 7) % 150))
  }
}
function startClients(): void {
  writing = true
  clients = Array.from({ length: 50 }, (_, c) => client(c))
}
async function stopClients(): Promise<void> {
  writing = false
  await Promise.all(clients)
}

/** The longest a 201'd write waited that started in [from, to]. */
const longestWait = (from: number, to: number) => Math.max(0, ...outcomes.filter((o) => o.status === 201 && o.startedAt >= from && o.startedAt <= to).map((o) => o.ms))
const handovers: Array<{ what: string; handoverMs: number; longestWriteMs: number }> = []
async function switchObserved(what: string, side: 'legacy' | 'target', act: () => Promise<void>): Promise<void> {
  const started = Date.now()
  await act()
  const handoverMs = await untilWriter(side)
  await sleep(1_000)
  handovers.push({ what, handoverMs, longestWriteMs: longestWait(started - 1_000, Date.now()) })
  console.log(`[one writer] ${what}: the ${side} store took the writes ${handoverMs} ms after the switch; longest write meanwhile ${handovers.at(-1)!.longestWriteMs} ms`)
}

// --- setup ----------------------------------------------------------------------------------

beforeAll(async () => {
  ;[stores, redis, unleashDb] = await Promise.all([startTwoStores(pgAdminUrl()), startPrivateRedis(), createEmptyDatabase(pgAdminUrl(), 'one_writer_unleash')])
  ;({ kafka, legacyDb, catalogDb } = stores)
  void kafka
  unleash = await startUnleash()
  await setInUnleash('movies-migration', 0)
  monolith = await startService('monolith/server.ts', { ...serviceEnv(), DB_CONNECTION_STRING: legacyDb.url })
  movies = await startService('movies-service/server.ts', { ...serviceEnv(), DB_CONNECTION_STRING: catalogDb.url })
  await Promise.all([untilCaughtUp(monolith), untilCaughtUp(movies)])
  // No writer flag anywhere: neither in Unleash nor in B's file.
  flagsFile = flagsFileAt({ 'movies-migration': 0 })
  ;[proxyA, proxyB] = await Promise.all([startService('proxy/server.ts', proxyAEnv()), startService('proxy/server.ts', { ...commonProxyEnv(), FLAGS_FILE: flagsFile })])
  live = [proxyA, proxyB]
  await eventually('replica A to load its flags from Unleash', async () => (await adminCall(proxyA, 'GET', '/admin/state')).body?.flags?.servedFrom === 'unleash', 60_000)
}, 400_000)

afterAll(async () => {
  writing = false
  await Promise.allSettled(clients)
  console.log(`[one writer] handovers: ${JSON.stringify(handovers)}`)
  if (redis?.pid) process.kill(redis.pid, 'SIGCONT')
  for (const p of [proxyA, proxyB]) await p?.stop()
  await movies?.stop()
  await monolith?.stop()
  await unleash?.stop()
  await redis?.stop()
  await unleashDb?.drop()
  await stores?.close()
  await catalogDb?.drop() // the rebuilt one (close() dropped the first)
})

// --- the stages -----------------------------------------------------------------------------

describe('one writer per record, whatever routes the writes', () => {
  it('1. reads ramp to 50 % with no writer flag defined: every write stays on legacy', { timeout: 120_000 }, async () => {
    await setInUnleash('movies-migration', 50)
    writeFlagsFile(flagsFile, { 'movies-migration': 50 })
    await eventually('both replicas read at 50 %', async () => (await stageOf(proxyA)).readPercent === 50 && (await stageOf(proxyB)).readPercent === 50, 30_000)
    startClients()
    await sleep(6_000)
    const [legacy, target] = await Promise.all([writerOf(monolith), writerOf(movies)])
    expect([legacy?.writer, legacy?.epoch, target?.writer]).toEqual([true, 1, false])
    const created = outcomes.filter((o) => o.status === 201)
    expect(created.length).toBeGreaterThan(100)
    // Legacy's own range: nothing was written on the movies service.
    expect(created.filter((o) => o.body!.id! >= 1_000_000_000)).toEqual([])
  })

  it('2. the writer side switched in Unleash directly hands the writes over through the stores', { timeout: 180_000 }, async () => {
    await switchObserved('switch in Unleash (replica A drives it)', 'target', () => setInUnleash('movies-migration-writes', 100))
    // Replica B's file agrees from now on (a replica whose flags did not change since never undoes a switch).
    writeFlagsFile(flagsFile, { 'movies-migration': 50, 'movies-migration-writes': 100 })
    await sleep(4_000)
    expect(outcomes.filter((o) => o.status === 201 && o.startedAt > Date.now() - 2_000).every((o) => o.body!.id! >= 1_000_000_000)).toBe(true)
  })

  it('3. and back, in the flags file of the file-sourced replica', { timeout: 180_000 }, async () => {
    await switchObserved('switch in replica B\'s flags file', 'legacy', async () => writeFlagsFile(flagsFile, { 'movies-migration': 50, 'movies-migration-writes': 0 }))
    await setInUnleash('movies-migration-writes', 0)
    await sleep(4_000)
  })

  it('4. replica A restarted while Unleash is stopped routes by the last state known to the replicas', { timeout: 240_000 }, async () => {
    const unleashPort = unleash.port
    await unleash.stop()
    live = [proxyB]
    await proxyA.stop()
    proxyA = await startService('proxy/server.ts', proxyAEnv())
    await eventually('the restarted replica to route by the last known state', async () => (await adminCall(proxyA, 'GET', '/admin/state')).body?.flags?.servedFrom === 'last-known', 30_000)
    expect((await fetch(`${proxyA.url}/ready`)).status).toBe(200)
    expect(await stageOf(proxyA)).toMatchObject({ readPercent: 50, writes: 'legacy' })
    live = [proxyA, proxyB]
    await sleep(3_000)
    // Nothing moved the writer.
    expect((await writerOf(monolith))?.writer).toBe(true)
    unleash = await startUnleash(unleashPort)
    await eventually('replica A to reach Unleash again', async () => (await adminCall(proxyA, 'GET', '/admin/state')).body?.flags?.servedFrom === 'unleash', 60_000)
  })

  it('5. Redis paused (SIGSTOP) during a switch\'s handover: the stores hand over all the same', { timeout: 240_000 }, async () => {
    await switchObserved('switch through replica B\'s admin API, Redis paused', 'target', async () => {
      process.kill(redis.pid!, 'SIGSTOP')
      try {
        // The guards read both stores (no Redis); clients keep writing, so a refusal (changes in flight) is retried.
        const until = Date.now() + 90_000
        for (;;) {
          const res = await adminCall(proxyB, 'PUT', '/admin/routes/movies/writes', { side: 'target', reason: 'Redis paused during the handover' })
          if (res.status === 200) break
          expect(res.status, JSON.stringify(res.body)).toBe(409)
          if (Date.now() > until) throw new Error(`the switch was refused for 90 s: ${res.body.error}`)
          await sleep(500)
        }
        await setInUnleash('movies-migration-writes', 100)
        await untilWriter('target')
        await sleep(2_000)
      } finally {
        process.kill(redis.pid!, 'SIGCONT')
      }
    })
  })

  it('6. a client writing to the monolith directly while the movies service writes is refused, nothing written', { timeout: 60_000 }, async () => {
    const res = await fetch(`${monolith.url}/api/movies`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ title: 'Straight to the monolith', description: 'a job', rating: 5 }) })
    const body = (await res.json()) as { error: string }
    expect([res.status, res.headers.get('x-store-refused'), body.error]).toEqual([421, 'not-writer', expect.stringMatching(/does not take writes of movies now/)])
    const legacyRows = await rows(legacyDb.url, "SELECT count(*)::int AS n FROM movies WHERE title = 'Straight to the monolith'")
    expect(legacyRows[0].n).toBe(0)
  })

  it('7. catalog-db dropped and rebuilt from the stream while clients write: it takes the writes again only once it has replayed everything', { timeout: 300_000 }, async () => {
    const started = Date.now()
    const port = movies.port
    await movies.stop()
    const dropped = catalogDb
    catalogDb = await ownedDatabase(pgAdminUrl(), 'catalog')
    await dropped.drop()
    movies = await startService('movies-service/server.ts', { ...serviceEnv(), DB_CONNECTION_STRING: catalogDb.url, PORT: String(port) }, { readyPath: '/ready', timeoutMs: 240_000 })
    const handoverMs = await untilWriter('target', 240_000)
    console.log(`[one writer] catalog-db rebuilt: the movies service replayed the stream and took the writes again ${Date.now() - started} ms after it was stopped (${handoverMs} ms after it was ready)`)
    await sleep(5_000)
  })

  it('at the end: every 201 in both stores with its client\'s content, ids unique, parity 0, no conflict, each switch in the ledger', { timeout: 300_000 }, async () => {
    await stopClients()
    const statuses = new Map<number, number>()
    for (const o of outcomes) statuses.set(o.status, (statuses.get(o.status) ?? 0) + 1)
    console.log(`[one writer] ${outcomes.length} creates sent by 50 clients; answers ${JSON.stringify(Object.fromEntries(statuses))}`)
    // Answered 201, or a clean 4xx/503 of the catalogue: never another 5xx, never an answer without an error.
    const clean = (o: Outcome) => o.status === 201 || ((o.status === 503 || (o.status >= 400 && o.status < 500)) && typeof o.body?.error === 'string')
    expect(outcomes.filter((o) => o.status !== 0 && !clean(o)).map((o) => `${o.client}: ${o.status} ${JSON.stringify(o.body)}`)).toEqual([])
    const created = outcomes.filter((o) => o.status === 201)
    const ids = created.map((o) => o.body!.id!)
    expect(new Set(ids).size).toBe(ids.length)

    const adminA = (method: string, path: string) => adminCall(proxyA, method, path)
    await eventually('parity 0', async () => {
      const p = (await adminA('GET', '/admin/routes/movies/parity')).body
      return p.available === true && p.drift === 0
    }, 180_000)
    const conflicts = (await adminA('GET', '/admin/routes/movies/conflicts')).body
    expect([conflicts.legacy.count, conflicts.target.count]).toEqual([0, 0])

    // Content, not ids: each record a client was answered 201 for, in each database, as the client sent it.
    for (const url of [legacyDb.url, catalogDb.url]) {
      const stored = new Map(
        (
          await rows(
            url,
            `SELECT m.id, m.title, COALESCE(m.description, '') AS description, m.rating::float8 AS rating,
                    COALESCE(array_agg(g.genre ORDER BY g.genre) FILTER (WHERE g.genre IS NOT NULL), '{}') AS genres
               FROM movies m LEFT JOIN movie_genres g ON g.movie_id = m.id WHERE m.id = ANY($1::int[]) GROUP BY m.id`,
            [ids],
          )
        ).map((r) => [r.id as number, r]),
      )
      const wrong = created.flatMap((o) => {
        const r = stored.get(o.body!.id!)
        const want = { title: o.sent.title, description: o.sent.description, rating: o.body!.rating, genres: [...new Set(o.sent.genres)].sort() }
        const got = r && { title: r.title, description: r.description, rating: r.rating, genres: r.genres }
        return JSON.stringify(got) === JSON.stringify(want) ? [] : [`${o.client} id ${o.body!.id}: sent ${JSON.stringify(want)}, stored ${JSON.stringify(got)}`]
      })
      expect(wrong.slice(0, 10), `${wrong.length} records differ in ${new URL(url).pathname}`).toEqual([])
    }

    // Each switch, whichever way it was made, is in the ledger.
    const entries = (await adminA('GET', '/admin/ledger?route=movies&limit=200')).body.entries as LedgerEntry[]
    const switches = entries.filter((e) => e.stage === 'writes').reverse()
    console.log(`[one writer] ledger: ${JSON.stringify(switches.map((e) => [e.toSide, e.source, e.actor, e.guard?.epoch ?? null]))}`)
    expect(switches.map((e) => [e.toSide, e.source])).toEqual([
      ['target', 'unleash'],
      ['legacy', 'flags-file'],
      ['target', 'admin'],
    ])
    console.log(`[one writer] handovers: ${JSON.stringify(handovers)}`)
  })
})

async function rows(url: string, sql: string, params: unknown[] = []): Promise<Array<Record<string, any>>> {
  const c = new pg.Client({ connectionString: url })
  await c.connect()
  try {
    return (await c.query(sql, params)).rows
  } finally {
    await c.end()
  }
}
