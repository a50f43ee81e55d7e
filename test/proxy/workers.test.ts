// PROXY_WORKERS=2: two proxy processes behind one port (node:cluster). Both serve, GET /metrics
// adds up over both whichever answers it, and SIGTERM stops them all gracefully.
import http from 'node:http'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { metric } from '../helpers/metrics.ts'
import { eventually } from '../helpers/poll.ts'
import { startService, type ServiceProcess } from '../helpers/processes.ts'
import { startStubUpstream, type StubUpstream } from './stub-upstream.ts'

/** One request on a connection of its own, so the primary hands each to the next worker. */
function getOnNewConnection(url: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    http
      .get(url, { agent: false, headers: { connection: 'close' } }, (res) => {
        let body = ''
        res.setEncoding('utf8')
        res.on('data', (d) => (body += d))
        res.on('end', () => resolve({ status: res.statusCode!, body }))
      })
      .on('error', reject)
  })
}

describe('PROXY_WORKERS=2', () => {
  let monolith: StubUpstream
  let movies: StubUpstream
  let proxy: ServiceProcess
  beforeAll(async () => {
    ;[monolith, movies] = await Promise.all([startStubUpstream('monolith'), startStubUpstream('movies-service')])
    proxy = await startService(
      'proxy/server.ts',
      { PROXY_WORKERS: '2', LOG_LEVEL: 'info', MONOLITH_URL: monolith.url, MOVIES_SERVICE_URL: movies.url, EVENTS_SERVICE_URL: monolith.url, RATE_LIMIT_MAX: '0' },
      { readyPath: '/ready', timeoutMs: 120_000 }, // three cold starts on a loaded machine
    )
    // /ready is answered as soon as one worker listens; the test needs both.
    await eventually('both workers listening', () => proxy.output().includes('all proxy workers listening'), 120_000)
  }, 270_000)
  afterAll(async () => {
    await proxy?.stop()
    await Promise.all([monolith?.close(), movies?.close()])
  })

  it('serves from both workers and sums their metrics in every scrape', async () => {
    const requests = 40
    for (let i = 0; i < requests; i++) {
      const res = await getOnNewConnection(`${proxy.url}/api/users?n=${i}`)
      expect(res.status).toBe(200)
      expect(JSON.parse(res.body).upstream).toBe('monolith')
    }
    const servedBy = new Set(
      proxy
        .output()
        .split('\n')
        .filter((line) => line.includes('"msg":"request"') && line.includes('/api/users'))
        .map((line) => JSON.parse(line).worker as number),
    )
    expect([...servedBy].sort()).toEqual([1, 2])

    // Several scrapes on new connections land on both workers: each one is the total.
    for (let i = 0; i < 4; i++) {
      const scrape = await getOnNewConnection(`${proxy.opsUrl}/metrics`)
      expect(scrape.status).toBe(200)
      expect(metric(scrape.body, 'proxy_requests_total{route="default",upstream="monolith",status_class="2xx"}')).toBe(requests)
      expect(metric(scrape.body, 'proxy_request_duration_seconds_count{route="default",upstream="monolith"}')).toBe(requests)
      // Gauges are not summed: a closed breaker in both workers reads closed, loaded flags read loaded.
      expect(metric(scrape.body, 'proxy_breaker_state{upstream="monolith"}')).toBe(0)
      expect(metric(scrape.body, 'proxy_flags_loaded')).toBe(1)
      expect(metric(scrape.body, 'nodejs_eventloop_lag_seconds')).toBeDefined()
    }
  })

  it('stops every worker gracefully on SIGTERM', async () => {
    expect(await proxy.stop()).toBe(0)
    const stoppedLines = proxy.output().split('\n').filter((line) => line.includes('"msg":"stopped"'))
    expect(stoppedLines).toHaveLength(3) // two workers, then the primary
  })
})
