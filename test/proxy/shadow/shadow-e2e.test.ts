// End to end, as processes: the real monolith and movies-service on one test database behind
// the proxy with the shipped route map. Shadowing the movie reads at 100 % compares what the two
// implementations answer — list, one movie, an unknown id, a bad id: they agree with no noise
// rule needed (checked here, so a divergence shows up as failing diff paths); a guarded ramp
// judged on that traffic and those comparisons completes.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { eventually } from '../../helpers/poll.ts'
import { metric } from '../../helpers/metrics.ts'
import { ADMIN_TOKEN, flagsFileAt } from '../proxy-harness.ts'
import { startRealStack, type RealStack } from '../real-stack.ts'

let stack: RealStack
const auth = { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' }

beforeAll(async () => {
  stack = await startRealStack({ FLAGS_FILE: flagsFileAt(50), ADMIN_TOKEN })
})
afterAll(() => stack?.stop())

const url = (path: string) => `${stack.proxy.url}${path}`
/** The operators' listener: the admin API and /metrics. */
const ops = (path: string) => `${stack.proxy.opsUrl}${path}`
const diffs = async () => (await fetch(ops('/admin/routes/movies/diffs'), { headers: auth })).json()

describe('shadowing GET /api/movies between the monolith and movies-service', () => {
  it('finds the two implementations answering the same, both ways round', async () => {
    const on = await fetch(ops('/admin/routes/movies/shadow'), { method: 'PUT', headers: auth, body: JSON.stringify({ percent: 100 }) })
    expect(on.status).toBe(200)
    const paths = ['/api/movies', '/api/movies?id=1', '/api/movies?id=3', '/api/movies?id=999999', '/api/movies?id=abc']
    const upstreams = new Set<string>()
    let requests = 0
    for (let i = 0; i < 20; i++) {
      for (const path of paths) {
        const res = await fetch(url(path), { headers: { 'x-user-id': `viewer-${i}` }, signal: AbortSignal.timeout(10_000) })
        await res.arrayBuffer()
        upstreams.add(res.headers.get('x-upstream')!)
        requests++
      }
    }
    // At 50 % both sides answer clients, so copies went both ways.
    expect(upstreams).toEqual(new Set(['monolith', 'movies-service']))
    await eventually('every copy compared', async () => {
      const { counts } = await diffs()
      return counts.match + counts.mismatch + counts.error + counts.dropped === requests
    })
    const report = await diffs()
    expect(report.mismatches).toEqual([])
    expect(report.counts).toEqual({ match: requests, mismatch: 0, error: 0, dropped: 0 })
    const text = await (await fetch(ops('/metrics'))).text()
    expect(metric(text, 'proxy_shadow_comparisons_total{route="movies",outcome="match"}')).toBe(requests)
  })

  it('a guarded ramp over the matching movies-service completes, judged on real traffic and the shadow comparison', async () => {
    const ramp = async () => (await fetch(ops('/admin/routes/movies/ramp'), { headers: auth })).json()
    const start = await fetch(ops('/admin/routes/movies/ramp'), {
      method: 'PUT',
      headers: auth,
      body: JSON.stringify({ steps: [75, 100], intervalSeconds: 1, minRequests: 10, maxMismatchRatePercent: 0.5, maxLatencyRatio: 20, reason: 'movies-service matches the monolith' }),
    })
    expect([start.status, (await start.json()).percent]).toEqual([200, 75])
    let user = 0
    await eventually(
      'the ramp to complete',
      async () => {
        for (let i = 0; i < 10; i++) await (await fetch(url('/api/movies'), { headers: { 'x-user-id': `ramp-viewer-${user++}` }, signal: AbortSignal.timeout(10_000) })).arrayBuffer()
        return (await ramp()).state === 'completed'
      },
      60_000,
    )
    expect(await ramp()).toMatchObject({ state: 'completed', percent: 100 })
    expect((await diffs()).counts.mismatch).toBe(0)
    const ledger = (await (await fetch(ops('/admin/ledger?route=movies'), { headers: auth })).json()).entries
    expect(ledger.slice(0, 2).map((e: { source: string; from: number; to: number }) => [e.source, e.from, e.to])).toEqual([
      ['ramp', 75, 100],
      ['admin', 50, 75],
    ])
    // Back to 50 % for the next test.
    const back = await fetch(ops('/admin/routes/movies/rollout'), { method: 'PUT', headers: auth, body: JSON.stringify({ percent: 50, reason: 'next test' }) })
    expect(back.status).toBe(200)
  })

  it('a dead movies-service: clients are answered by the monolith, the copies to it are counted as errors', async () => {
    await stack.movies.stop()
    const before = (await diffs()).counts
    for (let i = 0; i < 5; i++) {
      const res = await fetch(url('/api/movies'), { headers: { 'x-user-id': `viewer-${i}` }, signal: AbortSignal.timeout(10_000) })
      expect([res.status, res.headers.get('x-upstream')]).toEqual([200, 'monolith'])
      expect(await res.json()).toHaveLength(5)
    }
    // Clients the flag sends to movies-service fall back to the monolith: no comparison (legacy vs legacy).
    await eventually('the copies to the dead side counted', async () => {
      const { counts, notCompared } = await diffs()
      return counts.error - before.error + notCompared.primary_failed === 5
    })
    expect((await diffs()).counts.mismatch).toBe(0)
  })
})
