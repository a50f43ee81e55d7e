// One request, one trace, in a real Jaeger (built from its Go module, dev/jaeger): the proxy,
// the monolith, the movies service and the events service as processes exporting OTLP to it,
// on the run's PostgreSQL (legacy-db for the monolith, a catalog-db of its own for the movies
// service) and Kafka. A POST /api/movies at 100 % makes one trace from the proxy's decision
// through movies-service, its SQL and the outbox relay's publishes to the events service's
// processing and to the monolith's replica applying the change (movie-state); a read that falls
// back shows both upstream attempts; a client's traceparent is continued; log lines inside the
// request carry its trace id.
import { randomBytes } from 'node:crypto'
import { createServer as createHttpServer, type IncomingHttpHeaders } from 'node:http'
import { createServer, type AddressInfo, type Socket } from 'node:net'
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import WebSocket, { WebSocketServer } from 'ws'
import { startJaeger, type JaegerSpan, type JaegerTrace, type RunningJaeger } from '../../dev/jaeger/jaeger.ts'
import type { TestDatabase } from '../../dev/pg-admin.ts'
import { deleteTopics } from '../events-service/support.ts'
import { pgAdminUrl, testDatabase } from '../helpers/infra.ts'
import { eventually } from '../helpers/poll.ts'
import { startService, type ServiceProcess } from '../helpers/processes.ts'
import { kafkaClient, topicsOf, uniqueName } from '../outbox/support.ts'
import { ADMIN_TOKEN, flagsFileAt } from '../proxy/proxy-harness.ts'
import { ownedDatabase, type OwnedDatabase } from '../replication/support.ts'

const brokers = () => inject('kafkaBrokers')
const prefix = `${uniqueName('e2e-trace')}.`
let jaeger: RunningJaeger
let database: TestDatabase
/** The movies service's own store (catalog-db), as in compose and the chart. */
let catalogDb: OwnedDatabase
let monolith: ServiceProcess
let movies: ServiceProcess
let events: ServiceProcess
let proxy: ServiceProcess
/** A second proxy whose movies-service is unreachable: reads fall back to the monolith. */
let fallbackProxy: ServiceProcess

beforeAll(async () => {
  ;[jaeger, database, catalogDb] = await Promise.all([startJaeger(), testDatabase(), ownedDatabase(pgAdminUrl(), 'catalog')])
  // Short export delay: the spans reach Jaeger within the test's patience.
  const otel = { OTEL_EXPORTER_OTLP_ENDPOINT: jaeger.otlpEndpoint, OTEL_BSP_SCHEDULE_DELAY: '200', LOG_LEVEL: 'info' }
  const kafka = { KAFKA_BROKERS: brokers(), KAFKA_TOPIC_PREFIX: prefix, KAFKA_LOG_LEVEL: 'error' }
  ;[monolith, movies, events] = await Promise.all([
    startService('monolith/server.ts', { DB_CONNECTION_STRING: database.url, ...kafka, ...otel }),
    startService('movies-service/server.ts', { DB_CONNECTION_STRING: catalogDb.url, ...kafka, ...otel }),
    startService('events-service/server.ts', { ...kafka, ...otel, KAFKA_CONSUMER_GROUP: uniqueName('e2e-trace-events') }),
  ])
  // Both replicas caught up with movie-state (the monolith's movies from before replication
  // went through it at start): a change written now is a batch of its own on the other side.
  for (const service of [monolith, movies]) {
    await eventually(`${service.url}: movie-state consumer running and caught up`, async () => {
      const { replication } = (await (await fetch(`${service.url}/internal/parity`)).json()) as { replication: { unapplied_messages: number | null; consumer: { running: boolean } | null } }
      return replication.consumer?.running === true && replication.unapplied_messages === 0
    }, 120_000)
  }
  const proxyEnv = { MONOLITH_URL: monolith.url, EVENTS_SERVICE_URL: events.url, ADMIN_TOKEN, ...otel }
  ;[proxy, fallbackProxy] = await Promise.all([
    startService('proxy/server.ts', { ...proxyEnv, FLAGS_FILE: flagsFileAt({ 'movies-migration': 100, 'movies-migration-writes': 100 }), MOVIES_SERVICE_URL: movies.url }, { readyPath: '/health' }),
    startService('proxy/server.ts', { ...proxyEnv, FLAGS_FILE: flagsFileAt(100), MOVIES_SERVICE_URL: 'http://127.0.0.1:9' }, { readyPath: '/health' }),
  ])
  // The writer flag is at 100 %: the stores hand the writes over to the movies service first.
  await eventually('the movies service takes the writes', async () => {
    const state = (await (await fetch(`${movies.url}/internal/writer`)).json()) as { writer: boolean; catchingUp: boolean }
    return state.writer && !state.catchingUp
  }, 60_000)
  // … and the proxy has seen it (its first try for a write is the store that writes).
  await eventually('the proxy sees the movies service write', async () => {
    const stage = (await (await fetch(`${proxy.opsUrl}/admin/routes/movies/stage`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } })).json()) as { writers?: { writer: string } }
    return stage.writers?.writer === 'target'
  }, 30_000)
}, 180_000)

afterAll(async () => {
  await Promise.all([proxy?.stop(), fallbackProxy?.stop()])
  await Promise.all([monolith?.stop(), movies?.stop(), events?.stop()])
  await deleteTopics(kafkaClient(brokers().split(','), 'e2e-trace-cleanup'), Object.values(topicsOf(prefix))).catch(() => {})
  await Promise.all([database?.drop(), catalogDb?.drop()])
  await jaeger?.stop()
})

const hex = (bytes: number) => randomBytes(bytes).toString('hex')
const tag = (span: JaegerSpan, key: string) => span.tags.find((t) => t.key === key)?.value
const serviceOf = (trace: JaegerTrace, span: JaegerSpan) => trace.processes[span.processID]?.serviceName
const parentOf = (span: JaegerSpan) => span.references.find((r) => r.refType === 'CHILD_OF')?.spanID
/** Whether `ancestor` is on `span`'s chain of parents in `trace`. */
function descends(trace: JaegerTrace, span: JaegerSpan, ancestor: JaegerSpan): boolean {
  const byId = new Map(trace.spans.map((s) => [s.spanID, s]))
  for (let p = parentOf(span); p; p = byId.has(p) ? parentOf(byId.get(p)!) : undefined) if (p === ancestor.spanID) return true
  return false
}

/** service:kind pairs present in the trace, e.g. 'proxy:server', 'movies-service:producer'. */
const kinds = (trace: JaegerTrace) => trace.spans.map((s) => `${serviceOf(trace, s)}:${tag(s, 'span.kind') ?? 'internal'}`)
/** Whether the trace holds a span of each service:kind (each process exports on its own schedule). */
const holds = (...wanted: string[]) => (trace: JaegerTrace) => wanted.every((w) => kinds(trace).includes(w))

/** Polls Jaeger until the trace holds spans satisfying `complete`. */
async function traceWith(traceId: string, what: string, complete: (trace: JaegerTrace) => boolean): Promise<JaegerTrace> {
  let trace: JaegerTrace | undefined
  await eventually(`trace ${traceId} in Jaeger: ${what}`, async () => {
    trace = await jaeger.trace(traceId)
    return trace !== undefined && complete(trace)
  }, 60_000)
  return trace!
}

describe('one request, one trace (real Jaeger)', () => {
  it('POST /api/movies at 100 %: proxy server span with its decision, client span, movies-service, its SQL, the relay publishes, the events consumer and the monolith\'s replica, all in the client\'s trace', { timeout: 120_000 }, async () => {
    const traceId = hex(16)
    const clientSpanId = hex(8)
    const res = await fetch(`${proxy.url}/api/movies`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-user-id': 'tracer-1', traceparent: `00-${traceId}-${clientSpanId}-01` },
      body: JSON.stringify({ title: 'Traced', description: 'One trace', rating: 7.5, genres: ['Drama'] }),
    })
    expect(res.status).toBe(201)
    expect(res.headers.get('x-upstream')).toBe('movies-service')

    const bySpan = (t: JaegerTrace, service: string, test: (s: JaegerSpan) => boolean) => t.spans.find((s) => serviceOf(t, s) === service && test(s))
    const consumed = (t: JaegerTrace) => bySpan(t, 'events-service', (s) => s.operationName.startsWith('process ') && tag(s, 'span.kind') === 'consumer')
    const replicated = (t: JaegerTrace) => bySpan(t, 'monolith', (s) => s.operationName === `process ${prefix}movie-state` && tag(s, 'span.kind') === 'consumer')
    const trace = await traceWith(traceId, 'from the proxy to the events consumer and the monolith\'s replica', (t) => consumed(t) !== undefined && replicated(t) !== undefined && holds('proxy:server', 'proxy:client', 'proxy:internal', 'movies-service:server', 'movies-service:client')(t) && kinds(t).some((k) => k.endsWith(':producer')))

    // The proxy's SERVER span continues the client's traceparent (same trace, the client's span as parent).
    const server = bySpan(trace, 'proxy', (s) => tag(s, 'span.kind') === 'server')!
    expect(server).toBeDefined()
    expect(parentOf(server)).toBe(clientSpanId)
    expect(tag(server, 'proxy.route')).toBe('movies')
    expect(tag(server, 'proxy.side')).toBe('target')
    // A write goes to the writer side (movies-migration-writes), whatever the read flag says.
    expect(tag(server, 'proxy.reason')).toBe('writes')
    expect(tag(server, 'proxy.flag')).toBe('movies-migration')
    expect(tag(server, 'proxy.flag.percent')).toBe(100)
    expect(tag(server, 'proxy.upstream')).toBe('movies-service')
    expect(tag(server, 'proxy.shadow.selected')).toBe(false)
    expect(tag(server, 'proxy.breaker.state')).toBe('closed')

    // proxy SERVER -> upstream attempt -> undici CLIENT -> movies-service SERVER -> SQL
    const attempt = bySpan(trace, 'proxy', (s) => s.operationName === 'upstream movies-service')!
    expect(parentOf(attempt)).toBe(server.spanID)
    expect(tag(attempt, 'proxy.breaker.state')).toBe('closed')
    const client = bySpan(trace, 'proxy', (s) => tag(s, 'span.kind') === 'client' && parentOf(s) === attempt.spanID)!
    expect(client).toBeDefined()
    const moviesServer = bySpan(trace, 'movies-service', (s) => tag(s, 'span.kind') === 'server')!
    expect(parentOf(moviesServer)).toBe(client.spanID)
    // The request's SQL (the movie and its outbox row, one transaction) under movies-service's server span.
    const under = (span: JaegerSpan, ancestor: JaegerSpan) => descends(trace, span, ancestor)
    const sql = trace.spans.filter((s) => serviceOf(trace, s) === 'movies-service' && (tag(s, 'db.system.name') ?? tag(s, 'db.system')) === 'postgresql' && under(s, moviesServer))
    expect(sql.map((s) => String(tag(s, 'db.query.text') ?? tag(s, 'db.statement')))).toEqual(expect.arrayContaining([expect.stringContaining('INSERT INTO movies'), expect.stringContaining('INSERT INTO outbox')]))
    if (process.env.TRACE_DUMP) console.log(trace.spans.map((s) => `${serviceOf(trace, s)} ${s.operationName} ${s.spanID} <- ${parentOf(s)}`).join('\n'))

    // The outbox relay publishes in the trace of the transaction that wrote the rows: the
    // movie event and the movie's new state, both from movies-service's own catalog-db.
    const producer = trace.spans.find((s) => tag(s, 'span.kind') === 'producer' && s.operationName === `send ${prefix}movie-events`)!
    expect(serviceOf(trace, producer)).toBe('movies-service')
    expect(under(producer, moviesServer)).toBe(true)
    const consumer = consumed(trace)!
    expect(parentOf(consumer)).toBe(producer.spanID)
    expect(tag(consumer, 'messaging.destination.name')).toBe(`${prefix}movie-events`)

    // Replication: the movie's state goes to movie-state in the same trace, and the monolith's
    // replica applies it to legacy-db in a CONSUMER span continuing it, its SQL under it.
    const stateProducer = trace.spans.find((s) => tag(s, 'span.kind') === 'producer' && s.operationName === `send ${prefix}movie-state`)!
    expect(stateProducer).toBeDefined()
    expect(serviceOf(trace, stateProducer)).toBe('movies-service')
    expect(under(stateProducer, moviesServer)).toBe(true)
    const replica = replicated(trace)!
    expect(parentOf(replica)).toBe(stateProducer.spanID)
    expect(tag(replica, 'messaging.destination.name')).toBe(`${prefix}movie-state`)
    await traceWith(traceId, 'the replica\'s SQL under its consumer span', (t) =>
      t.spans.some((s) => serviceOf(t, s) === 'monolith' && (tag(s, 'db.system.name') ?? tag(s, 'db.system')) === 'postgresql' && descends(t, s, replica)),
    )

    // Logs and traces meet: the proxy's access line and the consumer's line carry the trace id.
    await eventually('the proxy access line with the trace id', () => proxy.output().includes(traceId))
    const access = proxy.output().split('\n').filter((l) => l.includes(traceId)).map((l) => JSON.parse(l))
    expect(access).toContainEqual(expect.objectContaining({ msg: 'request', url: '/api/movies', trace_id: traceId, span_id: expect.stringMatching(/^[0-9a-f]{16}$/) }))
    await eventually('the events service logs the event in the trace', () => events.output().split('\n').some((l) => l.includes('"event processed"') && l.includes(traceId)))
  })

  it('POST /api/events/movie: the events service publishes in the request\'s trace, and its consumer continues it', { timeout: 120_000 }, async () => {
    const traceId = hex(16)
    const res = await fetch(`${proxy.url}/api/events/movie`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', traceparent: `00-${traceId}-${hex(8)}-01` },
      body: JSON.stringify({ movie_id: 1, title: 'Inception', action: 'viewed', user_id: 1 }),
    })
    expect(res.status).toBe(201)
    const trace = await traceWith(traceId, 'the consumer of the published event', holds('proxy:server', 'events-service:server', 'events-service:producer', 'events-service:consumer'))
    const server = trace.spans.find((s) => serviceOf(trace, s) === 'events-service' && tag(s, 'span.kind') === 'server')!
    const producer = trace.spans.find((s) => serviceOf(trace, s) === 'events-service' && tag(s, 'span.kind') === 'producer')!
    expect(parentOf(producer)).toBe(server.spanID)
    const consumer = trace.spans.find((s) => tag(s, 'span.kind') === 'consumer')!
    expect(parentOf(consumer)).toBe(producer.spanID)
  })

  it('a malformed traceparent starts a new trace at the proxy and is never forwarded', { timeout: 60_000 }, async () => {
    const requestId = `bad-traceparent-${hex(4)}`
    const res = await fetch(`${proxy.url}/api/movies`, { headers: { 'x-user-id': 'tracer-5', 'x-request-id': requestId, traceparent: '00-not-a-trace-01', tracestate: '=,,not valid==' } })
    expect(res.status).toBe(200)
    await res.arrayBuffer()
    let line: { trace_id?: string } | undefined
    await eventually('the access line of the request', () => {
      line = proxy.output().split('\n').filter((l) => l.includes(requestId) && l.includes('"msg":"request"')).map((l) => JSON.parse(l))[0]
      return line !== undefined
    })
    expect(line!.trace_id).toMatch(/^[0-9a-f]{32}$/)
    const trace = await traceWith(line!.trace_id!, 'the proxy and movies-service', holds('proxy:server', 'proxy:client', 'movies-service:server'))
    const server = trace.spans.find((s) => serviceOf(trace, s) === 'proxy' && tag(s, 'span.kind') === 'server')!
    expect(server.references).toEqual([])
    const client = trace.spans.find((s) => serviceOf(trace, s) === 'proxy' && tag(s, 'span.kind') === 'client')!
    const moviesServer = trace.spans.find((s) => serviceOf(trace, s) === 'movies-service' && tag(s, 'span.kind') === 'server')!
    expect(parentOf(moviesServer)).toBe(client.spanID)
  })

  it('a read that falls back shows both upstream attempts, each with its client span', { timeout: 120_000 }, async () => {
    const traceId = hex(16)
    const res = await fetch(`${fallbackProxy.url}/api/movies`, { headers: { 'x-user-id': 'tracer-2', traceparent: `00-${traceId}-${hex(8)}-01` } })
    expect(res.status).toBe(200)
    expect(res.headers.get('x-route-reason')).toBe('fallback')

    const trace = await traceWith(traceId, 'both attempts and the monolith', (t) => holds('proxy:server', 'monolith:server')(t) && kinds(t).filter((k) => k === 'proxy:client').length === 2 && t.spans.filter((s) => s.operationName.startsWith('upstream ')).length === 2)
    const server = trace.spans.find((s) => serviceOf(trace, s) === 'proxy' && tag(s, 'span.kind') === 'server')!
    expect(tag(server, 'proxy.side')).toBe('target')
    expect(tag(server, 'proxy.reason')).toBe('fallback')
    expect(tag(server, 'proxy.upstream')).toBe('monolith')
    const attempts = trace.spans.filter((s) => s.operationName.startsWith('upstream ') && parentOf(s) === server.spanID)
    expect(attempts.map((s) => [s.operationName, tag(s, 'proxy.attempt')]).sort()).toEqual([
      ['upstream monolith', 'fallback'],
      ['upstream movies-service', 'primary'],
    ])
    const failed = attempts.find((s) => s.operationName === 'upstream movies-service')!
    expect(tag(failed, 'otel.status_code')).toBe('ERROR')
    for (const attempt of attempts) {
      expect(trace.spans.some((s) => tag(s, 'span.kind') === 'client' && parentOf(s) === attempt.spanID)).toBe(true)
    }
  })

  it('a WebSocket handshake (sent on node:http, no client span) carries the upstream attempt\'s traceparent, not the client\'s', { timeout: 120_000 }, async () => {
    const handshakes: IncomingHttpHeaders[] = []
    const upstream = createHttpServer((_req, res) => res.end())
    const wss = new WebSocketServer({ server: upstream })
    wss.on('connection', (ws, req) => {
      handshakes.push(req.headers)
      ws.send('hello')
    })
    await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve))
    const wsProxy = await startService(
      'proxy/server.ts',
      { MONOLITH_URL: monolith.url, EVENTS_SERVICE_URL: events.url, ADMIN_TOKEN, FLAGS_FILE: flagsFileAt(100), MOVIES_SERVICE_URL: `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`, OTEL_EXPORTER_OTLP_ENDPOINT: jaeger.otlpEndpoint, OTEL_BSP_SCHEDULE_DELAY: '200' },
      { readyPath: '/health' },
    )
    try {
      const traceId = hex(16)
      const clientSpanId = hex(8)
      const ws = new WebSocket(`${wsProxy.url.replace(/^http/, 'ws')}/api/movies/live`, { headers: { 'x-user-id': 'tracer-6', traceparent: `00-${traceId}-${clientSpanId}-01` }, handshakeTimeout: 5_000 })
      expect(await new Promise<string>((resolve, reject) => ws.once('message', (d) => resolve(d.toString())).once('error', reject))).toBe('hello')
      ws.close()
      expect(handshakes).toHaveLength(1)
      const sent = /^00-([0-9a-f]{32})-([0-9a-f]{16})-01$/.exec(String(handshakes[0]!.traceparent))
      expect(sent?.[1]).toBe(traceId)
      expect(sent?.[2]).not.toBe(clientSpanId)
      // The span id sent is the proxy's attempt span, a child of its server span.
      const trace = await traceWith(traceId, 'the handshake\'s attempt span', (t) => t.spans.some((s) => s.spanID === sent?.[2]))
      const attempt = trace.spans.find((s) => s.spanID === sent![2])!
      expect(attempt.operationName).toBe('upstream movies-service')
      const server = trace.spans.find((s) => serviceOf(trace, s) === 'proxy' && tag(s, 'span.kind') === 'server')!
      expect(parentOf(attempt)).toBe(server.spanID)
    } finally {
      await wsProxy.stop()
      wss.close()
      upstream.closeAllConnections()
      upstream.close()
    }
  })

  it('a shadow copy is a span of its own, in a new trace LINKED to the request\'s (not its child)', { timeout: 120_000 }, async () => {
    const admin = { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' }
    const on = await fetch(`${proxy.opsUrl}/admin/routes/movies/shadow`, { method: 'PUT', headers: admin, body: JSON.stringify({ percent: 100 }) })
    expect(on.status).toBe(200)
    try {
      const traceId = hex(16)
      const res = await fetch(`${proxy.url}/api/movies`, { headers: { 'x-user-id': 'tracer-3', traceparent: `00-${traceId}-${hex(8)}-01` } })
      expect(res.status).toBe(200)
      await res.arrayBuffer()

      const request = await traceWith(traceId, 'the shadowed request', (t) => holds('proxy:server', 'movies-service:server')(t) && t.spans.some((s) => s.operationName === 'upstream movies-service'))
      const server = request.spans.find((s) => serviceOf(request, s) === 'proxy' && tag(s, 'span.kind') === 'server')!
      expect(tag(server, 'proxy.shadow.selected')).toBe(true)
      expect(request.spans.some((s) => s.operationName.startsWith('shadow '))).toBe(false)

      let copy: { trace: JaegerTrace; span: JaegerSpan } | undefined
      await eventually('the shadow copy\'s trace in Jaeger', async () => {
        for (const t of await jaeger.search('proxy', 'shadow monolith')) {
          const span = t.spans.find((s) => s.operationName === 'shadow monolith' && s.references.some((r) => r.traceID === traceId))
          if (span) copy = { trace: t, span }
        }
        return copy !== undefined
      }, 60_000)
      const { trace, span } = copy!
      expect(span.traceID).not.toBe(traceId)
      expect(span.references).toEqual([expect.objectContaining({ refType: 'FOLLOWS_FROM', traceID: traceId, spanID: server.spanID })])
      expect(tag(span, 'proxy.route')).toBe('movies')
      // The copy's own call upstream is its child, with its own traceparent.
      await eventually('the copy\'s client span', async () => {
        const full = await jaeger.trace(trace.traceID)
        return Boolean(full?.spans.some((s) => tag(s, 'span.kind') === 'client' && parentOf(s) === span.spanID))
      })
    } finally {
      await fetch(`${proxy.opsUrl}/admin/routes/movies/shadow`, { method: 'PUT', headers: admin, body: JSON.stringify({ percent: 0 }) })
    }
  })

  it('a rollout change and a shadow error sample made by traced requests keep their trace ids (ledger, diffs)', { timeout: 60_000 }, async () => {
    const headers = { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' }
    const changeTrace = hex(16)
    const change = await fetch(`${fallbackProxy.opsUrl}/admin/routes/movies/rollout`, {
      method: 'PUT',
      headers: { ...headers, traceparent: `00-${changeTrace}-${hex(8)}-01` },
      body: JSON.stringify({ percent: 0, reason: 'tracing e2e' }),
    })
    expect(change.status).toBe(200)
    const ledger = (await (await fetch(`${fallbackProxy.opsUrl}/admin/ledger?route=movies`, { headers })).json()) as { entries: { to: number; reason: string; traceId?: string }[] }
    expect(ledger.entries).toContainEqual(expect.objectContaining({ to: 0, reason: 'tracing e2e', traceId: changeTrace }))

    // Legacy answers; the copy goes to this proxy's unreachable movies-service and fails.
    const on = await fetch(`${fallbackProxy.opsUrl}/admin/routes/movies/shadow`, { method: 'PUT', headers, body: JSON.stringify({ percent: 100 }) })
    expect(on.status).toBe(200)
    const readTrace = hex(16)
    const res = await fetch(`${fallbackProxy.url}/api/movies`, { headers: { 'x-user-id': 'tracer-4', traceparent: `00-${readTrace}-${hex(8)}-01` } })
    expect(res.headers.get('x-upstream')).toBe('monolith')
    await res.arrayBuffer()
    let report: { errors: { upstream: string; traceId?: string }[] } | undefined
    await eventually('the shadow error sample', async () => {
      report = (await (await fetch(`${fallbackProxy.opsUrl}/admin/routes/movies/diffs`, { headers })).json()) as typeof report
      return report!.errors.length > 0
    })
    expect(report!.errors).toContainEqual(expect.objectContaining({ upstream: 'movies-service', traceId: readTrace }))
  })

  it('a receiver that accepts and never answers costs the service nothing visible: requests answer, SIGTERM exits 0 within its bound', { timeout: 60_000 }, async () => {
    const sockets = new Set<Socket>()
    const hanging = createServer((socket) => void sockets.add(socket)) // never reads, never answers
    await new Promise<void>((resolve) => hanging.listen(0, '127.0.0.1', resolve))
    const { port } = hanging.address() as AddressInfo
    const service = await startService('movies-service/server.ts', { DB_CONNECTION_STRING: catalogDb.url, OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${port}`, OTEL_BSP_SCHEDULE_DELAY: '50' })
    try {
      for (let i = 0; i < 20; i++) expect((await fetch(`${service.url}/api/movies`, { signal: AbortSignal.timeout(5_000) })).status).toBe(200)
      await eventually('the exporter connected to the receiver', () => sockets.size > 0, 10_000)
      const started = Date.now()
      expect(await service.stop()).toBe(0)
      expect(Date.now() - started).toBeLessThan(9_000) // stop() would SIGKILL at 10 s
    } finally {
      for (const socket of sockets) socket.destroy()
      hanging.close()
    }
  })
})
