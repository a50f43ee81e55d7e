// What passes through the proxy and what does not, over real sockets: hop-by-hop headers are
// dropped both ways, X-Forwarded-* and X-Request-Id are set, bodies arrive byte for byte
// (fixed length and chunked), oversized bodies get 413, upstream statuses pass unchanged.
import { createHash, randomBytes } from 'node:crypto'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startProxy, startStubs, type ProxyUnderTest, type Stubs } from './proxy-harness.ts'
import type { Received, StubUpstream } from './stub-upstream.ts'

let stubs: Stubs
let proxy: ProxyUnderTest
let port: number

beforeAll(async () => {
  stubs = await startStubs()
  proxy = await startProxy(stubs, { BODY_LIMIT_BYTES: String(2 * 1024 * 1024) })
  await proxy.app.listen({ port: 0, host: '127.0.0.1' })
  port = (proxy.app.server.address() as AddressInfo).port
})
afterAll(async () => {
  await proxy?.close()
  await stubs?.close()
})

interface Answer {
  status: number
  headers: http.IncomingHttpHeaders
  body: string
}

function send(opts: { method?: string; path: string; headers?: Record<string, string>; body?: Buffer; chunked?: boolean }): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method: opts.method ?? 'GET', path: opts.path, headers: opts.headers, agent: false, timeout: 10_000 }, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (d) => (body += d))
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body }))
    })
    req.on('error', reject)
    req.on('timeout', () => req.destroy(new Error('client timeout')))
    if (opts.body && opts.chunked) {
      // Several writes without Content-Length: Node sends Transfer-Encoding: chunked.
      for (let i = 0; i < opts.body.length; i += 64 * 1024) req.write(opts.body.subarray(i, i + 64 * 1024))
      req.end()
    } else req.end(opts.body)
  })
}

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex')
const lastReceived = (stub: StubUpstream, url: string): Received => [...stub.received].reverse().find((r) => r.url === url)!

describe('headers', () => {
  it('drops hop-by-hop request headers, including those named in Connection, and sets X-Forwarded-*', async () => {
    const res = await send({
      path: '/api/users?x=1',
      headers: {
        Connection: 'keep-alive, X-Private-Hop',
        'X-Private-Hop': 'secret',
        'Keep-Alive': 'timeout=5',
        'Proxy-Authorization': 'Basic Zm9vOmJhcg==',
        TE: 'trailers',
        Host: 'cinema.example',
        'X-Forwarded-For': '203.0.113.7',
        'X-Custom': 'kept',
        Authorization: 'Bearer end-to-end',
      },
    })
    expect(res.status).toBe(200)
    const seen = lastReceived(stubs.monolith, '/api/users?x=1').headers as Record<string, string>
    for (const h of ['x-private-hop', 'keep-alive', 'proxy-authorization', 'te']) expect(seen[h]).toBeUndefined()
    expect(seen['x-custom']).toBe('kept')
    expect(seen.authorization).toBe('Bearer end-to-end')
    // TRUST_PROXY is off: the peer is the client, whatever X-Forwarded-For claims (hostile-identity.test.ts has the other forms).
    expect(seen['x-forwarded-for']).toBe('127.0.0.1')
    expect(seen['x-forwarded-proto']).toBe('http')
    expect(seen['x-forwarded-host']).toBe('cinema.example')
    expect(seen.host).toBe(new URL(stubs.monolith.url).host)
  })

  it('drops hop-by-hop response headers and says which upstream answered', async () => {
    stubs.events.responseHeaders = { connection: 'x-upstream-hop', 'x-upstream-hop': '1', 'proxy-authenticate': 'Basic', 'x-kept': 'yes' }
    try {
      const res = await send({ path: '/api/events/health' })
      expect(res.headers['x-upstream-hop']).toBeUndefined()
      expect(res.headers['proxy-authenticate']).toBeUndefined()
      expect(res.headers['x-kept']).toBe('yes')
      expect(res.headers['x-upstream']).toBe('events-service')
      expect(res.headers['x-route-reason']).toBe('default')
    } finally {
      stubs.events.responseHeaders = {}
    }
  })

  it('passes X-Request-Id through to the upstream and back, or makes one', async () => {
    const given = await send({ path: '/api/users', headers: { 'X-Request-Id': 'trace-abc-123' } })
    expect(given.headers['x-request-id']).toBe('trace-abc-123')
    expect(lastReceived(stubs.monolith, '/api/users').headers['x-request-id']).toBe('trace-abc-123')
    const made = await send({ path: '/api/payments' })
    expect(made.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/)
    expect(lastReceived(stubs.monolith, '/api/payments').headers['x-request-id']).toBe(made.headers['x-request-id'])
  })

  it('passes upstream statuses and the query string unchanged', async () => {
    const res = await send({ path: '/status/404?id=7&q=a%20b' })
    expect(res.status).toBe(404)
    expect(JSON.parse(res.body)).toMatchObject({ upstream: 'monolith', url: '/status/404?id=7&q=a%20b' })
  })
})

describe('bodies', () => {
  const body = randomBytes(1024 * 1024 + 123)

  it('streams a POST body with Content-Length intact', async () => {
    const res = await send({ method: 'POST', path: '/api/users', body, headers: { 'content-type': 'application/octet-stream', 'content-length': String(body.length) } })
    expect(res.status).toBe(200)
    const seen = lastReceived(stubs.monolith, '/api/users')
    expect(seen.bodyLength).toBe(body.length)
    expect(seen.bodySha256).toBe(sha(body))
    expect(seen.headers['content-length']).toBe(String(body.length))
  })

  it('streams a chunked JSON body intact', async () => {
    const json = Buffer.from(JSON.stringify({ title: 'Сталкер', description: 'x'.repeat(300_000) }))
    const res = await send({ method: 'POST', path: '/api/subscriptions', body: json, chunked: true, headers: { 'content-type': 'application/json' } })
    expect(res.status).toBe(200)
    const seen = lastReceived(stubs.monolith, '/api/subscriptions')
    expect(seen.bodyLength).toBe(json.length)
    expect(seen.bodySha256).toBe(sha(json))
  })

  it('answers 413 JSON for a body over the limit, declared or chunked, without reaching the upstream', async () => {
    const big = randomBytes(2 * 1024 * 1024 + 1)
    const before = stubs.monolith.received.length
    const declared = await send({ method: 'POST', path: '/api/big-declared', body: big, headers: { 'content-length': String(big.length) } })
    expect(declared.status).toBe(413)
    expect(JSON.parse(declared.body).error).toMatch(/larger than 2097152 bytes/)
    const chunked = await send({ method: 'POST', path: '/api/big-chunked', body: big, chunked: true })
    expect(chunked.status).toBe(413)
    expect(JSON.parse(chunked.body).error).toMatch(/larger than 2097152 bytes/)
    expect(stubs.monolith.received.slice(before).filter((r) => r.url.startsWith('/api/big')).every((r) => r.bodyLength <= 2 * 1024 * 1024)).toBe(true)
  })
})

describe('the proxy\'s own endpoints', () => {
  it('/health answers the specification\'s text', async () => {
    const res = await send({ path: '/health' })
    expect(res.status).toBe(200)
    expect(res.body).toBe('Strangler Fig Proxy is healthy')
    expect(res.headers['content-type']).toMatch(/^text\/plain/)
  })
})
