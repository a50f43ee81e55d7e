// One undici Pool per upstream (keep-alive, bounded connect and response time) and the
// forwarding of one request: hop-by-hop headers stripped both ways, X-Forwarded-* and
// X-Request-Id set; request bodies arrive buffered (request-body.ts), responses are streamed. Undici is used directly rather than through
// @fastify/reply-from: the proxy must see the upstream status before anything is sent (to
// fall back to legacy on a 5xx) and nothing may be retried behind the breaker's back.
import type { IncomingHttpHeaders } from 'node:http'
import { Pool } from 'undici'
import { errors, type CatalogueError } from '../../lib/errors.ts'
import { checkOptions } from '../model/options.ts'
import { PoolOptions } from '../model/upstream-options.ts'
import type { ClientView } from '../edge/trust-proxy.ts'

/** Why a call failed; `slow`: its client left after BREAKER_SLOW_CALL_MS without an answer (upstreams.ts). */
export type FailureKind = 'connect' | 'timeout' | 'reset' | 'status_5xx' | 'slow' | 'other'

const UPSTREAM_FAILURE = 'CA_UPSTREAM_FAILURE'

/** An upstream call that counts against the upstream's breaker (internal: the client hears upstreamFailed's answer). */
export class UpstreamFailure extends Error {
  override readonly name = 'UpstreamFailure'
  readonly code = UPSTREAM_FAILURE
  readonly kind: FailureKind
  constructor(kind: FailureKind, message: string) {
    super(message)
    this.kind = kind
  }
}

/** Recognised by code, as the catalogue's errors are (lib/errors.ts). */
export function isUpstreamFailure(error: unknown): error is UpstreamFailure {
  return (error as { code?: unknown } | null)?.code === UPSTREAM_FAILURE
}

/** What the client hears when no upstream answered: 504 for a timeout, else 503. */
export function upstreamFailed(failure: { kind: FailureKind; message: string }): CatalogueError {
  return failure.kind === 'timeout' || failure.kind === 'slow' ? new errors.UPSTREAM_TIMEOUT(failure.message) : new errors.UPSTREAM_UNAVAILABLE(failure.message)
}

// Hop-by-hop headers (RFC 9110 7.6.1), plus Host (the upstream's own is sent) and Expect
// (the proxy already answered 100-continue).
const NOT_FORWARDED = new Set([
  'connection', 'keep-alive', 'proxy-authenticate', 'proxy-authorization', 'proxy-connection',
  'te', 'trailer', 'transfer-encoding', 'upgrade', 'expect', 'host',
])

// What crosses the edge is ours: headers a client must not be able to say to an upstream. The
// proxy's own signals (X-Shadow marks its shadow copies, X-Backend is its QA override, x-proxy-*
// its explain secret and the like) and who the client is: Forwarded, X-Real-IP and their kin
// would let a client name any address to an upstream that believes them; the proxy says it in
// X-Forwarded-* only (trust-proxy.ts decides what of a client's X-Forwarded-* is believed).
const CLIENT_MUST_NOT_SEND = new Set([
  'x-shadow', 'x-backend', 'forwarded', 'x-real-ip', 'x-client-ip', 'true-client-ip', 'cf-connecting-ip',
  'fastly-client-ip', 'x-cluster-client-ip', 'x-original-forwarded-for', 'x-forwarded', 'forwarded-for',
  'x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host', 'x-forwarded-port', 'x-forwarded-server',
])
const isProxyOwn = (name: string) => name.charCodeAt(0) === 120 /* "x" */ && name.startsWith('x-proxy-')

function connectionListed(value: string | string[] | undefined): Set<string> | undefined {
  // The usual values list no header: no split, no set (twice per request).
  if (!value || value === 'keep-alive' || value === 'close') return undefined
  const names = (Array.isArray(value) ? value.join(',') : value).split(',').map((s) => s.trim().toLowerCase()).filter(Boolean)
  const listed = names.filter((n) => n !== 'close' && n !== 'keep-alive')
  return listed.length ? new Set(listed) : undefined
}

/**
 * Request headers for the upstream: the client's end-to-end headers but those it must not send,
 * X-Forwarded-* and X-Request-Id (absent `client` or `requestId`: only when FEATURES_OFF measures
 * those features, and then no X-Forwarded-* at all).
 */
export function upstreamRequestHeaders(source: IncomingHttpHeaders, client: ClientView | undefined, requestId: string | undefined): Record<string, string | string[]> {
  const listed = connectionListed(source.connection)
  const out: Record<string, string | string[]> = {}
  for (const name in source) {
    const value = source[name]
    if (value === undefined || NOT_FORWARDED.has(name) || CLIENT_MUST_NOT_SEND.has(name) || isProxyOwn(name) || listed?.has(name)) continue
    out[name] = value
  }
  if (client) {
    out['x-forwarded-for'] = client.forwardedFor
    out['x-forwarded-proto'] = client.proto
    if (client.host) out['x-forwarded-host'] = client.host
  }
  if (requestId !== undefined) out['x-request-id'] = requestId
  return out
}

/** Response headers for the client (x-request-id stays the proxy's own). */
export function clientResponseHeaders(headers: IncomingHttpHeaders): Record<string, string | string[]> {
  const listed = connectionListed(headers.connection)
  const out: Record<string, string | string[]> = {}
  for (const name in headers) {
    const value = headers[name]
    if (value === undefined || NOT_FORWARDED.has(name) || name === 'x-request-id' || listed?.has(name)) continue
    out[name] = value
  }
  return out
}

// What a client is told about a failed call (the raw error, with internal addresses, goes to the log only).
export const FAILURE_TEXT: Record<FailureKind, string> = {
  connect: 'is unreachable',
  timeout: 'did not answer in time',
  reset: 'dropped the connection',
  status_5xx: 'failed',
  slow: 'did not answer in time',
  other: 'failed',
}

export function failureKind(error: unknown): FailureKind {
  const code = (error as { code?: string }).code ?? ''
  if (code === 'UND_ERR_CONNECT_TIMEOUT' || code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT') return 'timeout'
  if (code === 'ECONNREFUSED' || code === 'ENOTFOUND' || code === 'EHOSTUNREACH' || code === 'EAI_AGAIN') return 'connect'
  if (code === 'ECONNRESET' || code === 'UND_ERR_SOCKET' || code === 'EPIPE' || code === 'UND_ERR_CLOSED') return 'reset'
  return 'other'
}


export function createPool(url: string, options: PoolOptions): Pool {
  const o = checkOptions(PoolOptions, options, `pool of ${url}`)
  return new Pool(new URL(url).origin, {
    connections: o.connections,
    connect: { timeout: o.connectTimeoutMs },
    // Time to the response headers; then a streamed body (SSE, long poll, download) may pause
    // up to the idle timeout between two chunks.
    headersTimeout: o.responseTimeoutMs,
    bodyTimeout: o.streamIdleTimeoutMs,
    keepAliveTimeout: 4_000,
  })
}
