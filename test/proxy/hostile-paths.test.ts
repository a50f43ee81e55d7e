// One way to read a path (issue 32): a real proxy listening on a socket in front of real stub
// upstreams that record what they receive. Every spelling of the proxy's own and the services'
// internal paths is sent byte for byte over raw sockets, with the Authorization header an
// operator would send: each is refused (400 for a target not in canonical form, 404 for a
// reserved prefix), none reaches an upstream — checked at the upstreams — and /admin/explain
// says what the socket request got. The admin API itself is not served on the public listener.
import type { AddressInfo } from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { admin, startProxy, startStubs, type ProxyUnderTest, type Stubs } from './proxy-harness.ts'
import { rawRequest } from './raw-client.ts'

let stubs: Stubs
let proxy: ProxyUnderTest
let port: number

beforeAll(async () => {
  stubs = await startStubs()
  proxy = await startProxy(stubs)
  await proxy.app.listen({ port: 0, host: '127.0.0.1' })
  port = (proxy.app.server.address() as AddressInfo).port
})
afterAll(async () => {
  await proxy?.close()
  await stubs?.close()
})

/** Marks the requests of this file at the upstreams (the proxy's own parity checks carry no such header). */
const PROBE = 'x-hostile-probe'
const everythingReceived = () => [stubs.monolith, stubs.movies, stubs.events].flatMap((s) => [...s.received, ...s.internal])
/** What the upstreams received since `before` (a snapshot of everythingReceived()). */
const receivedSince = (before: ReturnType<typeof everythingReceived>) => {
  const seen = new Set(before)
  return everythingReceived().filter((r) => !seen.has(r))
}
const probesReceived = () => everythingReceived().filter((r) => r.headers[PROBE] !== undefined || r.headers.authorization !== undefined)

const plain = (target: string) => rawRequest(port, `GET ${target} HTTP/1.1\r\nHost: cinema\r\nConnection: close\r\n\r\n`)
const send = (target: string) => rawRequest(port, `GET ${target} HTTP/1.1\r\nHost: cinema\r\nAuthorization: ${admin.authorization}\r\n${PROBE}: 1\r\nConnection: close\r\n\r\n`)

// Spelled as an attacker would, for a reader that normalises differently from the proxy.
const NOT_CANONICAL = [
  '//admin/state',
  '/admin%2Fstate',
  '/admin%2fstate',
  '/api/../admin/state',
  '/api/movies/../../admin/state',
  '/admin/state#/../../api/x',
  '/api/movies#x',
  '/api/%2e%2e/admin/state',
  '/api/%2E%2E/admin/state',
  '/api/.%2e/admin/state',
  '/api/movies/./42',
  '/api/movies/%2e/42',
  '/admin;x=1/state',
  '/api/movies;jsessionid=abc',
  '/api/movies/42;v=1',
  '/api%5Cmovies',
  '/api%5c..%5cadmin/state',
  '/api\\..\\admin/state',
  '/api/movies//42',
  // Six spellings of /internal/parity (and two more).
  '//internal/parity',
  '/internal%2Fparity',
  '/api/../internal/parity',
  '/api/%2e%2e/internal/parity',
  '/internal;a/parity',
  '/internal/parity#x',
]
const RESERVED = [
  '/admin/state',
  '/ADMIN/state',
  '/Admin/State',
  '/%61dmin/state',
  '/%41DMIN/state',
  '/admin',
  '/admin/',
  '/admin?x=1',
  '/internal/parity',
  '/INTERNAL/parity',
  '/Internal/Parity',
  '/%69nternal/parity',
  '/inTERnal/parity?from=0',
  '/metrics',
  '/METRICS',
  '/documentation/json',
  '/Documentation/json',
]

describe('paths the public listener refuses, at the socket and at the upstreams', () => {
  it('refuses every non-canonical spelling with a clean 400 of the catalogue, forwarding nothing', async () => {
    for (const target of NOT_CANONICAL) {
      const a = await send(target)
      expect([target, a.status, a.headers['x-upstream']], a.text).toEqual([target, 400, undefined])
      expect(JSON.parse(a.body), target).toEqual({ code: 'CA_ERR_PATH_NOT_CANONICAL', error: expect.stringMatching(/^the request path must be in canonical form: it contains .+, which this proxy refuses rather than normalises$/) })
      expect(a.headers['content-type']).toMatch(/^application\/json/)
    }
    expect(probesReceived()).toEqual([])
  })

  it('answers every spelling of a reserved prefix 404 itself, forwarding nothing', async () => {
    for (const target of RESERVED) {
      const a = await send(target)
      expect([target, a.status, a.headers['x-upstream']], a.text).toEqual([target, 404, undefined])
      expect(JSON.parse(a.body)).toMatchObject({ code: 'CA_ERR_NO_ROUTE' })
    }
    expect(probesReceived()).toEqual([])
  })

  it('still forwards canonical paths, as they were sent', async () => {
    for (const target of ['/api/movies', '/api/movies/42?x=../..', '/api/users', '/administrators', '/internals', '/api/file.v2.json', '/api/movies/.hidden']) {
      const before = everythingReceived()
      const a = await plain(target)
      expect([target, a.status]).toEqual([target, 200])
      // (A shadow copy of an earlier request may arrive meanwhile: the target is looked for, not counted.)
      expect(receivedSince(before).map((r) => r.url)).toContain(target)
    }
  })

  it('never serves the admin API, the console, /metrics or the OpenAPI document on the public listener, even with the token', async () => {
    for (const target of ['/admin/state', '/admin/', '/admin/console.js', '/admin/ledger', '/metrics', '/documentation/json']) {
      const a = await send(target)
      expect([target, a.status]).toEqual([target, 404])
      expect(a.body).not.toMatch(/routes|breakers|proxy_|openapi/)
    }
    const put = await rawRequest(port, `PUT /admin/routes/movies/rollout HTTP/1.1\r\nHost: cinema\r\nAuthorization: ${admin.authorization}\r\nContent-Type: application/json\r\nContent-Length: 15\r\nConnection: close\r\n\r\n{"percent":100}`)
    expect(put.status).toBe(404)
    expect((await proxy.ops.inject({ url: '/admin/state', headers: admin })).json().routes[0].percent).toBe(30)
    // The public /ready says whether, not why.
    const ready = await send('/ready')
    expect([ready.status, JSON.parse(ready.body)]).toEqual([200, { status: true }])
    expect(probesReceived()).toEqual([])
  })
})

describe('/admin/explain', () => {
  it('says for every spelling what the socket request got', async () => {
    // (An anonymous /api/movies has no fixed side: the canonical controls are routes without a split.)
    for (const target of [...NOT_CANONICAL, ...RESERVED, '/api/users', '/api/events/x']) {
      const socket = await send(target)
      const explained = await proxy.ops.inject({ url: `/admin/explain?path=${encodeURIComponent(target)}`, headers: admin })
      expect(explained.statusCode).toBe(200)
      const body = explained.json()
      const answeredBy = socket.headers['x-upstream'] ?? 'proxy'
      expect({ target, upstream: body.upstream }).toEqual({ target, upstream: answeredBy })
      if (answeredBy === 'proxy') expect({ target, status: body.status }).toEqual({ target, status: socket.status })
    }
  })
})
