// Odd and malicious requests over raw sockets, against a pool of one connection per upstream:
// each is answered by the proxy itself (never forwarded, never a breaker failure), and the
// upstreams keep answering normal requests afterwards.
import type { AddressInfo } from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { metric } from '../helpers/metrics.ts'
import { admin, startProxy, startStubs, type ProxyUnderTest, type Stubs } from './proxy-harness.ts'
import { rawRequest } from './raw-client.ts'

let stubs: Stubs
let proxy: ProxyUnderTest
let port: number
const ALLOW = 'GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS'

beforeAll(async () => {
  stubs = await startStubs()
  proxy = await startProxy(stubs, { UPSTREAM_CONNECTIONS: '1', BREAKER_VOLUME_THRESHOLD: '2', BREAKER_CONSECUTIVE_FAILURES: '2', CLIENT_BODY_TIMEOUT_MS: '500' })
  await proxy.app.listen({ port: 0, host: '127.0.0.1' })
  port = (proxy.app.server.address() as AddressInfo).port
})
afterAll(async () => {
  await proxy?.close()
  await stubs?.close()
})

const received = () => stubs.monolith.received.length + stubs.movies.received.length + stubs.events.received.length

async function expectHealthyAfterwards(before: number) {
  expect(received()).toBe(before)
  const text = (await proxy.ops.inject('/metrics')).body
  for (const u of ['monolith', 'movies-service', 'events-service']) {
    expect(metric(text, `proxy_breaker_state{upstream="${u}"}`)).toBe(0)
    expect(metric(text, `proxy_breaker_events_total{upstream="${u}",event="failure"}`)).toBe(0)
  }
  const ok = await rawRequest(port, 'GET /api/users HTTP/1.1\r\nHost: cinema\r\nConnection: close\r\n\r\n', 2_000)
  expect(ok.status).toBe(200)
}

describe('request targets and methods the proxy does not forward', () => {
  it('answers an OPTIONS * storm itself, with Allow', async () => {
    const before = received()
    const answers = await Promise.all(Array.from({ length: 50 }, () => rawRequest(port, 'OPTIONS * HTTP/1.1\r\nHost: cinema\r\n\r\n')))
    for (const a of answers) expect([a.status, a.headers.allow]).toEqual([200, ALLOW])
    await expectHealthyAfterwards(before)
  })

  it('answers absolute-form, authority-form and asterisk targets with 400 JSON', async () => {
    const before = received()
    for (const line of ['GET http://169.254.169.254/latest/meta-data HTTP/1.1', 'POST http://cinema/api/users HTTP/1.1', 'GET * HTTP/1.1', 'DELETE * HTTP/1.1']) {
      const a = await rawRequest(port, `${line}\r\nHost: cinema\r\nContent-Length: 0\r\n\r\n`)
      expect(a.status, line).toBe(400)
      expect(JSON.parse(a.body).error).toMatch(/request target must be a path/)
    }
    await expectHealthyAfterwards(before)
  })

  it('refuses TRACE, CONNECT and methods it does not serve with 405 and Allow', async () => {
    const before = received()
    for (const line of ['TRACE /api/users HTTP/1.1', 'CONNECT cinema:443 HTTP/1.1', 'PROPFIND /api/movies HTTP/1.1', 'TRACE * HTTP/1.1']) {
      const a = await rawRequest(port, `${line}\r\nHost: cinema\r\n\r\n`)
      expect([a.status, a.headers.allow], line).toEqual([405, ALLOW])
      expect(JSON.parse(a.body).error).toMatch(/is not served by this proxy/)
    }
    await expectHealthyAfterwards(before)
  })
})

describe('bodies', () => {
  it('refuses request smuggling (CL+TE, TE.CL, duplicate Content-Length, obfuscated TE) and forwards nothing', async () => {
    const before = received()
    const attacks = [
      'POST /api/users HTTP/1.1\r\nHost: cinema\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nG',
      'POST /api/users HTTP/1.1\r\nHost: cinema\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n8\r\nSMUGGLED\r\n0\r\n\r\n',
      'POST /api/users HTTP/1.1\r\nHost: cinema\r\nContent-Length: 3\r\nContent-Length: 40\r\n\r\nabc',
      'POST /api/users HTTP/1.1\r\nHost: cinema\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n',
      'POST /api/users HTTP/1.1\r\nHost: cinema\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n',
      'POST /api/users HTTP/1.1\r\nHost: cinema\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nbad\r\n0\r\n\r\n',
    ]
    for (const attack of attacks) {
      const a = await rawRequest(port, attack, 3_000)
      expect(a.status, JSON.stringify(attack)).toBeGreaterThanOrEqual(400)
      expect(a.status, JSON.stringify(attack)).toBeLessThan(500)
    }
    await expectHealthyAfterwards(before)
  })

  it('answers 413 for oversized bodies and 408 for a stalled one, before any upstream call', async () => {
    const before = received()
    const huge = await rawRequest(port, 'POST /api/users HTTP/1.1\r\nHost: cinema\r\nContent-Length: 99999999\r\n\r\n')
    expect([huge.status, huge.headers.connection]).toEqual([413, 'close'])
    const chunk = Buffer.alloc(600 * 1024, 97)
    const chunked = await rawRequest(port, Buffer.concat([Buffer.from('POST /api/users HTTP/1.1\r\nHost: cinema\r\nTransfer-Encoding: chunked\r\n\r\n'), ...[0, 1].flatMap(() => [Buffer.from(`${chunk.length.toString(16)}\r\n`), chunk, Buffer.from('\r\n')])]))
    expect(chunked.status).toBe(413)
    const stalled = await rawRequest(port, 'PUT /api/movies HTTP/1.1\r\nHost: cinema\r\nContent-Length: 100\r\n\r\n{"a":')
    expect([stalled.status, stalled.headers.connection]).toEqual([408, 'close'])
    await expectHealthyAfterwards(before)
  })

  it('answers GET/HEAD that carry a body without passing the body on or counting anything against the upstream', async () => {
    const start = stubs.monolith.received.length
    for (const head of ['GET /api/users HTTP/1.1\r\nContent-Length: 5', 'HEAD /api/users HTTP/1.1\r\nContent-Length: 5']) {
      const a = await rawRequest(port, `${head}\r\nHost: cinema\r\nConnection: close\r\n\r\nhello`, 3_000)
      expect(a.status, head).toBe(200)
    }
    expect(stubs.monolith.received.slice(start).map((r) => [r.method, r.bodyLength, r.headers['content-length']])).toEqual([['GET', 0, undefined], ['HEAD', 0, undefined]])
    expect(metric((await proxy.ops.inject('/metrics')).body, 'proxy_breaker_events_total{upstream="monolith",event="failure"}')).toBe(0)
  })

  it('forwards a body that arrives slowly but steadily, whole', async () => {
    const { connect, readAnswer } = await import('./raw-client.ts')
    const socket = await connect(port)
    const body = '{"username":"slow","email":"slow@example.com"}'
    socket.write(`POST /api/users HTTP/1.1\r\nHost: cinema\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n`)
    for (const piece of body.match(/.{1,8}/g)!) {
      await new Promise((r) => setTimeout(r, 150)) // each pause below CLIENT_BODY_TIMEOUT_MS (500 ms), the whole well above it
      socket.write(piece)
    }
    const answer = await readAnswer(socket)
    expect(answer.status).toBe(200)
    expect(stubs.monolith.received.at(-1)).toMatchObject({ method: 'POST', url: '/api/users', bodyLength: body.length })
  })
})

describe('the proxy\'s namespaces', () => {
  it('never forwards /admin/* (nor its Authorization header), whatever the spelling', async () => {
    const before = received()
    for (const path of ['/admin/nope', '/admin//state', '/admin/../admin/state', '/admin/%2e%2e/x']) {
      const a = await rawRequest(port, `GET ${path} HTTP/1.1\r\nHost: cinema\r\nAuthorization: ${admin.authorization}\r\n\r\n`)
      expect(a.status, path).toBeLessThan(500)
      expect(a.headers['x-upstream'], path).toBeUndefined()
    }
    expect(received()).toBe(before)
  })
})

describe('connection cap', () => {
  it('closes connections beyond CLIENT_MAX_CONNECTIONS at once; the others keep being served', async () => {
    const { closedWithin, connect, readAnswer } = await import('./raw-client.ts')
    const capped = await startProxy(stubs, { CLIENT_MAX_CONNECTIONS: '3' })
    await capped.app.listen({ port: 0, host: '127.0.0.1' })
    const cappedPort = (capped.app.server.address() as AddressInfo).port
    const held = await Promise.all([0, 1, 2].map(() => connect(cappedPort)))
    try {
      await new Promise((r) => setTimeout(r, 100))
      const extra = await connect(cappedPort)
      extra.on('error', () => {})
      expect(await closedWithin(extra, 2_000)).toBe(true)
      held[0]!.write('GET /api/users HTTP/1.1\r\nHost: cinema\r\n\r\n')
      expect((await readAnswer(held[0]!)).status).toBe(200)
    } finally {
      for (const s of held) s.destroy()
      await capped.close()
    }
  })
})
