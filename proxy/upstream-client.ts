// One undici Pool per upstream (keep-alive, bounded connect and response time) and the
// forwarding of one request: hop-by-hop headers stripped both ways, X-Forwarded-* and
// X-Request-Id set, bodies streamed. Undici is used directly rather than through
// @fastify/reply-from: the proxy must see the upstream status before anything is sent (to
// fall back to legacy on a 5xx) and nothing may be retried behind the breaker's back.
import type { FastifyRequest } from 'fastify'
import type { IncomingHttpHeaders } from 'node:http'
import { PassThrough, Readable, Transform } from 'node:stream'
import { Pool, type Dispatcher } from 'undici'
import type { ProxyConfig } from './config.ts'

export type FailureKind = 'connect' | 'timeout' | 'reset' | 'status_5xx' | 'other'

/** An upstream call that counts against the upstream's breaker. */
export class UpstreamFailure extends Error {
  override readonly name = 'UpstreamFailure'
  constructor(
    readonly kind: FailureKind,
    message: string,
    /** For status_5xx: the response, still unread (send it on, or dump it). */
    readonly response?: Dispatcher.ResponseData,
  ) {
    super(message)
  }
}

/** The client sent more than the body limit; not the upstream's fault. */
export class BodyTooLargeError extends Error {
  override readonly name = 'BodyTooLargeError'
  readonly statusCode = 413
  constructor(limit: number) {
    super(`request body is larger than ${limit} bytes`)
  }
}

// Hop-by-hop headers (RFC 9110 7.6.1), plus Host (the upstream's own is sent) and Expect
// (the proxy already answered 100-continue).
const NOT_FORWARDED = new Set([
  'connection', 'keep-alive', 'proxy-authenticate', 'proxy-authorization', 'proxy-connection',
  'te', 'trailer', 'transfer-encoding', 'upgrade', 'expect', 'host',
])

function connectionListed(value: string | string[] | undefined): Set<string> | undefined {
  if (!value) return undefined
  const names = (Array.isArray(value) ? value.join(',') : value).split(',').map((s) => s.trim().toLowerCase()).filter(Boolean)
  const listed = names.filter((n) => n !== 'close' && n !== 'keep-alive')
  return listed.length ? new Set(listed) : undefined
}

/** Request headers for the upstream. */
export function upstreamRequestHeaders(request: FastifyRequest): Record<string, string | string[]> {
  const source = request.headers
  const listed = connectionListed(source.connection)
  const out: Record<string, string | string[]> = {}
  for (const name in source) {
    const value = source[name]
    if (value === undefined || NOT_FORWARDED.has(name) || listed?.has(name)) continue
    out[name] = value
  }
  const client = request.raw.socket.remoteAddress ?? ''
  const prior = source['x-forwarded-for']
  out['x-forwarded-for'] = prior ? `${Array.isArray(prior) ? prior.join(', ') : prior}, ${client}` : client
  out['x-forwarded-proto'] = request.protocol
  if (source.host) out['x-forwarded-host'] = source.host
  out['x-request-id'] = request.id
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

function limitedCopy(limit: number): Transform {
  let seen = 0
  return new Transform({
    transform(chunk: Buffer, _encoding, done) {
      seen += chunk.length
      if (seen > limit) done(new BodyTooLargeError(limit))
      else done(null, chunk)
    },
  })
}

/**
 * The body to stream upstream: undefined (none), or a copy of the request stream (bounded for
 * chunked uploads; a declared Content-Length was checked already). A copy, not the request
 * itself: when the upstream call fails undici destroys the body it was given, and destroying
 * the client's request would drop the client's connection instead of answering it.
 */
export function upstreamBody(request: FastifyRequest, limit: number): Readable | undefined {
  const body = request.body
  if (!(body instanceof Readable)) return undefined
  const copy = request.headers['content-length'] !== undefined ? new PassThrough() : limitedCopy(limit)
  body.pipe(copy)
  return copy
}

export function failureKind(error: unknown): FailureKind {
  const code = (error as { code?: string }).code ?? ''
  if (code === 'UND_ERR_CONNECT_TIMEOUT' || code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT') return 'timeout'
  if (code === 'ECONNREFUSED' || code === 'ENOTFOUND' || code === 'EHOSTUNREACH' || code === 'EAI_AGAIN') return 'connect'
  if (code === 'ECONNRESET' || code === 'UND_ERR_SOCKET' || code === 'EPIPE' || code === 'UND_ERR_CLOSED') return 'reset'
  return 'other'
}

export function createPool(url: string, config: Pick<ProxyConfig, 'upstreamConnectTimeoutMs' | 'upstreamResponseTimeoutMs' | 'upstreamConnections'>): Pool {
  return new Pool(new URL(url).origin, {
    connections: config.upstreamConnections,
    connect: { timeout: config.upstreamConnectTimeoutMs },
    headersTimeout: config.upstreamResponseTimeoutMs,
    bodyTimeout: config.upstreamResponseTimeoutMs,
    keepAliveTimeout: 4_000,
  })
}
