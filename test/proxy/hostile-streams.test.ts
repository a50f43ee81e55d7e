// Long-lived traffic through the proxy, over real sockets: WebSocket upgrades tunnelled to the
// side the flag picks (same sticky decision as plain requests, echo both ways, closes both
// ways, a failed handshake counted and answered by legacy), Server-Sent Events with gaps longer
// than the response timeout, a stream cut after the idle timeout, and backpressure from a
// client that does not read reaching the upstream (the proxy does not buffer the response).
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import WebSocket, { WebSocketServer } from 'ws'
import { metric } from '../helpers/metrics.ts'
import { admin, flagsFileAt, startProxy, type ProxyUnderTest } from './proxy-harness.ts'
import { startStubUpstream, type StubUpstream } from './stub-upstream.ts'

interface StreamingUpstream {
  name: string
  url: string
  closes: Array<{ code: number; reason: string }>
  /** Bytes of /download written so far (the upstream writes only when the socket drains). */
  downloadWritten: number
  close(): Promise<void>
}

/** An upstream with a WebSocket echo, an SSE endpoint with a quiet gap, and an endless download. */
async function startStreamingUpstream(name: string): Promise<StreamingUpstream> {
  const up: StreamingUpstream = { name, url: '', closes: [], downloadWritten: 0, close: async () => {} }
  const server = http.createServer((req, res) => {
    if (req.url?.startsWith('/api/movies/events')) {
      const gapMs = Number(new URL(req.url, 'http://x').searchParams.get('gap') ?? 0)
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' })
      res.write(`data: first from ${name}\n\n`)
      const timer = setTimeout(() => res.end(`data: second from ${name}\n\n`), gapMs)
      res.on('close', () => clearTimeout(timer))
      return
    }
    if (req.url?.startsWith('/api/movies/download')) {
      res.writeHead(200, { 'content-type': 'application/octet-stream' })
      const chunk = Buffer.alloc(64 * 1024, 7)
      const pump = () => {
        while (up.downloadWritten < 256 * 1024 * 1024) {
          up.downloadWritten += chunk.length
          if (!res.write(chunk)) return void res.once('drain', pump)
        }
        res.end()
      }
      res.on('close', () => res.removeAllListeners('drain'))
      return pump()
    }
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ upstream: name }))
  })
  const wss = new WebSocketServer({ server })
  wss.on('connection', (ws, req) => {
    ws.send(`hello from ${name} ${req.headers['x-forwarded-for']}`)
    ws.on('message', (data) => {
      const text = data.toString()
      if (text.startsWith('close:')) ws.close(Number(text.slice(6)), 'upstream says bye')
      else ws.send(`${name} echo: ${text}`)
    })
    ws.on('close', (code, reason) => up.closes.push({ code, reason: reason.toString() }))
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  up.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  up.close = async () => {
    for (const client of wss.clients) client.terminate()
    wss.close()
    server.closeAllConnections()
    await new Promise<void>((resolve) => server.close(() => resolve()))
  }
  return up
}

let monolith: StreamingUpstream
let movies: StreamingUpstream
let events: StubUpstream
let proxy: ProxyUnderTest
let base: string

beforeAll(async () => {
  ;[monolith, movies, events] = await Promise.all([startStreamingUpstream('monolith'), startStreamingUpstream('movies-service'), startStubUpstream('events-service')])
  proxy = await startProxy({ monolith: monolith as never, movies: movies as never, events, close: async () => {} }, {
    FLAGS_FILE: flagsFileAt(50),
    UPSTREAM_RESPONSE_TIMEOUT_MS: '500',
    UPSTREAM_STREAM_IDLE_TIMEOUT_MS: '2000',
    BREAKER_CONSECUTIVE_FAILURES: '3',
  })
  await proxy.app.listen({ port: 0, host: '127.0.0.1' })
  base = `127.0.0.1:${(proxy.app.server.address() as AddressInfo).port}`
})
afterAll(async () => {
  await proxy?.close()
  await Promise.all([monolith?.close(), movies?.close(), events?.close()])
})

function openSocket(path: string, headers: Record<string, string> = {}): Promise<{ ws: WebSocket; upgradeHeaders: http.IncomingHttpHeaders; first: string }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://${base}${path}`, { headers, handshakeTimeout: 5_000 })
    let upgradeHeaders: http.IncomingHttpHeaders = {}
    ws.once('upgrade', (res) => (upgradeHeaders = res.headers))
    ws.once('message', (data) => resolve({ ws, upgradeHeaders, first: data.toString() }))
    ws.once('unexpected-response', (_req, res) => reject(new Error(`handshake answered ${res.statusCode}`)))
    ws.once('error', reject)
  })
}
const nextMessage = (ws: WebSocket) => new Promise<string>((resolve) => ws.once('message', (d) => resolve(d.toString())))
const closed = (ws: WebSocket) => new Promise<number>((resolve) => ws.once('close', (code) => resolve(code)))

describe('WebSocket pass-through', () => {
  it('tunnels to the side the sticky flag picks for plain requests, and echoes both ways', async () => {
    const sides = new Set<string>()
    for (let i = 0; i < 8; i++) {
      const user = `ws-user-${i}`
      const plain = await fetch(`http://${base}/api/movies`, { headers: { 'x-user-id': user } })
      const { ws, upgradeHeaders, first } = await openSocket('/api/movies/live', { 'x-user-id': user })
      expect(upgradeHeaders['x-upstream']).toBe(plain.headers.get('x-upstream'))
      expect(upgradeHeaders['x-route-reason']).toBe('sticky')
      expect(first).toBe(`hello from ${plain.headers.get('x-upstream')} 127.0.0.1`)
      ws.send(`ping ${i}`)
      expect(await nextMessage(ws)).toBe(`${plain.headers.get('x-upstream')} echo: ping ${i}`)
      sides.add(upgradeHeaders['x-upstream'] as string)
      ws.close()
    }
    expect(sides).toEqual(new Set(['monolith', 'movies-service']))
  })

  it('propagates closes both ways with their codes', async () => {
    const a = await openSocket('/api/users/live')
    const seen = monolith.closes.length
    a.ws.close(4001, 'client says bye')
    expect(await closed(a.ws)).toBe(4001)
    await expect.poll(() => monolith.closes.slice(seen)).toEqual([{ code: 4001, reason: 'client says bye' }])

    const b = await openSocket('/api/users/live')
    const done = closed(b.ws)
    b.ws.send('close:4002')
    expect(await done).toBe(4002)
  })

  it('refuses upgrade requests that are not a bodiless GET, without involving any upstream', async () => {
    const { rawRequest } = await import('./raw-client.ts')
    const port = Number(base.split(':')[1])
    const before = (await proxy.ops.inject('/metrics')).body
    for (const head of ['POST /api/users HTTP/1.1\r\nContent-Length: 10', 'GET /api/users HTTP/1.1\r\nTransfer-Encoding: chunked']) {
      const answer = await rawRequest(port, `${head}\r\nHost: cinema\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n`, 3_000)
      expect(answer.status, head).toBe(400)
      expect(JSON.parse(answer.body).error).toBe('upgrade requests must be GET without a body')
    }
    const after = (await proxy.ops.inject('/metrics')).body
    expect(metric(after, 'proxy_breaker_events_total{upstream="monolith",event="failure"}')).toBe(metric(before, 'proxy_breaker_events_total{upstream="monolith",event="failure"}'))
  })

  it('never tunnels into the proxy\'s own namespace', async () => {
    await expect(openSocket('/admin/state')).rejects.toThrow('handshake answered 404')
    await expect(openSocket('/metrics')).rejects.toThrow('handshake answered 404')
  })
})

describe('streamed responses', () => {
  it('keeps an SSE stream whose quiet gap is longer than UPSTREAM_RESPONSE_TIMEOUT_MS', async () => {
    const res = await fetch(`http://${base}/api/movies/events?gap=1500`, { headers: { 'x-user-id': 'sse' } })
    expect(res.status).toBe(200)
    expect(res.headers.get('content-type')).toBe('text/event-stream')
    const text = await res.text()
    expect(text).toMatch(/data: first from (monolith|movies-service)\n\ndata: second from \1\n\n/)
  })

  it('cuts a stream quiet for longer than UPSTREAM_STREAM_IDLE_TIMEOUT_MS', async () => {
    const res = await fetch(`http://${base}/api/movies/events?gap=6000`, { headers: { 'x-user-id': 'sse' } })
    expect(res.status).toBe(200)
    const started = Date.now()
    await expect(res.text()).rejects.toThrow()
    expect(Date.now() - started).toBeLessThan(5_500)
  })

  it('passes a slow reader\'s backpressure to the upstream instead of buffering the response', async () => {
    const user = 'download'
    const upstreamOf = (await fetch(`http://${base}/api/movies`, { headers: { 'x-user-id': user } })).headers.get('x-upstream')
    const up = upstreamOf === 'monolith' ? monolith : movies
    up.downloadWritten = 0
    const req = http.get(`http://${base}/api/movies/download`, { headers: { 'x-user-id': user } })
    const res = await new Promise<http.IncomingMessage>((resolve) => req.once('response', resolve))
    res.pause()
    await new Promise((r) => setTimeout(r, 1_000))
    // The client has read nothing: only socket and stream buffers (a few MB at most) are in flight, not 256 MB.
    expect(up.downloadWritten).toBeLessThan(32 * 1024 * 1024)
    req.destroy()
  })
})

describe('a target that dies', () => {
  it('counts a failed handshake against the target and answers from legacy', async () => {
    // The target dies: every handshake sent to it fails to connect (last test of the file).
    await movies.close()
    const targetUsers = []
    for (let i = 0; targetUsers.length < 3 && i < 200; i++) {
      const explain = await proxy.ops.inject({ url: `/admin/explain?path=/api/movies&user_id=t${i}`, headers: admin })
      if (explain.json().upstream === 'movies-service') targetUsers.push(`t${i}`)
    }
    expect(targetUsers).toHaveLength(3)
    for (const user of targetUsers) {
      const { ws, upgradeHeaders, first } = await openSocket('/api/movies/live', { 'x-user-id': user })
      expect([upgradeHeaders['x-upstream'], upgradeHeaders['x-route-reason']]).toEqual(['monolith', 'fallback'])
      expect(first).toMatch(/^hello from monolith/)
      ws.close()
    }
    const text = (await proxy.ops.inject('/metrics')).body
    expect(metric(text, 'proxy_upstream_failures_total{upstream="movies-service",kind="connect"}')).toBe(3)
    // BREAKER_CONSECUTIVE_FAILURES=3: three failed handshakes in a row opened it.
    expect(metric(text, 'proxy_breaker_state{upstream="movies-service"}')).toBe(2)
  })
})
