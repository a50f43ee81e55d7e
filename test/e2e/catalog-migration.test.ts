// Acceptance of "a route's migration has stages": the catalog moved to its own database, step by
// step, as a migration team would, with clients writing all along. Real PostgreSQL ×2 (legacy-db,
// catalog-db), a Kafka of this file's own, Redis, the monolith and the movies service as
// processes, and TWO proxy replicas sharing Redis and the flags file:
//   start (reads 0 %, writes legacy, catalog-db backfilled) → shadow at 100 % with 0 mismatches →
//   a guarded ramp of reads to 100 % → 50 clients create and read back their movies while writes
//   switch to the target and Kafka is killed (SIGKILL) and restarted → writes back to legacy,
//   refused while legacy lags, accepted after → forward again → retire → the monolith's movie
//   part off, and the movies contract table through the proxy. Each stage's duration and the
//   read-your-writes count are logged.
import { randomUUID } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { RunningKafka } from '../../dev/kafka/launcher.ts'
import type { LedgerEntry } from '../../proxy/rollout/ledger.ts'
import { runContractCase } from '../contract/contract-harness.ts'
import { movieCases, moviesEndpoint } from '../contract/movie-cases.ts'
import { pgAdminUrl, redisUrl } from '../helpers/infra.ts'
import { metric } from '../helpers/metrics.ts'
import { eventually } from '../helpers/poll.ts'
import { startService, untilCaughtUp, type ServiceProcess } from '../helpers/processes.ts'
import { ADMIN_TOKEN, flagsFileAt } from '../proxy/proxy-harness.ts'
import { killKafka, startTwoStores, storesProxyEnv, type OwnedDatabase, type TwoStores } from '../replication/support.ts'

interface Movie {
  id: number
  title: string
}

const auth = { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' }
const run = `catalog-e2e-${randomUUID().slice(0, 8)}`
let stores: TwoStores
let kafka: RunningKafka
let legacyDb: OwnedDatabase
let monolith: ServiceProcess
let movies: ServiceProcess
const proxies: ServiceProcess[] = []
const serviceEnv = () => stores.serviceEnv()
const timings: Array<[stage: string, ms: number]> = []

async function stage<T>(name: string, work: () => Promise<T>): Promise<T> {
  const started = Date.now()
  const result = await work()
  timings.push([name, Date.now() - started])
  console.log(`[catalog migration] ${name}: ${Date.now() - started} ms`)
  return result
}

beforeAll(async () => {
  stores = await startTwoStores(pgAdminUrl())
  ;({ kafka, legacyDb } = stores)
  monolith = await startService('monolith/server.ts', { ...serviceEnv(), DB_CONNECTION_STRING: legacyDb.url })
  movies = await startService('movies-service/server.ts', { ...serviceEnv(), DB_CONNECTION_STRING: stores.catalogDb.url })
  await Promise.all([untilCaughtUp(monolith), untilCaughtUp(movies)])
  const flagsFile = flagsFileAt({ 'movies-migration': 0, 'movies-migration-writes': 0 })
  for (let i = 0; i < 2; i++) {
    proxies.push(
      await startService('proxy/server.ts', {
        ...storesProxyEnv(run, { monolith: monolith.url, movies: movies.url }, redisUrl(), ADMIN_TOKEN),
        FLAGS_FILE: flagsFile,
        RAMP_TICK_MS: '250',
        WRITES_SWITCH_MAX_LAG_SECONDS: '5',
        RETIRE_WINDOW_SECONDS: '2',
      }),
    )
  }
}, 240_000)

afterAll(async () => {
  console.log(`[catalog migration] stage timings: ${JSON.stringify(Object.fromEntries(timings))}`)
  for (const p of proxies) await p.stop()
  await movies?.stop()
  await monolith?.stop()
  await stores?.close()
})

async function adminCall(method: string, path: string, body?: unknown, proxy = proxies[0]!): Promise<{ status: number; body: any }> {
  const res = await fetch(`${proxy.opsUrl}${path}`, { method, headers: auth, body: body === undefined ? undefined : JSON.stringify(body), signal: AbortSignal.timeout(20_000) })
  const text = await res.text()
  return { status: res.status, body: text ? JSON.parse(text) : undefined }
}
const parity = async () => (await adminCall('GET', '/admin/routes/movies/parity')).body
async function parityIsZero(): Promise<boolean> {
  const p = await parity()
  return p.available === true && p.drift === 0
}
/** A guarded step retried while its guard refuses (409), until `timeoutMs`; the refusals are returned. */
async function stepWhenGuardsHold(method: string, path: string, body: unknown, timeoutMs: number): Promise<string[]> {
  const refusals: string[] = []
  const until = Date.now() + timeoutMs
  for (;;) {
    const res = await adminCall(method, path, body)
    if (res.status === 200) return refusals
    expect(res.status, JSON.stringify(res.body)).toBe(409)
    refusals.push(res.body.error)
    if (Date.now() > until) throw new Error(`${method} ${path} still refused after ${timeoutMs} ms: ${refusals.at(-1)}`)
    await sleep(500)
  }
}
async function targetBreakersClosed(): Promise<boolean> {
  for (const p of proxies) {
    await (await fetch(`${p.url}/api/movies?id=1`, { headers: { 'x-user-id': 'breaker-probe' } })).arrayBuffer()
    if (metric(await (await fetch(`${p.opsUrl}/metrics`)).text(), 'proxy_breaker_state{upstream="movies-service"}') !== 0) return false
  }
  return true
}
async function readYourWritesCount(): Promise<number> {
  let sum = 0
  for (const p of proxies) sum += metric(await (await fetch(`${p.opsUrl}/metrics`)).text(), 'proxy_read_your_writes_total{route="movies"}') ?? 0
  return sum
}

describe('the catalog moved to its own database, stage by stage, through two proxy replicas', () => {
  it('starts with reads 0 %, writes on legacy, catalog-db backfilled (parity 0)', { timeout: 120_000 }, async () => {
    await stage('backfill', () => eventually('catalog-db holds the legacy movies', parityIsZero, 90_000))
    const state = await adminCall('GET', '/admin/routes/movies/stage')
    expect(state.body).toMatchObject({ readPercent: 0, writes: 'legacy', retired: false, parity: { drift: 0 } })
  })

  it('shadow at 100 % shows 0 mismatches', { timeout: 120_000 }, async () => {
    await stage('shadow', async () => {
      expect((await adminCall('PUT', '/admin/routes/movies/shadow', { percent: 100 })).status).toBe(200)
      for (let i = 0; i < 40; i++) await fetch(`${proxies[0]!.url}/api/movies${i % 2 ? '' : `?id=${(i % 5) + 1}`}`, { headers: { 'x-user-id': `shadow-${i}` } })
      await eventually('40 comparisons made', async () => (await adminCall('GET', '/admin/routes/movies/diffs')).body.counts.match >= 40, 30_000)
      const report = (await adminCall('GET', '/admin/routes/movies/diffs')).body
      expect(report.counts.mismatch).toBe(0)
      expect((await adminCall('PUT', '/admin/routes/movies/shadow', { percent: 0 })).status).toBe(200)
    })
  })

  it('a guarded ramp of reads to 100 % completes', { timeout: 180_000 }, async () => {
    await stage('ramp of reads to 100 %', async () => {
      const ramp = { steps: [25, 50, 100], intervalSeconds: 3, minRequests: 10, maxErrorRatePercent: 1, maxLatencyRatio: 20, reason: 'catalog-db in step, shadow clean' }
      expect((await adminCall('PUT', '/admin/routes/movies/ramp', ramp)).status).toBe(200)
      await eventually(
        'the ramp completed',
        async () => {
          // Traffic through both replicas: whichever holds the ramp's lease judges its own.
          await Promise.all(Array.from({ length: 20 }, (_, i) => fetch(`${proxies[i % 2]!.url}/api/movies?id=${(i % 5) + 1}`, { headers: { 'x-user-id': randomUUID() } }).then((r) => r.arrayBuffer())))
          return (await adminCall('GET', '/admin/routes/movies/ramp')).body.state === 'completed'
        },
        150_000,
      )
    })
    expect((await adminCall('GET', '/admin/routes/movies/stage')).body).toMatchObject({ readPercent: 100, writes: 'legacy' })
  })

  it('50 clients create and read back their movies while writes switch to the target and Kafka is killed and restarted', { timeout: 300_000 }, async () => {
    const statuses = new Map<number, number>()
    const fiveXx: string[] = []
    const readBackFailures: string[] = []
    const created = new Map<string, Movie[]>()
    let stop = false
    const count = (status: number, what: string) => {
      statuses.set(status, (statuses.get(status) ?? 0) + 1)
      if (status >= 500) fiveXx.push(`${what}: ${status}`)
    }
    const client = async (c: number) => {
      const user = `client-${c}`
      const mine: Movie[] = []
      created.set(user, mine)
      for (let k = 0; !stop; k++) {
        const write = proxies[(c + k) % 2]!
        const read = proxies[(c + k + 1) % 2]!
        const res = await fetch(`${write.url}/api/movies`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'x-user-id': user },
          body: JSON.stringify({ title: `${user} #${k}`, description: 'written during the switch', genres: ['Drama'], rating: 7 }),
          signal: AbortSignal.timeout(20_000),
        })
        count(res.status, `POST by ${user} (${res.headers.get('x-upstream')}, ${res.status === 201 ? '' : (await res.clone().text()).slice(0, 200)})`)
        if (res.status !== 201) continue
        const movie = (await res.json()) as Movie
        mine.push(movie)
        // Read back at once, through the other replica.
        const back = await fetch(`${read.url}/api/movies?id=${movie.id}`, { headers: { 'x-user-id': user }, signal: AbortSignal.timeout(20_000) })
        count(back.status, `GET ${movie.id} by ${user} (${back.headers.get('x-upstream')}, ${back.headers.get('x-route-reason')})`)
        const title = back.status === 200 ? ((await back.json()) as Movie).title : await back.text()
        if (title !== movie.title) readBackFailures.push(`${user} read back movie ${movie.id} through ${back.headers.get('x-upstream')} (${back.headers.get('x-route-reason')}): ${back.status} ${title.slice(0, 100)}`)
        await sleep(150 + ((c * 37 + k * 11) % 200))
      }
    }
    const rywBefore = await readYourWritesCount()
    const clients = Array.from({ length: 50 }, (_, c) => client(c))
    const refusals = await stage('writes to the target, clients writing', async () => {
      await sleep(2_000)
      return stepWhenGuardsHold('PUT', '/admin/routes/movies/writes', { side: 'target', reason: 'reads at 100 %, catalog-db in step' }, 120_000)
    })
    console.log(`[catalog migration] writes switch refused ${refusals.length} times first${refusals.length ? ` (last: ${refusals.at(-1)})` : ''}`)
    await stage('Kafka killed and restarted, clients writing', async () => {
      await sleep(2_000)
      await killKafka(kafka)
      await sleep(4_000)
      await kafka.restart()
      await sleep(2_000)
    })
    stop = true
    await Promise.all(clients)
    const ryw = (await readYourWritesCount()) - rywBefore
    console.log(`[catalog migration] ${[...created.values()].flat().length} movies created by 50 clients; statuses ${JSON.stringify(Object.fromEntries(statuses))}; read-your-writes reads ${ryw}`)
    expect(fiveXx.slice(0, 20)).toEqual([])
    expect(readBackFailures).toEqual([])
    const all = [...created.values()].flat()
    expect(new Set(all.map((m) => m.id)).size).toBe(all.length)
    expect(ryw).toBeGreaterThan(0)

    await stage('recovery to parity 0', () => eventually('parity 0 after the Kafka crash', parityIsZero, 120_000))
    // Every client reads back every movie it created: the whole list (thousands of movies), a few
    // clients at a time (50 at once made a busy machine's calls slow enough to open the breaker).
    const users = [...created.entries()]
    await Promise.all(
      Array.from({ length: 4 }, async () => {
        for (let next = users.shift(); next; next = users.shift()) {
          const [user, mine] = next
          const list = (await (await fetch(`${proxies[0]!.url}/api/movies`, { headers: { 'x-user-id': user } })).json()) as Movie[]
          const ids = new Set(list.map((m) => m.id))
          expect(mine.filter((m) => !ids.has(m.id)), `${user}'s movies`).toEqual([])
        }
      }),
    )
  })

  it('writes back to legacy: refused while legacy lags, accepted once it has applied everything, drift 0', { timeout: 180_000 }, async () => {
    await stage('writes back to legacy', async () => {
      // Writes are never replayed: a breaker of the target left open by earlier load would answer
      // them 503 itself. Each replica's breaker closes after a read succeeds (its half-open trial).
      await eventually('the movies-service breaker closed on both replicas', targetBreakersClosed, 60_000)
      await killKafka(kafka)
      try {
        // Written on the target while Kafka is down: legacy cannot have them. (A write that meets
        // the service's database pool busy with the consumer's retries may get a 503: retried, as a client would.)
        for (let i = 0; i < 5; i++) {
          let res: Response
          for (let attempt = 1; ; attempt++) {
            res = await fetch(`${proxies[i % 2]!.url}/api/movies`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-user-id': 'back-1' }, body: JSON.stringify({ title: `back ${i}`, description: '', genres: [], rating: 1 }) })
            if (res.status !== 503 || attempt >= 10) break
            await sleep(300)
          }
          const why = res.status === 201 ? '' : `${await res.text()}\n--- movies-service:\n${movies.output().slice(-3000)}\n--- proxy:\n${proxies[i % 2]!.output().slice(-3000)}`
          expect([res.status, res.headers.get('x-upstream')], why).toEqual([201, 'movies-service'])
        }
        const refused = await adminCall('PUT', '/admin/routes/movies/writes', { side: 'legacy', reason: 'going back' })
        expect(refused.status).toBe(409)
        expect(refused.body).toMatchObject({ code: 'CA_ERR_STAGE_GUARD_REFUSED' })
        expect(refused.body.error).toMatch(/unreplicated changes guard: (\d+|unknown)/)
      } finally {
        await kafka.restart()
      }
      await stepWhenGuardsHold('PUT', '/admin/routes/movies/writes', { side: 'legacy', reason: 'going back' }, 120_000)
      await eventually('parity 0 with writes on legacy', parityIsZero, 60_000)
    })
    // The other replica's flag follows the file within moments (its writes followed the stores at once).
    await expect.poll(async () => (await adminCall('GET', '/admin/routes/movies/stage', undefined, proxies[1])).body.writes, { timeout: 10_000 }).toBe('legacy')
  })

  it('forward again, retire, the monolith\'s movie part off: the movies contract table passes through the proxy; the ledger shows each step', { timeout: 240_000 }, async () => {
    await stage('forward again', () => stepWhenGuardsHold('PUT', '/admin/routes/movies/writes', { side: 'target', reason: 'forward again' }, 60_000))
    await stage('retire', async () => {
      await eventually('parity 0', parityIsZero, 60_000)
      await stepWhenGuardsHold('POST', '/admin/routes/movies/retire', { reason: 'catalog-db owns the catalog' }, 60_000)
    })
    await stage('monolith movie part off', async () => {
      await monolith.stop()
      monolith = await startService('monolith/server.ts', { ...serviceEnv(), DB_CONNECTION_STRING: legacyDb.url, PORT: String(monolith.port), DISABLED_DOMAINS: 'movies' })
      expect((await fetch(`${monolith.url}/api/movies`)).status).toBe(410)
    })
    await stage('movies contract through the proxy', async () => {
      let seq = 0
      for (const row of movieCases) {
        const proxy = proxies[seq % 2]!
        await runContractCase(moviesEndpoint, row, `${run}-${seq++}`, async (request) => {
          const res = await fetch(`${proxy.url}${request.url}`, { method: request.method, headers: request.headers, body: request.payload })
          expect(res.headers.get('x-upstream'), `${request.method} ${request.url}`).toBe('movies-service')
          return { status: res.status, body: await res.text() }
        })
      }
    })
    const entries = (await adminCall('GET', '/admin/ledger?route=movies&limit=100', undefined, proxies[1])).body.entries as LedgerEntry[]
    const steps = entries.filter((e) => e.stage === 'writes' || e.stage === 'retire').reverse()
    expect(steps.map((e) => [e.stage, e.toSide ?? null, e.actor])).toEqual([
      ['writes', 'target', 'admin'],
      ['writes', 'legacy', 'admin'],
      ['writes', 'target', 'admin'],
      ['retire', null, 'admin'],
    ])
    for (const e of steps) expect(e.guard, JSON.stringify(e)).toMatchObject({ drift: expect.any(Number), lagSeconds: expect.any(Number) })
    expect(steps.map((e) => e.reason)).toEqual(['reads at 100 %, catalog-db in step', 'going back', 'forward again', 'catalog-db owns the catalog'])
    // The read ramp is in the ledger too, step by step.
    expect(entries.filter((e) => !e.stage && e.actor === 'ramp').map((e) => e.to)).toEqual(expect.arrayContaining([50, 100]))
    console.log(`[catalog migration] read-your-writes reads in total: ${await readYourWritesCount()}`)
  })
})
