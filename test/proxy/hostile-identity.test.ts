// Client identity under each TRUST_PROXY form, over real sockets from 127.0.0.1: a peer outside
// the trusted set cannot choose its rate-limit key or what the upstream is told (X-Forwarded-For,
// -Proto, -Host) by sending forwarding headers, not with a new value per request and not with
// duplicated header lines; a trusted peer's report is used, for the key and upstream alike.
import type { AddressInfo } from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { loadConfig } from '../../proxy/config.ts'
import { startProxy, startStubs, type Stubs } from './proxy-harness.ts'
import { rawRequest } from './raw-client.ts'

let stubs: Stubs
beforeAll(async () => {
  stubs = await startStubs()
})
afterAll(() => stubs?.close())

async function proxyWith(trust: string) {
  const proxy = await startProxy(stubs, { TRUST_PROXY: trust, RATE_LIMIT_MAX: '3', RATE_LIMIT_WINDOW_MS: '60000' })
  await proxy.app.listen({ port: 0, host: '127.0.0.1' })
  return { proxy, port: (proxy.app.server.address() as AddressInfo).port }
}

const get = (port: number, path: string, headerLines: string[] = []) =>
  rawRequest(port, `GET ${path} HTTP/1.1\r\nHost: cinema.internal\r\n${headerLines.map((l) => `${l}\r\n`).join('')}Connection: close\r\n\r\n`)
const seenBy = (path: string) => stubs.monolith.received.find((r) => r.url === path)!.headers

describe('TRUST_PROXY', () => {
  it('parses false, a hop count (true = 1), and addresses/CIDRs; names a bad entry', () => {
    expect(loadConfig({}).trustProxy).toBe(false)
    expect(loadConfig({ TRUST_PROXY: 'false' }).trustProxy).toBe(false)
    expect(loadConfig({ TRUST_PROXY: 'true' }).trustProxy).toBe(1)
    expect(loadConfig({ TRUST_PROXY: '2' }).trustProxy).toBe(2)
    expect(loadConfig({ TRUST_PROXY: '10.0.0.0/8, 127.0.0.1,::1,fd00::/8,loopback' }).trustProxy).toEqual(['10.0.0.0/8', '127.0.0.1', '::1', 'fd00::/8', 'loopback'])
    expect(() => loadConfig({ TRUST_PROXY: '10.0.0.0/33,ingress' })).toThrow(/TRUST_PROXY must be false, a hop count, or comma-separated addresses\/CIDRs; not "10.0.0.0\/33", "ingress"/)
  })

  for (const trust of ['false', '10.0.0.0/8']) {
    it(`${trust}: a peer outside the trusted set is the client, whatever it claims`, async () => {
      const { proxy, port } = await proxyWith(trust)
      try {
        const statuses = []
        for (let i = 0; i < 5; i++) {
          const spoof = i % 2 ? [`X-Forwarded-For: 198.51.100.${i}`] : [`X-Forwarded-For: 198.51.100.${i}`, `X-Forwarded-For: 203.0.113.${i}`]
          statuses.push((await get(port, `/who/${trust}/${i}`, [...spoof, 'X-Forwarded-Proto: https', 'X-Forwarded-Host: evil.example'])).status)
        }
        // One bucket for every request from this peer: new X-Forwarded-For values do not evade the limit.
        expect(statuses).toEqual([200, 200, 200, 429, 429])
        const seen = seenBy(`/who/${trust}/0`)
        expect([seen['x-forwarded-for'], seen['x-forwarded-proto'], seen['x-forwarded-host']]).toEqual(['127.0.0.1', 'http', 'cinema.internal'])
      } finally {
        await proxy.close()
      }
    })
  }

  for (const trust of ['1', 'true', '127.0.0.1', '127.0.0.0/8,10.0.0.0/8']) {
    it(`${trust}: the trusted peer's report is the client, for the rate-limit key and upstream alike`, async () => {
      const { proxy, port } = await proxyWith(trust)
      try {
        // Behind one trusted hop, the client is the last X-Forwarded-For entry: distinct clients, distinct buckets.
        const statuses = []
        for (let i = 0; i < 4; i++) statuses.push((await get(port, `/trusted/${trust}/${i}`, [`X-Forwarded-For: 192.0.2.${i}`])).status)
        expect(statuses).toEqual([200, 200, 200, 200])
        for (let i = 0; i < 3; i++) expect((await get(port, `/trusted/${trust}/same${i}`, ['X-Forwarded-For: 192.0.2.50'])).status).toBe(200)
        expect((await get(port, `/trusted/${trust}/same3`, ['X-Forwarded-For: 192.0.2.50'])).status).toBe(429)
        // An entry the client itself prepended is not believed (one hop trusted, not two): the same key.
        expect((await get(port, `/trusted/${trust}/chain`, ['X-Forwarded-For: 6.6.6.6, 192.0.2.50'])).status).toBe(429)
        // Two header lines are one list (Node joins them): the last entry still decides.
        expect((await get(port, `/trusted/${trust}/dup`, ['X-Forwarded-For: 6.6.6.7', 'X-Forwarded-For: 192.0.2.50'])).status).toBe(429)

        await get(port, `/trusted/${trust}/headers`, ['X-Forwarded-For: 192.0.2.9', 'X-Forwarded-Proto: https', 'X-Forwarded-Host: cinema.example'])
        const seen = seenBy(`/trusted/${trust}/headers`)
        expect([seen['x-forwarded-for'], seen['x-forwarded-proto'], seen['x-forwarded-host']]).toEqual(['192.0.2.9, 127.0.0.1', 'https', 'cinema.example'])
      } finally {
        await proxy.close()
      }
    })
  }

  it('2 hops: an Ingress behind a cloud load balancer; the entry the client wrote itself is still not believed', async () => {
    const { proxy, port } = await proxyWith('2')
    try {
      await get(port, '/two-hops', ['X-Forwarded-For: 6.6.6.6, 192.0.2.77, 10.1.2.3'])
      expect(seenBy('/two-hops')['x-forwarded-for']).toBe('192.0.2.77, 10.1.2.3, 127.0.0.1')
    } finally {
      await proxy.close()
    }
  })
})
