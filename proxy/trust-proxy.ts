// TRUST_PROXY: which peers may tell the proxy who the client is (X-Forwarded-For, -Proto,
// -Host). The value is handed to Fastify's `trustProxy` (proxy-addr underneath), so the client
// address Fastify computes (request.ip) is the one rate limiting keys on and the one sent upstream.
//   false (default)        no peer is trusted: the client is the TCP peer
//   a hop count, e.g. 1    that many proxies in front (true is accepted and means 1)
//   addresses and CIDRs    e.g. 10.0.0.0/8,127.0.0.1 (also loopback, linklocal, uniquelocal)
import { isIP } from 'node:net'
import { ConfigError, type EnvField } from '../lib/config.ts'

export type TrustProxy = false | number | string[]

/**
 * The value for Fastify's `trustProxy`. A hop count becomes proxy-addr's classic "the nearest N
 * hops" function: this Fastify fails closed on a bare number, because a hop count cannot tell a
 * load balancer from a client that connects directly. Use it only where the network guarantees
 * the peer (the chart's NetworkPolicy); prefer addresses/CIDRs.
 */
export function fastifyTrustProxy(trust: TrustProxy): string[] | ((address: string, hop: number) => boolean) | undefined {
  if (trust === false) return undefined
  if (typeof trust === 'number') return (_address, hop) => hop < trust
  return trust
}

const NAMED = new Set(['loopback', 'linklocal', 'uniquelocal'])

function validEntry(entry: string): boolean {
  if (NAMED.has(entry)) return true
  const [address, prefix, ...rest] = entry.split('/')
  const family = isIP(address!)
  if (family === 0 || rest.length > 0) return false
  if (prefix === undefined) return true
  return /^\d{1,3}$/.test(prefix) && Number(prefix) <= (family === 4 ? 32 : 128)
}

export function parseTrustProxy(raw: string | undefined, name = 'TRUST_PROXY'): TrustProxy {
  const value = (raw ?? '').trim().toLowerCase()
  if (value === '' || value === 'false' || value === '0') return false
  if (value === 'true') return 1
  if (/^\d{1,2}$/.test(value)) return Number(value)
  const entries = value.split(',').map((s) => s.trim()).filter(Boolean)
  const bad = entries.filter((e) => !validEntry(e))
  if (entries.length === 0 || bad.length > 0) {
    throw new ConfigError(`${name} must be false, a hop count, or comma-separated addresses/CIDRs; not ${bad.map((b) => `"${b}"`).join(', ') || `"${raw}"`}`)
  }
  return entries
}

export const trustProxyEnv: EnvField<TrustProxy> = {
  names: ['TRUST_PROXY'],
  description: 'peers trusted to report the client (X-Forwarded-*): false, a hop count, or addresses/CIDRs',
  parse: (raw, name) => parseTrustProxy(raw, name),
}
