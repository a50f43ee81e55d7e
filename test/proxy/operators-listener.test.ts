// The operators' listener (issue 32): the admin API, console, /metrics and the OpenAPI document on
// a listener of their own, with limits of their own. Against real listeners on 127.0.0.1 (and a
// real proxy process on a Unix socket): a client flood and failed logins from one address do not
// stop an operator's valid call; the admin answers are not cached or sniffed; /metrics renders
// at most once per interval; what a client says about itself or the proxy never reaches an upstream.
import { randomBytes } from 'node:crypto'
import http from 'node:http'
import { mkdtempSync, statSync } from 'node:fs'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { loadConfig } from '../../proxy/config.ts'
import { clientKey } from '../../proxy/edge/client-key.ts'
import { metric } from '../helpers/metrics.ts'
import { startService } from '../helpers/processes.ts'
import { ADMIN_TOKEN, admin, flagsFileAt, startProxy, startStubs, type ProxyUnderTest, type Stubs } from './proxy-harness.ts'
import { rawRequest } from './raw-client.ts'

let stubs: Stubs
beforeAll(async () => {
  stubs = await startStubs()
})
afterAll(() => stubs?.close())

const strongToken = () => randomBytes(24).toString('base64url')

async function listenBoth(proxy: ProxyUnderTest): Promise<{ port: number; opsPort: number }> {
  await proxy.app.listen({ port: 0, host: '127.0.0.1' })
  await proxy.ops.listen({ port: 0, host: '127.0.0.1' })
  return { port: (proxy.app.server.address() as AddressInfo).port, opsPort: (proxy.ops.server.address() as AddressInfo).port }
}

const call = (port: number, method: string, path: string, headers: Record<string, string> = {}, body?: string) =>
  rawRequest(
    port,
    `${method} ${path} HTTP/1.1\r\nHost: ops\r\n${Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join('')}${body === undefined ? '' : `Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n`}Connection: close\r\n\r\n${body ?? ''}`,
  )

describe('an operator is never locked out by clients', () => {
  let proxy: ProxyUnderTest
  let port: number
  let opsPort: number
  const BOB = strongToken()
  beforeAll(async () => {
    proxy = await startProxy(stubs, {
      FLAGS_FILE: flagsFileAt(30),
      ADMIN_TOKENS: `bob:${BOB}`,
      RATE_LIMIT_MAX: '5',
      RATE_LIMIT_WINDOW_MS: '60000',
      ADMIN_AUTH_FAILURES_MAX: '3',
      ADMIN_AUTH_BACKOFF_MS: '60000',
      ADMIN_RATE_LIMIT_MAX: '50',
    })
    ;({ port, opsPort } = await listenBoth(proxy))
  })
  afterAll(() => proxy?.close())

  it('a client flood and failed logins from the operator\'s own address leave the operator\'s rollback working', async () => {
    // The public bucket of 127.0.0.1 is spent...
    const flood = await Promise.all(Array.from({ length: 20 }, () => call(port, 'GET', '/api/users')))
    expect(flood.filter((a) => a.status === 429).length).toBeGreaterThanOrEqual(15)
    // ...and wrong tokens from 127.0.0.1 start the back-off.
    const wrong = []
    for (let i = 0; i < 6; i++) wrong.push(await call(opsPort, 'GET', '/admin/state', { authorization: `Bearer wrong-${i}-${strongToken()}` }))
    expect(wrong.map((a) => a.status)).toEqual([401, 401, 401, 429, 429, 429])
    expect(JSON.parse(wrong[3]!.body)).toEqual({ code: 'CA_ERR_ADMIN_AUTH_BACKOFF', error: expect.stringMatching(/^too many failed admin logins from this address; retry in \d+ s$/) })
    expect(Number(wrong[3]!.headers['retry-after'])).toBeGreaterThan(0)
    const missing = await call(opsPort, 'GET', '/admin/state')
    expect(missing.status).toBe(429)

    // The operator, from the same address, still gets through.
    const rollback = await call(opsPort, 'PUT', '/admin/routes/movies/rollout', { authorization: admin.authorization }, JSON.stringify({ percent: 0, reason: 'rollback under attack' }))
    expect([rollback.status, JSON.parse(rollback.body).percent]).toEqual([200, 0])
    const state = await call(opsPort, 'GET', '/admin/state', { authorization: `Bearer ${BOB}` })
    expect(state.status).toBe(200)

    const text = (await proxy.ops.inject('/metrics')).body
    expect(metric(text, 'proxy_admin_auth_failures_total{reason="wrong"}')).toBe(3)
    expect(metric(text, 'proxy_admin_auth_failures_total{reason="backoff"}')).toBe(4)
    expect(metric(text, 'proxy_admin_auth_failures_total{reason="missing"}')).toBe(0)
  })
})

describe('admin limits', () => {
  it('count calls per token: one busy token does not use up another\'s budget', async () => {
    const ALICE = strongToken()
    const proxy = await startProxy(stubs, { ADMIN_TOKENS: `alice:${ALICE}`, ADMIN_RATE_LIMIT_MAX: '3' })
    try {
      const as = (token: string) => ({ url: '/admin/state', headers: { authorization: `Bearer ${token}` } })
      const alice = []
      for (let i = 0; i < 4; i++) alice.push(await proxy.ops.inject(as(ALICE)))
      expect(alice.map((r) => r.statusCode)).toEqual([200, 200, 200, 429])
      expect(alice[3]!.json()).toMatchObject({ code: 'CA_ERR_RATE_LIMITED' })
      expect(Number(alice[3]!.headers['retry-after'])).toBeGreaterThan(0)
      expect((await proxy.ops.inject(as(ADMIN_TOKEN))).statusCode).toBe(200)
      expect(metric((await proxy.ops.inject('/metrics')).body, 'proxy_admin_rate_limited_total')).toBe(1)
      // The console's files and the probes are not the admin API's budget.
      for (const url of ['/admin/', '/health', '/ready', '/metrics']) expect((await proxy.ops.inject(url)).statusCode).toBe(200)
    } finally {
      await proxy.close()
    }
  })
})

describe('answers of the operators\' listener', () => {
  let proxy: ProxyUnderTest
  beforeAll(async () => {
    proxy = await startProxy(stubs, { METRICS_MIN_INTERVAL_MS: '60000' })
  })
  afterAll(() => proxy?.close())

  it('are neither cached nor sniffed', async () => {
    for (const [url, headers] of [['/admin/state', admin], ['/admin/state', {}], ['/admin/ledger', admin], ['/admin/nope', admin], ['/metrics', {}], ['/ready', {}], ['/documentation/json', {}]] as const) {
      const res = await proxy.ops.inject({ url, headers })
      expect([url, res.headers['cache-control'], res.headers['x-content-type-options']]).toEqual([url, 'no-store', 'nosniff'])
    }
    // The console's files are revalidated (no-cache, with ETags), and not sniffed either.
    const page = await proxy.ops.inject('/admin/')
    expect([page.headers['cache-control'], page.headers['x-content-type-options']]).toEqual(['no-cache', 'nosniff'])
  })

  it('document the admin API in /documentation/json', async () => {
    const doc = (await proxy.ops.inject('/documentation/json')).json()
    expect(Object.keys(doc.paths)).toEqual(expect.arrayContaining(['/admin/state', '/admin/explain', '/metrics']))
  })

  it('render /metrics at most once per METRICS_MIN_INTERVAL_MS: scrapes in between get the same text', async () => {
    const first = (await proxy.ops.inject('/metrics')).body
    await proxy.app.inject('/api/users')
    const second = (await proxy.ops.inject('/metrics')).body
    expect(second).toBe(first)
    // Without the interval each scrape renders.
    const fresh = await startProxy(stubs, { METRICS_MIN_INTERVAL_MS: '0' })
    try {
      const count = async () => metric((await fresh.ops.inject('/metrics')).body, 'proxy_requests_total{route="default",upstream="monolith",status_class="2xx",reason="default"}') ?? 0
      const before = await count()
      await fresh.app.inject('/api/users')
      expect(await count()).toBe(before + 1)
    } finally {
      await fresh.close()
    }
  })
})

describe('what crosses the edge is ours', () => {
  it('drops the proxy\'s own headers and what a client says about who it is before the upstream', async () => {
    const proxy = await startProxy(stubs)
    try {
      const { port } = await listenBoth(proxy)
      const before = stubs.monolith.received.length
      const sent = {
        'X-Shadow': 'true',
        'X-Backend': 'target',
        'X-Proxy-Explain': 'guess',
        'X-Proxy-Anything': '1',
        Forwarded: 'for=203.0.113.9;proto=https;host=evil.example',
        'X-Real-IP': '203.0.113.9',
        'X-Client-IP': '203.0.113.9',
        'True-Client-IP': '203.0.113.9',
        'CF-Connecting-IP': '203.0.113.9',
        'X-Forwarded-For': '203.0.113.9',
        'X-Forwarded-Host': 'evil.example',
        'X-Forwarded-Port': '443',
        'X-Custom': 'kept',
      }
      const a = await call(port, 'GET', '/api/users', sent)
      expect(a.status).toBe(200)
      const [seen] = stubs.monolith.received.slice(before)
      for (const name of Object.keys(sent).filter((n) => !/^x-(custom|forwarded-for|forwarded-host)$/i.test(n))) expect([name, seen!.headers[name.toLowerCase()]]).toEqual([name, undefined])
      expect(seen!.headers['x-custom']).toBe('kept')
      // The proxy says who the client is, itself (TRUST_PROXY off: the peer).
      expect([seen!.headers['x-forwarded-for'], seen!.headers['x-forwarded-proto'], seen!.headers['x-forwarded-host']]).toEqual(['127.0.0.1', 'http', 'ops'])
    } finally {
      await proxy.close()
    }
  })

  it('counts an IPv6 client by its /64', async () => {
    expect(clientKey('2001:db8:1:2:a:b:c:d')).toBe('2001:db8:1:2::/64')
    expect(clientKey('2001:DB8:1:2::FFFF')).toBe('2001:db8:1:2::/64')
    expect(clientKey('2001:db8::1')).toBe('2001:db8:0:0::/64')
    expect(clientKey('::1')).toBe('0:0:0:0::/64')
    expect(clientKey('::ffff:192.0.2.7')).toBe('192.0.2.7')
    expect(clientKey('192.0.2.7')).toBe('192.0.2.7')
    expect(clientKey('fe80::1%eth0')).toBe('fe80:0:0:0::/64')
    // Through a trusted load balancer: addresses of one /64 share a bucket, another /64 has its own.
    const proxy = await startProxy(stubs, { TRUST_PROXY: '127.0.0.1', RATE_LIMIT_MAX: '2' })
    try {
      const from = async (address: string) => (await proxy.app.inject({ url: '/api/users', headers: { 'x-forwarded-for': address } })).statusCode
      expect([await from('2001:db8:1:2::1'), await from('2001:db8:1:2::2'), await from('2001:db8:1:2:ffff::3')]).toEqual([200, 200, 429])
      expect(await from('2001:db8:1:3::1')).toBe(200)
    } finally {
      await proxy.close()
    }
  })
})

describe('configuration', () => {
  it('refuses placeholder and low-entropy admin tokens at start, naming the variable', () => {
    for (const token of ['change-me-proxy-admin-token', 'cinemaabyss-local-admin-token', 'CHANGEME-0123456789abcdefghij', 'admin', 'secret', 'password', 'token']) {
      expect(() => loadConfig({ ADMIN_TOKEN: token }), token).toThrow(/ADMIN_TOKEN (is a known placeholder|must be at least 24 characters)/)
    }
    expect(() => loadConfig({ ADMIN_TOKEN: 'abcdefghijklmnopqrstuvw' })).toThrow('ADMIN_TOKEN must be at least 24 characters')
    expect(() => loadConfig({ ADMIN_TOKEN: 'abababababababababababababababab' })).toThrow('ADMIN_TOKEN must have at least 10 different characters')
    expect(() => loadConfig({ ADMIN_TOKENS: 'alice:change-me-alice-0123456789xyz' })).toThrow('ADMIN_TOKENS: the token of "alice" is a known placeholder')
    const token = strongToken()
    expect(loadConfig({ ADMIN_TOKEN: token }).adminTokens).toEqual([{ name: 'admin', token, role: 'owner' }])
  })

  it('puts the operators\' listener on loopback by default, and never on the public port', () => {
    expect(loadConfig({})).toMatchObject({ adminHost: '127.0.0.1', adminPort: 9000, adminSocket: undefined, metricsMinIntervalMs: 1000 })
    expect(() => loadConfig({ PORT: '8000', ADMIN_PORT: '8000' })).toThrow('ADMIN_PORT must differ from PORT')
  })
})

describe('a proxy process with its operators\' listener on a Unix socket', () => {
  it('serves the admin API on the socket (owner only) and not on the public port', { timeout: 60_000 }, async () => {
    const socketPath = join(mkdtempSync(join(tmpdir(), 'proxy-ops-')), 'ops.sock')
    const proxy = await startService('proxy/server.ts', {
      MONOLITH_URL: stubs.monolith.url,
      MOVIES_SERVICE_URL: stubs.movies.url,
      EVENTS_SERVICE_URL: stubs.events.url,
      FLAGS_FILE: flagsFileAt(30),
      ADMIN_TOKEN,
      ADMIN_SOCKET: socketPath,
    })
    try {
      expect(proxy.opsUrl).toBeUndefined()
      expect(statSync(socketPath).mode & 0o077).toBe(0)
      const viaSocket = await new Promise<{ status: number; body: string }>((resolve, reject) => {
        const req = http.request({ socketPath, path: '/admin/state', headers: admin }, (res) => {
          let body = ''
          res.on('data', (c) => (body += c))
          res.on('end', () => resolve({ status: res.statusCode!, body }))
        })
        req.on('error', reject)
        req.end()
      })
      expect(viaSocket.status).toBe(200)
      expect(JSON.parse(viaSocket.body).routes[0]).toMatchObject({ name: 'movies', percent: 30 })
      expect((await fetch(`${proxy.url}/admin/state`, { headers: admin })).status).toBe(404)
    } finally {
      expect(await proxy.stop()).toBe(0)
    }
  })
})
