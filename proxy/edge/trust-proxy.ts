// TRUST_PROXY: which peers may tell the proxy who the client is (X-Forwarded-For, -Proto,
// -Host). One trust function (proxy-addr) serves Fastify's `trustProxy` (request.ip, the
// rate-limit key), the X-Forwarded-* headers sent upstream and WebSocket upgrades.
//   false (default)        no peer is trusted: the client is the TCP peer
//   a hop count, e.g. 1    that many proxies in front (true is accepted and means 1)
//   addresses and CIDRs    e.g. 10.0.0.0/8,127.0.0.1 (also loopback, linklocal, uniquelocal)
import type { IncomingMessage } from 'node:http'
import { isIP } from 'node:net'
import proxyaddr from 'proxy-addr'
import { ConfigError, type EnvField } from '../../lib/config.ts'

export type TrustProxy = false | number | string[]

/** Trusts the peer at position `hop` (0 = our TCP peer, 1 = the one before it, ...). */
export type TrustFn = (address: string, hop: number) => boolean

/**
 * The one trust decision, given to Fastify as `trustProxy` (request.ip, the rate-limit key) and
 * used by clientOf() for the forwarded headers and WebSocket upgrades. A hop count is
 * proxy-addr's classic "the nearest N hops" (this Fastify fails closed on a bare number, because
 * a hop count cannot tell a load balancer from a client connecting directly: use it only where
 * the network guarantees the peer, as the chart's NetworkPolicy does; prefer addresses/CIDRs).
 */
export function trustFunction(trust: TrustProxy): TrustFn | undefined {
  if (trust === false) return undefined
  if (typeof trust === 'number') return (_address, hop) => hop < trust
  return proxyaddr.compile(trust)
}

/** Who the client is, as the proxy believes it: what goes upstream as X-Forwarded-*. */
export interface ClientView {
  /** The trusted chain, the client first and our TCP peer last (X-Forwarded-For). */
  forwardedFor: string
  proto: string
  host: string | undefined
}

const lastEntry = (value: string | string[]) => (Array.isArray(value) ? value.join(',') : value).split(',').pop()!.trim()

export function clientOf(raw: IncomingMessage, trust: TrustFn | undefined): ClientView {
  const peer = raw.socket.remoteAddress ?? ''
  const encrypted = Boolean((raw.socket as { encrypted?: boolean }).encrypted)
  if (!trust) return { forwardedFor: peer, proto: encrypted ? 'https' : 'http', host: raw.headers.host }
  const peerTrusted = trust(peer, 0)
  const xfp = raw.headers['x-forwarded-proto']
  const xfh = raw.headers['x-forwarded-host']
  return {
    forwardedFor: proxyaddr.all(raw, trust).reverse().join(', '),
    proto: peerTrusted && xfp ? lastEntry(xfp) : encrypted ? 'https' : 'http',
    host: peerTrusted && xfh ? lastEntry(xfh) : raw.headers.host,
  }
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
