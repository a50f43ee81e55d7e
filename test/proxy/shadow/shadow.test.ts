// Shadow comparison through the proxy, against upstreams whose answers differ in controlled
// ways: the mismatch share is the injected one, ignored paths never count, the client's answer
// does not wait for the copy (slow, hung or dead shadow side), the budget drops and counts,
// credentials stay out of the report, and the admin endpoints check what they are given.
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { REPO_ROOT } from '../../helpers/processes.ts'
import { eventually } from '../../helpers/poll.ts'
import { metric } from '../../helpers/metrics.ts'
import { ConfigError } from '../../../lib/config.ts'
import { parseRouteMap } from '../../../proxy/model/route-map.ts'
import { admin, flagsFileAt, startProxy, startStubs, type ProxyUnderTest, type Stubs } from '../proxy-harness.ts'

/** An upstream answering with `answer(request)`; `hold` keeps requests unanswered until released. */
interface Programmable {
  url: string
  received: Array<{ method: string; url: string; headers: http.IncomingHttpHeaders; shadow: boolean; body: string }>
  answer: (req: http.IncomingMessage) => { status?: number; body: unknown; headers?: Record<string, string> }
  hold: boolean
  held: http.ServerResponse[]
  release(): void
  close(): Promise<void>
}

async function programmable(answer: Programmable['answer']): Promise<Programmable> {
  const up: Programmable = {
    url: '',
    received: [],
    answer,
    hold: false,
    held: [],
    release() {
      for (const res of up.held.splice(0)) res.destroy()
    },
    close: async () => {},
  }
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (chunk: Buffer) => chunks.push(chunk))
    req.on('end', () => {
      up.received.push({ method: req.method!, url: req.url!, headers: req.headers, shadow: req.headers['x-shadow'] === 'true', body: Buffer.concat(chunks).toString() })
      if (up.hold) return void up.held.push(res)
      const { status = 200, body, headers = {} } = up.answer(req)
      const text = JSON.stringify(body)
      res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text), ...headers })
      res.end(req.method === 'HEAD' ? undefined : text)
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  up.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  up.close = () =>
    new Promise<void>((resolve) => {
      up.release()
      server.closeAllConnections()
      server.close(() => resolve())
    })
  return up
}

const nOf = (req: http.IncomingMessage) => Number(new URL(req.url!, 'http://x').searchParams.get('n') ?? 0)
const movie = (n: number, title = `Movie ${n}`) => ({ items: [{ id: n, title, updated_at: new Date().toISOString() + Math.random() }], total: 1 })

/** A copy of the shipped route map with the movies route's shadow settings. */
function routesFile(shadow: Record<string, unknown> | undefined): string {
  const doc = JSON.parse(readFileSync(join(REPO_ROOT, 'proxy/routes.json'), 'utf8'))
  const movies = doc.routes.find((r: { name: string }) => r.name === 'movies')
  // The periodic parity check and the writer-store check would reach the programmable upstreams these tests count.
  delete movies.parity
  delete movies.writer
  if (shadow) movies.shadow = shadow
  else delete movies.shadow
  const file = join(mkdtempSync(join(tmpdir(), 'proxy-routes-')), 'routes.json')
  writeFileSync(file, JSON.stringify(doc))
  return file
}

let stubs: Stubs
let legacy: Programmable
let target: Programmable
let proxy: ProxyUnderTest | undefined

beforeAll(async () => {
  stubs = await startStubs()
  legacy = await programmable((req) => ({ body: movie(nOf(req)) }))
  target = await programmable((req) => ({ body: movie(nOf(req)) }))
})
afterAll(async () => {
  await Promise.all([stubs?.close(), legacy?.close(), target?.close()])
})
afterEach(async () => {
  await proxy?.close()
  proxy = undefined
  for (const up of [legacy, target]) {
    up.hold = false
    up.release()
    up.received = []
    up.answer = (req) => ({ body: movie(nOf(req)) })
  }
})

async function start(opts: { rollout?: number; shadow?: Record<string, unknown>; env?: Record<string, string> } = {}): Promise<ProxyUnderTest> {
  proxy = await startProxy(stubs, {
    MONOLITH_URL: legacy.url,
    MOVIES_SERVICE_URL: target.url,
    FLAGS_FILE: flagsFileAt(opts.rollout ?? 0),
    ROUTES_FILE: routesFile(opts.shadow),
    ...opts.env,
  })
  return proxy
}

const get = (p: ProxyUnderTest, url: string, headers: Record<string, string> = {}) => p.app.inject({ method: 'GET', url, headers: { 'x-user-id': 'viewer-1', ...headers } })
const diffs = async (p: ProxyUnderTest, route = 'movies') => (await p.ops.inject({ method: 'GET', url: `/admin/routes/${route}/diffs`, headers: admin })).json()
const putShadow = (p: ProxyUnderTest, body: unknown, route = 'movies') => p.ops.inject({ method: 'PUT', url: `/admin/routes/${route}/shadow`, headers: admin, payload: body as object })
const settled = (p: ProxyUnderTest, n: number) =>
  eventually(`${n} shadow outcomes`, async () => {
    const { counts, notCompared } = await diffs(p)
    return counts.match + counts.mismatch + counts.error + counts.dropped + notCompared.too_large === n
  })

describe('shadow comparison', () => {
  it('finds the injected mismatch share: every 4th answer of the target differs, at 100 % shadow', async () => {
    target.answer = (req) => ({ body: movie(nOf(req), nOf(req) % 4 === 0 ? 'Another title' : undefined) })
    const p = await start({ shadow: { percent: 100, ignore: ['$.items[*].updated_at'] } })
    for (let n = 1; n <= 40; n++) {
      const res = await get(p, `/api/movies?n=${n}`)
      expect([res.statusCode, res.headers['x-upstream'], res.json().items[0].id]).toEqual([200, 'monolith', n])
    }
    await settled(p, 40)
    const report = await diffs(p)
    expect(report.counts).toEqual({ match: 30, mismatch: 10, error: 0, dropped: 0 })
    // Each copy went to the side the flag did not pick, with the same method and path.
    expect(target.received.map((r) => [r.method, r.url, r.shadow])).toEqual(Array.from({ length: 40 }, (_, i) => ['GET', `/api/movies?n=${i + 1}`, true]))
    expect(report.mismatches).toHaveLength(10)
    expect(report.mismatches[0]).toMatchObject({
      method: 'GET',
      path: '/api/movies?n=40',
      primary: 'legacy',
      legacy: { upstream: 'monolith', status: 200 },
      target: { upstream: 'movies-service', status: 200 },
      differences: [{ path: '$.items[0].title', legacy: 'Movie 40', target: 'Another title' }],
    })
    const text = (await p.ops.inject({ url: '/metrics' })).body
    expect(metric(text, 'proxy_shadow_comparisons_total{route="movies",outcome="match"}')).toBe(30)
    expect(metric(text, 'proxy_shadow_comparisons_total{route="movies",outcome="mismatch"}')).toBe(10)
  })

  it('keeps the share at a partial shadow percent and a 50 % split (copies go both ways)', async () => {
    target.answer = (req) => ({ body: movie(nOf(req), nOf(req) % 4 === 0 ? 'Another title' : undefined) })
    const p = await start({ rollout: 50, shadow: { percent: 50, ignore: ['$..updated_at'] } })
    const sides = new Set<string>()
    for (let n = 1; n <= 200; n++) sides.add(String((await get(p, `/api/movies?n=${n}`, { 'x-user-id': `viewer-${n}` })).headers['x-upstream']))
    expect(sides).toEqual(new Set(['monolith', 'movies-service']))
    const copies = () => legacy.received.filter((r) => r.shadow).length + target.received.filter((r) => r.shadow).length
    await eventually('copies answered', async () => (await diffs(p)).counts.match + (await diffs(p)).counts.mismatch === copies())
    const { counts } = await diffs(p)
    const compared = counts.match + counts.mismatch
    // Binomial(200, 0.5): outside 60..140 has a probability below 1e-8.
    expect(compared).toBeGreaterThan(60)
    expect(compared).toBeLessThan(140)
    expect(legacy.received.some((r) => r.shadow) && target.received.some((r) => r.shadow)).toBe(true)
    // Which requests were copied is random; whether a copied one mismatches is not: exactly those with n % 4 = 0.
    const copiedNs = [...legacy.received, ...target.received].filter((r) => r.shadow).map((r) => Number(new URL(r.url, 'http://x').searchParams.get('n')))
    expect(counts.mismatch).toBe(copiedNs.filter((n) => n % 4 === 0).length)
  })

  it('never counts an ignored path, from the route map or set at run time; headers likewise', async () => {
    target.answer = (req) => ({ body: movie(nOf(req)), headers: { 'x-served-by': 'movies' } })
    const p = await start({ shadow: { percent: 100, ignore: ['$.items[*].updated_at'], ignoreHeaders: ['X-Served-By'], compareHeaders: ['x-served-by'] } })
    for (let n = 1; n <= 10; n++) await get(p, `/api/movies?n=${n}`)
    await settled(p, 10)
    expect((await diffs(p)).counts).toMatchObject({ match: 10, mismatch: 0 })

    // Without the rules, the same answers mismatch on exactly those two.
    const change = await putShadow(p, { percent: 100, ignore: [], ignoreHeaders: [], compareHeaders: ['x-served-by'] })
    expect(change.statusCode).toBe(200)
    expect(change.json()).toEqual({
      route: 'movies',
      shadow: { percent: 100, ignore: [], ignoreHeaders: [], compareHeaders: ['x-served-by'], methods: ['GET', 'HEAD'], detectNoise: false, noiseConfirmations: 3, noiseWindowSeconds: 600, noiseTtlSeconds: 3600 },
    })
    await get(p, '/api/movies?n=11')
    await settled(p, 11)
    const [last] = (await diffs(p)).mismatches
    expect(last.differences.map((d: { path: string }) => d.path)).toEqual(['header:x-served-by', '$.items[0].updated_at'])
  })

  it('matches a target that differs only by headers clients do not read (x-served-by, via); header-only differences are reported apart', async () => {
    target.answer = (req) => ({ body: movie(nOf(req)), headers: { 'x-served-by': 'movies-service', via: '1.1 envoy' } })
    const p = await start({ shadow: { percent: 100, ignore: ['$.items[*].updated_at'] } })
    for (let n = 1; n <= 5; n++) await get(p, `/api/movies?n=${n}`)
    await settled(p, 5)
    expect((await diffs(p)).counts).toMatchObject({ match: 5, mismatch: 0 })
    expect((await diffs(p)).headerOnlyMismatches).toBe(0)

    // A header the route compares (cache-control describes the content) differs: a mismatch, of the header-only kind.
    target.answer = (req) => ({ body: movie(nOf(req)), headers: { 'cache-control': 'max-age=600' } })
    await get(p, '/api/movies?n=6')
    await settled(p, 6)
    const report = await diffs(p)
    expect(report.counts).toMatchObject({ match: 5, mismatch: 1 })
    expect(report.headerOnlyMismatches).toBe(1)
    expect(report.mismatches[0]).toMatchObject({ kind: 'headers', differences: [{ path: 'header:cache-control' }] })
  })

  it('learns noise the Diffy way once confirmed by 3 requests: a leaf on which legacy disagrees with itself stops counting, a real difference still counts', async () => {
    // served_at differs between any two answers, on both sides; the title differs for n = 5 only.
    let calls = 0
    legacy.answer = (req) => ({ body: { ...movie(nOf(req)), served_at: ++calls } })
    target.answer = (req) => ({ body: { ...movie(nOf(req), nOf(req) === 5 ? 'Other' : undefined), served_at: -1 } })
    const p = await start({ shadow: { percent: 100, ignore: ['$..updated_at'], detectNoise: true } })
    for (let n = 1; n <= 8; n++) {
      await get(p, `/api/movies?n=${n}`)
      await settled(p, n) // one comparison at a time: which ones came before the rule was learned is then known
    }
    const report = await diffs(p)
    // n = 1 and 2 confirm served_at without teaching it (mismatches); n = 3 is the third confirmation.
    expect(report.counts).toMatchObject({ match: 5, mismatch: 3 })
    expect(report.learnedNoise).toEqual({ paths: ['$.served_at'], headers: [] })
    expect(report.mismatches[0].differences).toEqual([{ path: '$.items[0].title', legacy: 'Movie 5', target: 'Other' }])
    expect(report.mismatches.slice(1).map((m: { path: string }) => m.path)).toEqual(['/api/movies?n=2', '/api/movies?n=1'])
    // The second legacy call is made only when the first comparison disagreed: three to learn, once for n = 5.
    expect(legacy.received.filter((r) => r.shadow)).toHaveLength(4)
  })

  it('copies only GET and HEAD unless the route lists more methods', async () => {
    const p = await start({ shadow: { percent: 100, ignore: ['$..updated_at'] } })
    for (const method of ['POST', 'PUT', 'DELETE', 'HEAD', 'GET'] as const) await p.app.inject({ method, url: '/api/movies?n=1', payload: method === 'POST' || method === 'PUT' ? { a: 1 } : undefined })
    await settled(p, 2)
    expect(target.received.map((r) => r.method)).toEqual(['HEAD', 'GET'])
    await p.close()
    target.received = []

    const q = await start({ shadow: { percent: 100, ignore: ['$..updated_at'], methods: ['POST'] } })
    await q.app.inject({ method: 'POST', url: '/api/movies?n=2', payload: { title: 'Сталкер' } })
    await q.app.inject({ method: 'GET', url: '/api/movies?n=3' })
    await settled(q, 1)
    // The same body as the primary got (the buffered request body), with its content type.
    expect(target.received.map((r) => [r.method, r.url, r.body, r.headers['content-type']])).toEqual([['POST', '/api/movies?n=2', '{"title":"Сталкер"}', 'application/json']])
    expect(legacy.received.filter((r) => r.method === 'POST').pop()?.body).toBe('{"title":"Сталкер"}')
  })

  it('answers the client in full while the shadow side still holds the copy; the copy times out as an error', async () => {
    target.hold = true
    const p = await start({ shadow: { percent: 100 }, env: { SHADOW_TIMEOUT_MS: '500' } })
    const res = await get(p, '/api/movies?n=7')
    expect([res.statusCode, res.json().items[0].id]).toEqual([200, 7])
    // The client has its whole answer, and the copy is (or will be) held unanswered by the target.
    await eventually('the copy reaches the target', () => target.held.length === 1)
    expect(target.held[0].writableEnded).toBe(false)
    await eventually('the copy times out', async () => (await diffs(p)).counts.error === 1)
    const report = await diffs(p)
    expect(report.errors[0]).toMatchObject({ method: 'GET', path: '/api/movies?n=7', upstream: 'movies-service', error: expect.stringMatching(/no complete answer within 500 ms|timeout/i) })
    expect(report.inFlight).toBe(0)
  })

  it('answers the client as usual when the shadow side is down (counted as an error)', async () => {
    const p = await start({ shadow: { percent: 100 } })
    const dead = await programmable(() => ({ body: null }))
    await dead.close()
    await p.close()
    proxy = await startProxy(stubs, { MONOLITH_URL: legacy.url, MOVIES_SERVICE_URL: dead.url, FLAGS_FILE: flagsFileAt(0), ROUTES_FILE: routesFile({ percent: 100 }) })
    for (let n = 1; n <= 3; n++) {
      const res = await get(proxy, `/api/movies?n=${n}`)
      expect([res.statusCode, res.headers['x-upstream'], res.json().items[0].id]).toEqual([200, 'monolith', n])
    }
    await settled(proxy, 3)
    expect((await diffs(proxy)).counts).toEqual({ match: 0, mismatch: 0, error: 3, dropped: 0 })
    expect((await diffs(proxy)).errors[0].error).toMatch(/ECONNREFUSED/)
  })

  it('drops and counts copies beyond the in-flight budget', async () => {
    target.hold = true
    const p = await start({ shadow: { percent: 100, ignore: ['$..updated_at'] }, env: { SHADOW_MAX_IN_FLIGHT: '2', SHADOW_TIMEOUT_MS: '30000' } })
    for (let n = 1; n <= 2; n++) await get(p, `/api/movies?n=${n}`)
    await eventually('two copies held', () => target.held.length === 2)
    for (let n = 3; n <= 10; n++) expect((await get(p, `/api/movies?n=${n}`)).statusCode).toBe(200)
    expect((await diffs(p)).counts).toEqual({ match: 0, mismatch: 0, error: 0, dropped: 8 })
    expect((await diffs(p)).inFlight).toBe(2)
    target.hold = false
    target.release() // the two held copies fail (connection dropped)
    await settled(p, 10)
    expect((await diffs(p)).counts).toEqual({ match: 0, mismatch: 0, error: 2, dropped: 8 })
    // Budget free again: the next copies are compared.
    await get(p, '/api/movies?n=11')
    await settled(p, 11)
    expect((await diffs(p)).counts.match).toBe(1)
    const text = (await p.ops.inject({ url: '/metrics' })).body
    expect(metric(text, 'proxy_shadow_comparisons_total{route="movies",outcome="dropped"}')).toBe(8)
  })

  it('forwards the client credentials to the shadow side but never reports them', async () => {
    const secret = 'Bearer s3cr3t-client-token-42'
    // Both sides echo the credentials, and differ on them: a careless report would show them.
    legacy.answer = (req) => ({ body: { who: `legacy:${req.headers.authorization}|${req.headers.cookie}` } })
    target.answer = (req) => ({ body: { who: `target:${req.headers.authorization}|${req.headers.cookie}` } })
    const p = await start({ shadow: { percent: 100 } })
    await get(p, '/api/movies?n=1&api_key=querysecret123', { authorization: secret, cookie: 'session=cookie-secret-987' })
    await settled(p, 1)
    expect(target.received[0].headers.authorization).toBe(secret)
    expect(target.received[0].headers.cookie).toBe('session=cookie-secret-987')
    const report = await diffs(p)
    expect(report.counts.mismatch).toBe(1)
    expect(report.mismatches[0].differences).toEqual([{ path: '$.who', legacy: '[redacted]', target: '[redacted]' }])
    expect(report.mismatches[0].path).toBe('/api/movies?n=1&api_key=%5Bredacted%5D')
    for (const leaked of ['s3cr3t-client-token-42', 'cookie-secret-987', 'querysecret123']) expect(JSON.stringify(report)).not.toContain(leaked)
    // (The access log keeps the URL as it always did; headers are in no log line.)
    for (const leaked of ['s3cr3t-client-token-42', 'cookie-secret-987']) expect(JSON.stringify(p.logs.lines)).not.toContain(leaked)
  })

  it('does not compare an answer over the size cap (counted apart), nor a fallback answer', async () => {
    legacy.answer = () => ({ body: { big: 'x'.repeat(2_000) } })
    const p = await start({ shadow: { percent: 100 }, env: { SHADOW_MAX_BODY_BYTES: '1000' } })
    const res = await get(p, '/api/movies?n=1')
    expect(res.json().big).toHaveLength(2_000)
    await eventually('counted as too large', async () => (await diffs(p)).notCompared.too_large === 1)
    expect(target.received).toHaveLength(0) // not even sent
    await p.close()
    legacy.received = []

    // Rollout 100: the target answers 500, legacy answers instead; legacy vs legacy is no comparison.
    target.answer = () => ({ status: 500, body: { error: 'boom' } })
    legacy.answer = (req) => ({ body: movie(nOf(req)) })
    const q = await start({ rollout: 100, shadow: { percent: 100 } })
    const fallback = await get(q, '/api/movies?n=2')
    expect([fallback.statusCode, fallback.headers['x-route-reason']]).toEqual([200, 'fallback'])
    await eventually('counted as primary failed', async () => (await diffs(q)).notCompared.primary_failed === 1)
    expect(legacy.received).toHaveLength(1)
  })
})

// Issue 32 (5): the noise detector cannot be taught to look away. The attacker inserts records
// concurrently, so that legacy's second answer (the noise detector's) holds a list that differs
// from its first; the target is deliberately wrong (it answers another title for some records)
// and must stay reported as mismatching however often the attempt is repeated.
describe('shadow noise detection under a poisoning attempt', () => {
  type Record_ = { id: number; title: string }
  const titles = ['Alien', 'Brazil', 'Heat', 'Ran', 'Solaris', 'Stalker', 'Vertigo', 'Zodiac', 'Ikiru', 'Psycho']
  const seed = (): Record_[] => titles.slice(0, 3).map((title, i) => ({ id: i + 1, title }))
  /** The wrong target: every even record's title upper-cased. */
  const wrong = (r: Record_) => (r.id % 2 === 0 ? { ...r, title: r.title.toUpperCase() } : r)
  const isShadow = (req: http.IncomingMessage) => req.headers['x-shadow'] === 'true'

  const cases: Array<[string, (store: Record_[]) => void, (store: Record_[]) => Record_[]]> = [
    // The list grows between legacy's two answers: the old detector learned `$[*]`, the whole list.
    ['a record appended (the list grows)', (store) => store.push({ id: store.length + 1, title: titles[store.length % titles.length]! }), (store) => store],
    // Newest first, a page of 3: the list keeps its length, every record moves one place down
    // (the old detector learned `$[*].id` and `$[*].title`).
    ['a record inserted at the head of a fixed-size page (the list shifts)', (store) => store.push({ id: store.length + 1, title: titles[store.length % titles.length]! }), (store) => [...store].reverse().slice(0, 3)],
  ]

  it.each(cases)('%s: nothing is learned and the wrong target stays a mismatch every time', async (_name, insert, page) => {
    const store = seed()
    // Legacy's second call is the noise detector's (the only copy legacy gets at rollout 0): the insert lands just before it.
    legacy.answer = (req) => {
      if (isShadow(req)) insert(store)
      return { body: page(store) }
    }
    target.answer = () => ({ body: page(store).map(wrong) })
    const p = await start({ shadow: { percent: 100, detectNoise: true } })
    const attempts = 8 // well beyond the 3 confirmations a leaf needs
    for (let n = 1; n <= attempts; n++) {
      expect((await get(p, `/api/movies?page=1&n=${n}`, { 'x-user-id': `viewer-${n}` })).statusCode).toBe(200)
      await settled(p, n)
    }
    const report = await diffs(p)
    expect(report.counts).toEqual({ match: 0, mismatch: attempts, error: 0, dropped: 0 })
    // Each comparison asked legacy again, and legacy's two answers did differ (the attempt took place).
    expect(legacy.received.filter((r) => r.shadow)).toHaveLength(attempts)
    expect(store).toHaveLength(3 + attempts)
    for (const m of report.mismatches) expect(m.differences.map((d: { path: string }) => d.path)).toContainEqual(expect.stringMatching(/^\$\[\d\]\.title$/))
    expect(report.learnedNoise).toEqual({ paths: [], headers: [] })
    const shown = (await p.ops.inject({ url: '/admin/routes/movies/shadow', headers: admin })).json()
    expect([shown.learnedNoise, shown.pendingNoise]).toEqual([[], []])
  })

  it('a difference on a whole list, an index, an identity or a key on one side is never learned, however often confirmed', async () => {
    let calls = 0
    // Each legacy answer differs from the one before in unlearnable ways only.
    legacy.answer = () => {
      calls++
      return { body: { tags: ['a', `t${calls}`], owner_id: calls, [`k${calls}`]: 1, items: Array.from({ length: calls % 2 }, () => ({ id: 1 })) } }
    }
    target.answer = () => ({ body: { tags: [], owner_id: 0, items: [] } })
    const p = await start({ shadow: { percent: 100, detectNoise: true, noiseConfirmations: 2 } })
    for (let n = 1; n <= 6; n++) {
      await get(p, `/api/movies?n=${n}`)
      await settled(p, n)
    }
    expect((await diffs(p)).counts).toMatchObject({ match: 0, mismatch: 6 })
    const shown = (await p.ops.inject({ url: '/admin/routes/movies/shadow', headers: admin })).json()
    expect([shown.learnedNoise, shown.pendingNoise]).toEqual([[], []])
  })

  it('lists what it learned (when, confirmations, expiry), resets it through the admin API and lets it expire, each change in the ledger with its actor', async () => {
    let calls = 0
    // served_at differs between any two legacy answers: real noise. The target also has a wrong title for record 4.
    const one = (req: http.IncomingMessage) => Number(new URL(req.url!, 'http://x').searchParams.get('id'))
    legacy.answer = (req) => ({ body: { id: one(req), title: `Movie ${one(req)}`, served_at: ++calls } })
    target.answer = (req) => ({ body: { id: one(req), title: one(req) === 4 ? 'Wrong' : `Movie ${one(req)}`, served_at: -1 } })
    const p = await start({ shadow: { percent: 100, detectNoise: true } })
    const ledger = async () => (await p.ops.inject({ url: '/admin/ledger?route=movies', headers: admin })).json().entries as Array<Record<string, any>>
    const shadowState = async () => (await p.ops.inject({ url: '/admin/routes/movies/shadow', headers: admin })).json()
    let n = 0
    const request = async (id: number) => {
      await get(p, `/api/movies?id=${id}&n=${++n}`)
      await settled(p, n)
    }

    // Two different requests confirm served_at: shown as pending, nothing learned yet.
    await request(1)
    await request(2)
    let state = await shadowState()
    expect(state.learnedNoise).toEqual([])
    expect(state.pendingNoise).toEqual([{ rule: '$.served_at', confirmations: 2, needed: 3, firstSeenAt: expect.any(String) }])
    // The third teaches it; the comparison of the fourth (a wrong title) still mismatches on the title alone.
    await request(3)
    await request(4)
    state = await shadowState()
    expect(state.learnedNoise).toEqual([{ rule: '$.served_at', learnedAt: expect.any(String), expiresAt: expect.any(String), confirmations: 3 }])
    expect(Date.parse(state.learnedNoise[0].expiresAt) - Date.parse(state.learnedNoise[0].learnedAt)).toBe(3_600_000)
    expect((await diffs(p)).counts).toMatchObject({ match: 1, mismatch: 3 })
    expect((await diffs(p)).mismatches[0].differences).toEqual([{ path: '$.title', legacy: 'Movie 4', target: 'Wrong' }])
    await eventually('the learned rule in the ledger', async () => (await ledger()).some((e) => e.shadow?.change === 'noise-learned'))
    expect((await ledger()).find((e) => e.shadow?.change === 'noise-learned')).toMatchObject({
      route: 'movies',
      stage: 'shadow',
      actor: 'shadow',
      source: 'shadow',
      shadow: { change: 'noise-learned', rules: [{ rule: '$.served_at', confirmations: 3 }] },
    })

    // Reset through the admin API: the rule is gone, served_at counts again, the ledger names the token.
    const reset = await p.ops.inject({ method: 'DELETE', url: '/admin/routes/movies/shadow/noise?reason=suspicious%20rule', headers: admin })
    expect(reset.statusCode).toBe(200)
    expect(reset.json()).toMatchObject({ route: 'movies', dropped: [{ rule: '$.served_at' }] })
    expect((await shadowState()).learnedNoise).toEqual([])
    expect((await ledger())[0]).toMatchObject({ stage: 'shadow', actor: 'admin', source: 'admin', reason: 'suspicious rule', shadow: { change: 'noise-reset', rules: [{ rule: '$.served_at' }] } })
    await request(5)
    expect((await diffs(p)).mismatches[0].differences).toEqual([{ path: '$.served_at', legacy: expect.any(Number), target: -1 }])

    // Settings through the admin API are in the ledger too; a rule learned with a 1 s TTL expires.
    const put = await p.ops.inject({ method: 'PUT', url: '/admin/routes/movies/shadow', headers: admin, payload: { percent: 100, noiseTtlSeconds: 1, reason: 'short-lived noise' } })
    expect(put.statusCode).toBe(200)
    expect((await ledger())[0]).toMatchObject({ stage: 'shadow', actor: 'admin', source: 'admin', reason: 'short-lived noise', from: 100, to: 100, shadow: { change: 'settings', settings: { noiseTtlSeconds: 1, detectNoise: true } } })
    for (const id of [6, 7, 8]) await request(id)
    await eventually('learned again', async () => (await ledger()).filter((e) => e.shadow?.change === 'noise-learned').length === 2)
    await eventually('the rule expires', async () => (await shadowState()).learnedNoise.length === 0, 10_000)
    await eventually('the expiry in the ledger', async () => (await ledger())[0]?.shadow?.change === 'noise-expired')
    expect((await ledger())[0]).toMatchObject({ stage: 'shadow', actor: 'shadow', source: 'shadow', shadow: { change: 'noise-expired', rules: [{ rule: '$.served_at', confirmations: 3 }] } })
    await request(9)
    expect((await diffs(p)).mismatches[0].differences.map((d: { path: string }) => d.path)).toEqual(['$.served_at'])
  })
})

describe('shadow comparison and a client that goes away', () => {
  it('stops capturing, sends no copy and counts client_gone when the client drops mid-answer', async () => {
    const big = 'x'.repeat(20 * 1024 * 1024)
    legacy.answer = () => ({ body: { big } })
    const p = await start({ shadow: { percent: 100 }, env: { SHADOW_MAX_BODY_BYTES: String(64 * 1024 * 1024) } })
    await p.app.listen({ port: 0, host: '127.0.0.1' })
    const { port } = p.app.server.address() as AddressInfo
    await new Promise<void>((resolve, reject) => {
      const req = http.get({ host: '127.0.0.1', port, path: '/api/movies?n=1', headers: { 'x-user-id': 'viewer-1' } }, (res) => {
        res.once('data', () => {
          req.destroy()
          resolve()
        })
      })
      req.on('error', (error) => (req.destroyed ? undefined : reject(error)))
    })
    await eventually('counted as client gone', async () => (await diffs(p)).notCompared.client_gone === 1)
    expect(target.received).toHaveLength(0)
    // The proxy still serves, and compares, the next requests.
    legacy.answer = (req) => ({ body: movie(nOf(req)) })
    await p.app.inject({ url: '/api/movies?n=2', headers: { 'x-user-id': 'viewer-1' } })
    await eventually('the next copy compared', async () => (await diffs(p)).counts.error + (await diffs(p)).counts.mismatch + (await diffs(p)).counts.match === 1)
  })
})

describe('shadow admin endpoints', () => {
  it('validate what they are given, naming the field', async () => {
    const p = await start()
    const cases: Array<[unknown, number, RegExp]> = [
      [{ percent: 101 }, 400, /percent/],
      [{ percent: -1 }, 400, /percent/],
      [{ ignore: ['$.a'] }, 400, /percent/],
      [{ percent: 10, ignore: ['a.b'] }, 400, /body\/ignore\/0: "a.b" must start with "\$"/],
      [{ percent: 10, ignore: ['$.ok', '$.a['] }, 400, /body\/ignore\/1/],
      [{ percent: 10, methods: ['POST'] }, 400, /additional properties/],
      [{ percent: 10, ignoreHeaders: ['bad header'] }, 400, /ignoreHeaders/],
      [[1], 400, /body must be object/],
    ]
    for (const [body, status, message] of cases) {
      const res = await putShadow(p, body)
      expect([res.statusCode, res.json().error], JSON.stringify(body)).toEqual([status, expect.stringMatching(message)])
    }
    expect((await putShadow(p, { percent: 10 }, 'nope')).statusCode).toBe(404)
    expect((await p.ops.inject({ url: '/admin/routes/nope/diffs', headers: admin })).statusCode).toBe(404)
    const noTarget = await putShadow(p, { percent: 10 }, 'events')
    expect([noTarget.statusCode, noTarget.json().error]).toEqual([409, 'route "events" has no target: there is nothing to compare with'])
    expect((await p.ops.inject({ url: '/admin/routes/events/diffs', headers: admin })).statusCode).toBe(409)
    expect((await p.ops.inject({ method: 'PUT', url: '/admin/routes/movies/shadow', payload: { percent: 10 } })).statusCode).toBe(401)
    expect((await p.ops.inject({ url: '/admin/routes/movies/diffs' })).statusCode).toBe(401)
    // Nothing was changed by the refused calls.
    expect((await diffs(p)).shadow.percent).toBe(0)
  })

  it('turns shadowing on and off at run time', async () => {
    const p = await start()
    await get(p, '/api/movies?n=1')
    expect((await putShadow(p, { percent: 100, ignore: ['$..updated_at'] })).statusCode).toBe(200)
    await get(p, '/api/movies?n=2')
    await settled(p, 1)
    expect((await putShadow(p, { percent: 0 })).json().shadow.ignore).toEqual(['$..updated_at'])
    await get(p, '/api/movies?n=3')
    expect(target.received.map((r) => r.url)).toEqual(['/api/movies?n=2'])
  })
})

describe('shadow settings in the route map', () => {
  const map = (shadow: unknown, target = true) => ({
    upstreams: [
      { name: 'a', url: 'http://127.0.0.1:1' },
      { name: 'b', url: 'http://127.0.0.1:2' },
    ],
    routes: [{ name: 'r', prefix: '/', legacy: 'a', ...(target ? { target: 'b', flag: 'f' } : {}), shadow }],
  })
  const cases: Array<[string, unknown, boolean, RegExp]> = [
    ['percent over 100', { percent: 101 }, true, /\/routes\/0\/shadow\/percent/],
    ['percent missing', { ignore: [] }, true, /\/routes\/0\/shadow/],
    ['a bad JSON path', { percent: 5, ignore: ['$.ok', 'nope'] }, true, /\/routes\/0\/shadow\/ignore\/1: "nope" must start with "\$"/],
    ['an unknown field', { percent: 5, sample: 3 }, true, /\/routes\/0\/shadow/],
    ['an unknown method', { percent: 5, methods: ['FETCH'] }, true, /\/routes\/0\/shadow\/methods\/0/],
    ['a route without a target', { percent: 5 }, false, /\/routes\/0\/shadow: a route without a target has nothing to compare with/],
  ]
  it.each(cases)('refuses %s, naming the field', (_name, shadow, withTarget, message) => {
    expect(() => parseRouteMap(map(shadow, withTarget))).toThrow(ConfigError)
    expect(() => parseRouteMap(map(shadow, withTarget))).toThrow(message)
  })
  it('accepts a full entry', () => {
    const shadow = { percent: 12.5, ignore: ['$.items[*].updated_at', '$..etag'], ignoreHeaders: ['x-served-by'], methods: ['GET', 'POST'], detectNoise: true }
    expect(parseRouteMap(map(shadow)).routes[0].shadow).toEqual(shadow)
  })
})
