// A target killed under load: with the default breaker settings (percentage over a 10 s window
// full of earlier successes, plus BREAKER_CONSECUTIVE_FAILURES=5) the breaker opens within a
// couple of seconds, every GET meanwhile is answered by legacy, and after the target comes back
// the first good trial closes it. Load is a bounded loop of 4 clients on 127.0.0.1.
import type { AddressInfo } from 'node:net'
import { Agent, request } from 'undici'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { metric } from '../helpers/metrics.ts'
import { flagsFileAt, startProxy, startStubs, type ProxyUnderTest, type Stubs } from './proxy-harness.ts'

let stubs: Stubs
let proxy: ProxyUnderTest
let base: string
const agent = new Agent({ connections: 4 })

beforeAll(async () => {
  stubs = await startStubs()
  proxy = await startProxy(stubs, { FLAGS_FILE: flagsFileAt(100), BREAKER_RESET_TIMEOUT_MS: '1000' })
  await proxy.app.listen({ port: 0, host: '127.0.0.1' })
  base = `http://127.0.0.1:${(proxy.app.server.address() as AddressInfo).port}`
})
afterAll(async () => {
  await agent.close()
  await proxy?.close()
  await stubs?.close()
})

const breakerState = async () => metric((await proxy.ops.inject('/metrics')).body, 'proxy_breaker_state{upstream="movies-service"}')

describe('breaker after a kill under load', () => {
  it('opens within a few seconds of the kill, legacy answering every GET meanwhile, and closes after recovery', async () => {
    const statuses = new Map<number, number>()
    let stop = false
    let sent = 0
    const client = async (id: number) => {
      while (!stop && sent < 20_000) {
        sent++
        const res = await request(`${base}/api/movies`, { headers: { 'x-user-id': `load-${id}-${sent}` }, dispatcher: agent })
        await res.body.dump()
        statuses.set(res.statusCode, (statuses.get(res.statusCode) ?? 0) + 1)
      }
    }
    const load = Promise.all([0, 1, 2, 3].map(client))
    try {
      await new Promise((r) => setTimeout(r, 1_000)) // healthy traffic fills the window with successes
      expect(await breakerState()).toBe(0)
      const killedAt = Date.now()
      await stubs.movies.kill()
      while ((await breakerState()) !== 2 && Date.now() - killedAt < 10_000) await new Promise((r) => setTimeout(r, 10))
      const openAfterMs = Date.now() - killedAt
      console.log(`movies-service breaker opened ${openAfterMs} ms after the kill (${sent} requests sent so far)`)
      expect(await breakerState()).toBe(2)
      expect(openAfterMs).toBeLessThan(5_000) // generous: ~tens of ms on an idle machine
    } finally {
      stop = true
      await load
    }
    // Nobody saw the dead target: everything was answered (by movies-service, then by the monolith).
    expect([...statuses.keys()]).toEqual([200])

    await stubs.movies.restart()
    const deadline = Date.now() + 10_000
    while ((await breakerState()) !== 0 && Date.now() < deadline) {
      await (await request(`${base}/api/movies`, { headers: { 'x-user-id': 'after' }, dispatcher: agent })).body.dump()
      await new Promise((r) => setTimeout(r, 50))
    }
    expect(await breakerState()).toBe(0)
  })
})
