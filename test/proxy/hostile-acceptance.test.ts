// The acceptance scenario against the real proxy process (`proxy/server.ts`) and stub
// upstreams, with a pool of two connections per upstream: 30 `OPTIONS *`, 20 chunked uploads
// abandoned mid-body and 6 uploads stalled mid-body (still connected) leave every breaker
// closed and the monolith answering through the proxy at once; nothing of theirs is forwarded.
import type net from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startService, type ServiceProcess } from '../helpers/processes.ts'
import { metric } from '../helpers/metrics.ts'
import { flagsFileAt, startStubs, type Stubs } from './proxy-harness.ts'
import { closedWithin, connect, rawRequest, readAnswer } from './raw-client.ts'

let stubs: Stubs
let proxy: ServiceProcess
const BODY_TIMEOUT_MS = 4_000

beforeAll(async () => {
  stubs = await startStubs()
  proxy = await startService(
    'proxy/server.ts',
    {
      MONOLITH_URL: stubs.monolith.url,
      MOVIES_SERVICE_URL: stubs.movies.url,
      EVENTS_SERVICE_URL: stubs.events.url,
      FLAGS_FILE: flagsFileAt(50),
      UPSTREAM_CONNECTIONS: '2',
      CLIENT_BODY_TIMEOUT_MS: String(BODY_TIMEOUT_MS),
      BREAKER_VOLUME_THRESHOLD: '3',
      BREAKER_CONSECUTIVE_FAILURES: '3',
      RATE_LIMIT_MAX: '0',
      METRICS_MIN_INTERVAL_MS: '0', // breaker states are read right after what moves them
    },
    { readyPath: '/ready' },
  )
})
afterAll(async () => {
  await proxy?.stop()
  await stubs?.close()
})

const breakerStates = async () => {
  const text = await (await fetch(`${proxy.opsUrl}/metrics`)).text()
  return ['monolith', 'movies-service', 'events-service'].map((u) => metric(text, `proxy_breaker_state{upstream="${u}"}`))
}

async function abandonedChunkedUpload(path: string): Promise<void> {
  const socket = await connect(proxy.port)
  socket.on('error', () => {})
  socket.write(`POST ${path} HTTP/1.1\r\nHost: cinema\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n10\r\n{"title":"abcde"\r\n`)
  await new Promise((r) => setTimeout(r, 20))
  socket.destroy()
}

async function stalledUpload(path: string): Promise<net.Socket> {
  const socket = await connect(proxy.port)
  socket.on('error', () => {})
  socket.write(`POST ${path} HTTP/1.1\r\nHost: cinema\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"title":`)
  return socket
}

describe('a tiny upstream pool against hostile clients', () => {
  it('30 OPTIONS *, 20 abandoned and 6 stalled uploads later, GET /api/users answers 200 within 2 s and every breaker is closed', async () => {
    const before = stubs.monolith.received.length + stubs.movies.received.length

    const options = await Promise.all(Array.from({ length: 30 }, () => rawRequest(proxy.port, 'OPTIONS * HTTP/1.1\r\nHost: cinema\r\n\r\n')))
    for (const answer of options) {
      expect(answer.status).toBe(200)
      expect(answer.headers.allow).toBe('GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS')
    }
    await Promise.all(Array.from({ length: 20 }, (_, i) => abandonedChunkedUpload(i % 2 ? '/api/users' : '/api/movies')))
    const stalled = await Promise.all(Array.from({ length: 6 }, (_, i) => stalledUpload(i % 2 ? '/api/payments' : '/api/movies')))
    const answers = stalled.map((s) => readAnswer(s, BODY_TIMEOUT_MS + 10_000))

    const started = Date.now()
    const users = await fetch(`${proxy.url}/api/users`, { signal: AbortSignal.timeout(2_000) })
    expect(users.status).toBe(200)
    expect(Date.now() - started).toBeLessThan(2_000)
    expect((await users.json()).upstream).toBe('monolith')
    // Several requests at once, more than the pool holds, all answered.
    const burst = await Promise.all(Array.from({ length: 8 }, (_, i) => fetch(`${proxy.url}/api/movies`, { headers: { 'x-user-id': `u${i}` }, signal: AbortSignal.timeout(2_000) })))
    expect(burst.map((r) => r.status)).toEqual(Array(8).fill(200))
    expect(await breakerStates()).toEqual([0, 0, 0])

    // The stalled uploads get 408 after the body timeout; none of these bodies reached an upstream.
    for (const answer of await Promise.all(answers)) {
      expect(answer.status).toBe(408)
      expect(answer.headers.connection).toBe('close')
      expect(JSON.parse(answer.body).error).toMatch(/request body not received/)
    }
    const forwarded = [...stubs.monolith.received, ...stubs.movies.received].slice(before)
    expect(forwarded.filter((r) => r.method !== 'GET')).toEqual([])
    expect(await breakerStates()).toEqual([0, 0, 0])
  }, 60_000)

  it('a client that goes away while the upstream thinks frees its pool connection at once', async () => {
    stubs.monolith.mode = 'hang'
    try {
      // Two clients hold both pool connections with slow requests, then vanish.
      const sockets = await Promise.all([0, 1].map(async () => {
        const socket = await connect(proxy.port)
        socket.on('error', () => {})
        socket.write('GET /api/slow HTTP/1.1\r\nHost: cinema\r\n\r\n')
        return socket
      }))
      const deadline = Date.now() + 5_000
      while (stubs.monolith.received.filter((r) => r.url === '/api/slow').length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20))
      for (const s of sockets) s.destroy()
      await new Promise((r) => setTimeout(r, 200))
    } finally {
      stubs.monolith.mode = 'ok'
    }
    // Far below UPSTREAM_RESPONSE_TIMEOUT_MS (10 s): the two abandoned calls no longer hold the pool.
    const users = await fetch(`${proxy.url}/api/users`, { signal: AbortSignal.timeout(2_000) })
    expect(users.status).toBe(200)
    expect(await breakerStates()).toEqual([0, 0, 0])
  })

  it('closes a connection that never finishes its headers (slowloris)', async () => {
    const socket = await connect(proxy.port)
    socket.on('error', () => {})
    socket.write('GET /api/users HTTP/1.1\r\nHost: cinema\r\n')
    const trickle = setInterval(() => socket.writable && socket.write('X-Slow: 1\r\n'), 1_000)
    try {
      // CLIENT_HEADERS_TIMEOUT_MS is 10 s by default; generous bound.
      expect(await closedWithin(socket, 25_000)).toBe(true)
    } finally {
      clearInterval(trickle)
      socket.destroy()
    }
  }, 40_000)
})
