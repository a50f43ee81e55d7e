// The seam the forwarding code uses (select → primaryResponse → primaryChunk… → primaryEnd) and
// totals() for the ramp guard, driven directly: whatever forwards the request only has to report
// the answer through these calls.
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import type { FastifyRequest } from 'fastify'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { eventually } from '../../helpers/poll.ts'
import { captureLogs } from '../../helpers/logs.ts'
import { createMetrics } from '../../../proxy/observability/metrics.ts'
import { parseRouteMap, type Route } from '../../../proxy/model/route-map.ts'
import type { RouteDecision } from '../../../proxy/routing/decision.ts'
import { ShadowComparisons } from '../../../proxy/rollout/shadow/shadow.ts'
import { closeUpstreams, createUpstreams, type Upstreams } from '../../../proxy/forward/upstreams.ts'

let server: http.Server
let upstreams: Upstreams
let route: Route
let shadow: ShadowComparisons

beforeAll(async () => {
  // The target answers {"n": <n>}; the primary (legacy) answer is made up by the test.
  server = http.createServer((req, res) => {
    req.resume()
    res.writeHead(200, { 'content-type': 'application/json' })
    res.end(JSON.stringify({ n: Number(new URL(req.url!, 'http://x').searchParams.get('n')) }))
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  const map = parseRouteMap({
    upstreams: [
      { name: 'legacy', url: 'http://127.0.0.1:1' },
      { name: 'target', url },
    ],
    routes: [{ name: 'r', prefix: '/', legacy: 'legacy', target: 'target', flag: 'f', shadow: { percent: 100 } }],
  })
  route = map.routes[0]
  const metrics = createMetrics()
  const logger = captureLogs().logger
  const defaults = { pool: { connections: 4, connectTimeoutMs: 1000, responseTimeoutMs: 2000, streamIdleTimeoutMs: 2000 }, breaker: { volumeThreshold: 10, errorPercent: 50, resetTimeoutMs: 1000, consecutiveFailures: 5, windowMs: 1000 } }
  upstreams = createUpstreams(map.upstreams, defaults, metrics, logger)
  shadow = new ShadowComparisons({ maxInFlight: 16, timeoutMs: 2000, maxBodyBytes: 1024 }, { routes: map.routes, upstreams, metrics, trust: undefined, logger })
})
afterAll(async () => {
  shadow.close()
  await closeUpstreams(upstreams)
  await new Promise((resolve) => server.close(resolve))
})

const decision: RouteDecision = { side: 'legacy', upstream: 'legacy', reason: 'flag', fallback: 'none', expected: { upstream: 'legacy', reason: 'flag' } }
const request = (n: number) =>
  ({ method: 'GET', url: `/x?n=${n}`, id: `req-${n}`, headers: { host: 'edge' }, body: undefined, raw: { socket: { remoteAddress: '127.0.0.1' }, headers: { host: 'edge' } } }) as unknown as FastifyRequest

describe('the shadow tap contract', () => {
  it('compares what the forwarding code reports, chunk by chunk; totals() counts comparisons and mismatches', async () => {
    expect(shadow.totals('r')).toEqual({ comparisons: 0, mismatches: 0 })
    expect(shadow.totals('unknown')).toEqual({ comparisons: 0, mismatches: 0 })
    for (let n = 1; n <= 6; n++) {
      const tap = shadow.select(route, decision, request(n))!
      expect(tap).toBeDefined()
      tap.primaryResponse('legacy', 200, { 'content-type': 'application/json' })
      // The primary says n, except for n = 3 and 6; its body arrives in two chunks.
      const body = JSON.stringify({ n: n % 3 === 0 ? -n : n })
      tap.primaryChunk(Buffer.from(body.slice(0, 3)))
      tap.primaryChunk(Buffer.from(body.slice(3)))
      tap.primaryEnd()
    }
    await eventually('six comparisons', () => shadow.totals('r').comparisons === 6)
    expect(shadow.totals('r')).toEqual({ comparisons: 6, mismatches: 2 })
    expect(shadow.report('r').mismatches.map((m) => m.differences)).toEqual([
      [{ path: '$.n', legacy: -6, target: 6 }],
      [{ path: '$.n', legacy: -3, target: 3 }],
    ])
  })

  it('a primary that fails or is answered by the shadow side is not compared nor counted in totals()', async () => {
    const before = shadow.totals('r')
    const failed = shadow.select(route, decision, request(7))!
    failed.primaryResponse('legacy', 200, {})
    failed.primaryChunk(Buffer.from('{"n"'))
    failed.primaryFailed()
    failed.primaryEnd()
    const fallback = shadow.select(route, { ...decision, side: 'target', upstream: 'target' }, request(8))!
    fallback.primaryResponse('legacy', 200, {})
    fallback.primaryEnd()
    const events = shadow.select(route, decision, request(9))!
    events.primaryResponse('legacy', 200, { 'content-type': 'text/event-stream' })
    events.primaryChunk(Buffer.from('data: 1\n\n'))
    events.primaryEnd()
    expect(shadow.report('r').notCompared).toMatchObject({ client_gone: 1, primary_failed: 1, event_stream: 1 })
    expect(shadow.totals('r')).toEqual(before)
  })

  it('bounds the memory of answers being captured: maxInFlight × maxBodyBytes for the whole proxy, beyond it dropped', async () => {
    const before = shadow.report('r').counts.dropped
    const taps = Array.from({ length: 20 }, (_, i) => shadow.select(route, decision, request(100 + i))!)
    for (const tap of taps) {
      tap.primaryResponse('legacy', 200, { 'content-type': 'application/json' })
      tap.primaryChunk(Buffer.alloc(1000, 32)) // 16 × 1024 bytes of budget: 16 answers fit
    }
    expect(shadow.report('r').capturedBytes).toBe(16_000)
    expect(shadow.report('r').counts.dropped - before).toBe(4)
    for (const tap of taps) tap.primaryFailed()
    expect(shadow.report('r').capturedBytes).toBe(0)
  })
})
