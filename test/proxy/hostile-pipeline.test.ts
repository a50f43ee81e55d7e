// Hostile and impatient clients against the one request pipeline (issue 23): impatient clients
// of a hanging target open its breaker (slow calls), an upstream that breaks off before its first
// body byte gives a clean 502 of the catalogue without any of its headers, and WebSocket
// handshakes go through the same routing, rate limit and access line as every request.
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import WebSocket, { WebSocketServer } from 'ws'
import { flagsFileAt, startProxy, startStubs, type ProxyUnderTest, type Stubs } from './proxy-harness.ts'

let stubs: Stubs
const opened: ProxyUnderTest[] = []

beforeAll(async () => {
  stubs = await startStubs()
})
afterEach(async () => {
  stubs.movies.mode = 'ok'
  stubs.monolith.mode = 'ok'
  while (opened.length) await opened.pop()!.close()
})
afterAll(async () => stubs.close())

async function listening(env: Record<string, string>): Promise<{ proxy: ProxyUnderTest; port: number }> {
  const proxy = await startProxy(stubs, env)
  opened.push(proxy)
  await proxy.app.listen({ port: 0, host: '127.0.0.1' })
  return { proxy, port: (proxy.app.server.address() as AddressInfo).port }
}

/** A GET that gives up after `ms` (the client closes its connection). */
function impatientGet(port: number, path: string, ms: number): Promise<'answered' | 'gave up'> {
  return new Promise((resolve) => {
    const req = http.get({ host: '127.0.0.1', port, path, agent: false }, (res) => {
      res.resume()
      resolve('answered')
    })
    req.on('error', () => resolve('gave up'))
    setTimeout(() => {
      req.destroy()
      resolve('gave up')
    }, ms)
  })
}

describe('a hanging target with impatient clients', () => {
  it('opens its breaker (slow calls): legacy answers the next read within 2 s', async () => {
    const { proxy, port } = await listening({ FLAGS_FILE: flagsFileAt({ 'movies-migration': 100, 'movies-migration-writes': 100 }), UPSTREAM_RESPONSE_TIMEOUT_MS: '10000', BREAKER_SLOW_CALL_MS: '500', BREAKER_CONSECUTIVE_FAILURES: '5' })
    stubs.movies.mode = 'hang'
    const outcomes = await Promise.all(Array.from({ length: 20 }, () => impatientGet(port, '/api/movies', 1_000)))
    expect(outcomes.every((o) => o === 'gave up')).toBe(true)
    const started = Date.now()
    const next = await fetch(`http://127.0.0.1:${port}/api/movies`, { signal: AbortSignal.timeout(5_000) })
    expect(Date.now() - started).toBeLessThan(2_000)
    expect(next.status).toBe(200)
    expect(next.headers.get('x-upstream')).toBe('monolith')
    expect(next.headers.get('x-route-reason')).toBe('fallback')
    const metrics = (await proxy.ops.inject('/metrics')).body
    expect(metrics).toMatch(/proxy_upstream_failures_total\{upstream="movies-service",kind="slow"\} [1-9]/)
    expect(metrics).toMatch(/proxy_breaker_state\{upstream="movies-service"\} 2/)
  })

  it('does not count a client that leaves quickly as a success: the upstream\'s own outcome counts', async () => {
    // Threshold 300 ms: clients that leave at 100 ms keep the call alive until it, then it is a slow failure.
    const { proxy, port } = await listening({ FLAGS_FILE: flagsFileAt({ 'movies-migration': 100, 'movies-migration-writes': 100 }), BREAKER_SLOW_CALL_MS: '300', BREAKER_CONSECUTIVE_FAILURES: '3' })
    stubs.movies.mode = 'hang'
    for (let i = 0; i < 3; i++) expect(await impatientGet(port, '/api/movies', 100)).toBe('gave up')
    await new Promise((r) => setTimeout(r, 400))
    const answer = await proxy.app.inject({ method: 'GET', url: '/api/movies' })
    expect(answer.headers['x-route-reason']).toBe('fallback')
  })
})

describe('an upstream that breaks off its answer before the first body byte', () => {
  it('gives a clean 502 of the catalogue, with none of the upstream\'s headers', async () => {
    const broken = http.createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '100', 'x-internal-secret': 'upstream-only' })
      res.flushHeaders()
      setTimeout(() => res.socket?.destroy(), 50)
    })
    await new Promise<void>((r) => broken.listen(0, '127.0.0.1', () => r()))
    try {
      const { port } = await listening({ MONOLITH_URL: `http://127.0.0.1:${(broken.address() as AddressInfo).port}` })
      const res = await fetch(`http://127.0.0.1:${port}/api/users`)
      expect(res.status).toBe(502)
      expect(res.headers.get('x-internal-secret')).toBeNull()
      expect(res.headers.get('content-type')).toBe('application/json; charset=utf-8')
      expect(res.headers.get('x-request-id')).toBeTruthy()
      const body = await res.json()
      expect(body).toEqual({ error: 'monolith broke off its answer before the first byte of the body', code: 'CA_ERR_UPSTREAM_BROKEN_ANSWER' })
      expect(Number(res.headers.get('content-length'))).toBe(Buffer.byteLength(JSON.stringify(body)))
    } finally {
      broken.closeAllConnections()
      await new Promise((r) => broken.close(r))
    }
  })

  it('error bodies carry a stable code next to the message', async () => {
    // Writes on the target: a target that fails a write answers a code of the catalogue (a failing legacy's own 5xx is passed on).
    const { proxy } = await listening({ ALLOW_BACKEND_OVERRIDE: 'true', FLAGS_FILE: flagsFileAt({ 'movies-migration': 0, 'movies-migration-writes': 100 }) })
    const res = await proxy.app.inject({ method: 'GET', url: '/api/movies', headers: { 'x-backend': 'sideways' } })
    expect(res.statusCode).toBe(400)
    expect(res.json()).toEqual({ error: 'X-Backend must be "legacy" or "target", got "sideways"', code: 'CA_ERR_BAD_BACKEND_OVERRIDE' })
    const admin = await proxy.ops.inject({ method: 'GET', url: '/admin/routes' })
    expect(admin.json()).toMatchObject({ code: 'CA_ERR_ADMIN_UNAUTHORIZED' })
    stubs.movies.mode = 'fail'
    stubs.monolith.mode = 'fail'
    const down = await proxy.app.inject({ method: 'POST', url: '/api/movies', headers: { 'x-backend': 'target' }, payload: {} })
    expect(down.json()).toMatchObject({ code: 'CA_ERR_WRITE_NOT_RETRIED' })
  })
})

describe('WebSocket handshakes go through the same pipeline as every request', () => {
  /** A WebSocket upstream naming itself, whose handshake answer carries hop-by-hop headers and an id of its own. */
  async function wsUpstream(name: string): Promise<{ url: string; close(): Promise<void> }> {
    const server = http.createServer((req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ upstream: name })))
    const wss = new WebSocketServer({ server })
    wss.on('headers', (headers) => headers.push('Keep-Alive: timeout=5', 'X-Request-Id: upstream-own-id', 'X-Served-By: ' + name))
    wss.on('connection', (ws) => ws.send(`hello from ${name}`))
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()))
    return {
      url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
      close: async () => {
        for (const c of wss.clients) c.terminate()
        wss.close()
        server.closeAllConnections()
        await new Promise((r) => server.close(r))
      },
    }
  }

  function handshake(port: number, path: string): Promise<{ status: number; headers: http.IncomingHttpHeaders; first?: string; body?: string }> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(`ws://127.0.0.1:${port}${path}`, { handshakeTimeout: 5_000 })
      ws.once('upgrade', (res) => ws.once('message', (d) => {
        resolve({ status: 101, headers: res.headers, first: d.toString() })
        ws.close()
      }))
      ws.once('unexpected-response', (_req, res) => {
        let body = ''
        res.on('data', (c: Buffer) => (body += c))
        res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body }))
      })
      ws.once('error', reject)
    })
  }

  let monolithWs: Awaited<ReturnType<typeof wsUpstream>>
  let moviesWs: Awaited<ReturnType<typeof wsUpstream>>
  beforeAll(async () => {
    ;[monolithWs, moviesWs] = await Promise.all([wsUpstream('monolith'), wsUpstream('movies-service')])
  })
  afterAll(async () => {
    await Promise.all([monolithWs.close(), moviesWs.close()])
  })
  const env = () => ({ MONOLITH_URL: monolithWs.url, MOVIES_SERVICE_URL: moviesWs.url, FLAGS_FILE: flagsFileAt({ 'movies-migration': 100, 'movies-migration-writes': 100 }) })

  it('are rate limited like any request: 5 of 9 pass a limit of 5', async () => {
    const { port } = await listening({ ...env(), RATE_LIMIT_MAX: '5', RATE_LIMIT_WINDOW_MS: '60000' })
    const answers = []
    for (let i = 0; i < 9; i++) answers.push(await handshake(port, '/api/movies/live'))
    expect(answers.map((a) => a.status)).toEqual([101, 101, 101, 101, 101, 429, 429, 429, 429])
    expect(answers[0]!.headers['x-ratelimit-limit']).toBe('5')
    expect(JSON.parse(answers[5]!.body!)).toMatchObject({ code: 'CA_ERR_RATE_LIMITED' })
  })

  it('route an encoded path exactly as a GET of the same path does', async () => {
    const { proxy, port } = await listening(env())
    for (const path of ['/api/m%6Fvies', '/api/movies', '/api/movies/%2e%2e/users', '/api/moviesX', '/api/users']) {
      const get = await proxy.app.inject({ method: 'GET', url: path })
      const ws = await handshake(port, path)
      expect([path, ws.headers['x-upstream']]).toEqual([path, get.headers['x-upstream']])
      expect(ws.first).toBe(`hello from ${get.headers['x-upstream']}`)
    }
  })

  it('carry one x-request-id, no upstream hop-by-hop header, and leave the same access line and metrics', async () => {
    const { proxy, port } = await listening(env())
    const ws = await handshake(port, '/api/movies/live')
    expect(ws.status).toBe(101)
    expect(ws.headers['keep-alive']).toBeUndefined()
    expect(ws.headers['x-request-id']).not.toBe('upstream-own-id')
    expect(ws.headers['x-served-by']).toBe('movies-service')
    const line = proxy.logs.lines.find((l) => l.msg === 'request' && l.url === '/api/movies/live')
    expect(line).toMatchObject({ method: 'GET', status: 101, route: 'movies', upstream: 'movies-service', reason: 'flag' })
    const metrics = (await proxy.ops.inject('/metrics')).body
    expect(metrics).toMatch(/proxy_requests_total\{[^}]*route="movies"[^}]*upstream="movies-service"[^}]*\} 1/)
  })

  it('are refused on the proxy\'s own paths and when not a bodiless GET, never reaching an upstream', async () => {
    const { port } = await listening(env())
    expect((await handshake(port, '/admin/routes')).status).toBe(404)
    expect((await handshake(port, '/health')).status).toBe(404)
  })
})
