// The runtime of each declared upstream: its connection pool, its breaker, the options they were
// built with (route-map overrides over the UPSTREAM_*/BREAKER_* defaults), and `call`, the one
// way anything reaches an upstream. Proxied requests, WebSocket handshakes, shadow copies and
// readiness probes all go through `call`: breaker, pool, failure classification, metrics and
// logging in one place, and a result (answer, failure, client gone) instead of a thrown response.
import { EventEmitter } from 'node:events'
import http, { type IncomingHttpHeaders, type IncomingMessage } from 'node:http'
import https from 'node:https'
import type { Duplex, Readable } from 'node:stream'
import type { Dispatcher, Pool } from 'undici'
import type { Logger } from '../../lib/logger.ts'
import type { ProxyConfig } from '../config.ts'
import type { BreakerOptions, PoolOptions } from '../model/upstream-options.ts'
import { createBreaker, isBreakerOpenError, type UpstreamBreaker } from './breakers.ts'
import type { ProxyMetrics } from '../observability/metrics.ts'
import type { Upstream } from '../model/route-map.ts'
import { FAILURE_TEXT, UpstreamFailure, createPool, failureKind, isUpstreamFailure, type FailureKind } from './upstream-client.ts'

/** The client side of a call: emits 'abort' (and has `aborted` set) when the client goes away. Undici takes it as a signal. */
export interface ClientSignal {
  readonly aborted: boolean
  once(event: 'abort', listener: () => void): unknown
  off(event: 'abort', listener: () => void): unknown
}

export interface UpstreamRequest {
  method: string
  /** Path and query as the client sent them; the upstream's base path is put in front. */
  url: string
  headers: Record<string, string | string[]>
  body?: Buffer
  /** The client waiting for the answer; absent = nobody leaves early. */
  client?: ClientSignal
  /** A WebSocket (any `Upgrade`) handshake, on a connection of its own (never the pool). */
  upgrade?: boolean
  /** Shadow copies and readiness probes: not judged by the breaker, answered (headers and body) within this time. */
  uncountedTimeoutMs?: number
  /** The request's logger (its id goes with every line). */
  log?: { warn(fields: object, message: string): void }
}

/** What the upstream sent: status, headers and the body still unread (stream it on, or `discard()`). */
export interface UpstreamAnswer {
  statusCode: number
  headers: IncomingHttpHeaders
  body: Readable
  /** 101 Switching Protocols: the upstream's socket, the bytes after its handshake, its header lines as sent. */
  upgraded?: { socket: Duplex; head: Buffer; rawHeaders: string[] }
  /** Reads and drops the body (the connection goes back to the pool). */
  discard(): void
}

export type UpstreamResult =
  /** Any status below 500. */
  | { kind: 'answer'; answer: UpstreamAnswer }
  /** Counted against the upstream (unless `circuit_open`, where it was not called); a 5xx answer comes along, unread. */
  | { kind: 'failure'; failure: FailureKind | 'circuit_open'; message: string; answer?: UpstreamAnswer; cause?: string }
  /** The client left first; what the call meant for the upstream was counted as its outcome says. */
  | { kind: 'client-gone' }

export interface UpstreamRuntime {
  upstream: Upstream
  pool: Pool
  /** The URL's path, prefixed to every forwarded path (an upstream may live below a path). */
  basePath: string
  breaker: UpstreamBreaker
  /** The pool options in force for this upstream (WebSocket handshakes and tunnels apply the same timeouts). */
  poolOptions: PoolOptions
  /** The one upstream call. */
  call(request: UpstreamRequest): Promise<UpstreamResult>
}

export interface UpstreamDefaults {
  pool: PoolOptions
  breaker: BreakerOptions
  /** Calls go through the breakers (default); false only to measure what they cost (FEATURES_OFF=breaker). */
  breakers?: boolean
}

export type Upstreams = ReadonlyMap<string, UpstreamRuntime>

/** The UPSTREAM_* and BREAKER_* settings, as every upstream gets them unless its route-map entry overrides. */
export function upstreamDefaults(config: ProxyConfig): UpstreamDefaults {
  return {
    pool: {
      connections: config.upstreamConnections,
      connectTimeoutMs: config.upstreamConnectTimeoutMs,
      responseTimeoutMs: config.upstreamResponseTimeoutMs,
      streamIdleTimeoutMs: config.upstreamStreamIdleTimeoutMs,
    },
    breaker: {
      volumeThreshold: config.breakerVolumeThreshold,
      errorPercent: config.breakerErrorPercent,
      resetTimeoutMs: config.breakerResetTimeoutMs,
      consecutiveFailures: config.breakerConsecutiveFailures,
      windowMs: config.breakerWindowMs,
      slowCallMs: config.breakerSlowCallMs,
      slowCallPercent: config.breakerSlowCallPercent,
    },
  }
}

export function createUpstreams(declared: readonly Upstream[], defaults: UpstreamDefaults, metrics: ProxyMetrics, logger: Logger): Upstreams {
  const runtimes = new Map<string, UpstreamRuntime>()
  for (const upstream of declared) {
    const poolOptions = { ...defaults.pool, ...upstream.pool }
    const breakerOptions = { ...defaults.breaker, ...upstream.breaker }
    const rt: UpstreamRuntime = {
      upstream,
      pool: createPool(upstream.url, poolOptions),
      basePath: new URL(upstream.url).pathname.replace(/\/+$/, ''),
      breaker: createBreaker(upstream.name, breakerOptions, metrics, logger),
      poolOptions,
      call: (request) => callUpstream(rt, request, { slowCallMs: breakerOptions.slowCallMs ?? Infinity, judged: defaults.breakers !== false, metrics, logger }),
    }
    runtimes.set(upstream.name, rt)
  }
  return runtimes
}

export async function closeUpstreams(upstreams: Upstreams): Promise<void> {
  for (const rt of upstreams.values()) {
    rt.breaker.shutdown()
    await rt.pool.close().catch(() => rt.pool.destroy())
  }
}

/** Thrown inside the breaker when the client left before the slow-call threshold and the upstream had not answered: not the upstream's failure. */
const CLIENT_GONE = 'CA_CLIENT_GONE_BEFORE_ANSWER'

/**
 * One call: through the breaker unless uncounted. A client that leaves does not decide the
 * upstream's outcome: the call goes on until the upstream answers (its real outcome counts, the
 * answer is dropped) or until BREAKER_SLOW_CALL_MS since the start, when it is aborted as a `slow`
 * failure — so impatient clients of a hanging upstream open its breaker, and a quick client who
 * leaves neither closes a half-open breaker nor resets the failures in a row.
 */
async function callUpstream(rt: UpstreamRuntime, request: UpstreamRequest, deps: { slowCallMs: number; judged: boolean; metrics: ProxyMetrics; logger: Logger }): Promise<UpstreamResult> {
  const name = rt.upstream.name
  const log = request.log ?? deps.logger
  const started = Date.now()
  const abort = new CallAbort()
  let slowTimer: NodeJS.Timeout | undefined
  let clientLeft = false
  const onClientGone = () => {
    clientLeft = true
    const left = deps.slowCallMs - (Date.now() - started)
    const giveUp = () => abort.abort(new UpstreamFailure('slow', `${name} ${FAILURE_TEXT.slow}`))
    // An uncounted call (shadow copy, probe) whose caller gave up is simply abandoned.
    if (request.uncountedTimeoutMs !== undefined) abort.abort()
    else if (left <= 0) giveUp()
    else if (left < Infinity) slowTimer = setTimeout(giveUp, left)
  }
  if (request.client?.aborted) onClientGone()
  else request.client?.once('abort', onClientGone)

  const attempt = async (): Promise<UpstreamAnswer> => {
    let answer: UpstreamAnswer
    try {
      answer = request.upgrade ? await handshake(rt, request, abort.asAbortSignal()) : await poolRequest(rt, request, abort)
    } catch (thrown) {
      const reason = abort.reason
      const error = isUpstreamFailure(reason) ? reason : thrown
      if (!isUpstreamFailure(reason) && abort.aborted) throw Object.assign(new Error('client gone'), { code: CLIENT_GONE })
      const kind = isUpstreamFailure(error) ? error.kind : failureKind(error)
      deps.metrics.upstreamFailures.labels(name, kind).inc()
      log.warn({ upstream: name, kind, err: (error as Error).message, upgrade: request.upgrade || undefined }, 'upstream call failed')
      if (isUpstreamFailure(error)) throw error
      // The raw error (internal addresses) goes to logs and the admin API only, never to clients.
      throw Object.assign(new UpstreamFailure(kind, `${name} ${FAILURE_TEXT[kind]}`), { cause: `${(error as { code?: string }).code ?? 'error'}: ${(error as Error).message}` })
    }
    if (answer.statusCode >= 500) {
      deps.metrics.upstreamFailures.labels(name, 'status_5xx').inc()
      throw Object.assign(new UpstreamFailure('status_5xx', `${name} answered ${answer.statusCode}`), { answer })
    }
    return answer
  }

  try {
    const answer = request.uncountedTimeoutMs !== undefined || !deps.judged ? await attempt() : await rt.breaker.fire(attempt)
    if (!clientLeft) return { kind: 'answer', answer }
    answer.discard()
    return { kind: 'client-gone' }
  } catch (error) {
    if (isBreakerOpenError(error)) return { kind: 'failure', failure: 'circuit_open', message: `${name} is unavailable (circuit open)` }
    if ((error as { code?: string }).code === CLIENT_GONE) return { kind: 'client-gone' }
    if (!isUpstreamFailure(error)) throw error
    const answer = (error as UpstreamFailure & { answer?: UpstreamAnswer }).answer
    if (clientLeft) {
      answer?.discard()
      return { kind: 'client-gone' }
    }
    const cause = typeof error.cause === 'string' ? { cause: error.cause } : {}
    return { kind: 'failure', failure: error.kind, message: error.message, ...(answer ? { answer } : {}), ...cause }
  } finally {
    clearTimeout(slowTimer)
    request.client?.off('abort', onClientGone)
  }
}

/**
 * A call's abort signal: an EventEmitter with `aborted` and `reason`, which undici takes as a
 * signal, at about half an AbortController's cost per request (node:http, for handshakes, needs
 * a real AbortSignal: asAbortSignal()).
 */
class CallAbort extends EventEmitter {
  aborted = false
  reason: unknown = undefined
  abort(reason: unknown = Object.assign(new Error('This operation was aborted'), { name: 'AbortError' })): void {
    if (this.aborted) return
    this.aborted = true
    this.reason = reason
    this.emit('abort')
  }
  asAbortSignal(): AbortSignal {
    const controller = new AbortController()
    if (this.aborted) controller.abort(this.reason)
    else this.once('abort', () => controller.abort(this.reason))
    return controller.signal
  }
}

async function poolRequest(rt: UpstreamRuntime, request: UpstreamRequest, signal: CallAbort): Promise<UpstreamAnswer> {
  const ms = request.uncountedTimeoutMs
  const response = await rt.pool.request({
    path: rt.basePath + request.url,
    method: request.method as Dispatcher.HttpMethod,
    headers: request.headers,
    body: request.body,
    signal,
    ...(ms !== undefined ? { headersTimeout: ms, bodyTimeout: ms } : {}),
  })
  const body = response.body
  return { statusCode: response.statusCode, headers: response.headers, body, discard: () => void body.dump().catch(() => {}) }
}

/** The upgrade request on a connection of its own; bounded by the pool's connect + response timeouts. */
function handshake(rt: UpstreamRuntime, request: UpstreamRequest, signal: AbortSignal): Promise<UpstreamAnswer> {
  return new Promise((resolve, reject) => {
    const target = new URL(rt.upstream.url)
    const upstreamReq = (target.protocol === 'https:' ? https : http).request({
      host: target.hostname,
      port: target.port,
      path: rt.basePath + request.url,
      method: request.method,
      headers: request.headers,
      agent: false,
      signal,
    })
    const timer = setTimeout(() => upstreamReq.destroy(new UpstreamFailure('timeout', `${rt.upstream.name} ${FAILURE_TEXT.timeout}`)), rt.poolOptions.connectTimeoutMs + rt.poolOptions.responseTimeoutMs)
    upstreamReq.on('upgrade', (res: IncomingMessage, socket: Duplex, head: Buffer) => {
      clearTimeout(timer)
      resolve({ statusCode: res.statusCode!, headers: res.headers, body: res, upgraded: { socket, head, rawHeaders: res.rawHeaders }, discard: () => socket.destroy() })
    })
    upstreamReq.on('response', (res: IncomingMessage) => {
      clearTimeout(timer)
      resolve({ statusCode: res.statusCode!, headers: res.headers, body: res, discard: () => void res.resume() })
    })
    upstreamReq.on('error', (error) => {
      clearTimeout(timer)
      reject(error)
    })
    upstreamReq.end()
  })
}
