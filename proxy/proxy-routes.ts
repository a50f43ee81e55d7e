// The proxied routes: every route-map prefix is a Fastify route (the router does the prefix
// matching), the request goes to the side the flag picks, through that upstream's breaker.
// When the target fails or its breaker is open, GET/HEAD are answered by the legacy upstream;
// other methods get 503 and are never sent twice. Legacy unavailable: 503 with Retry-After.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { EventEmitter } from 'node:events'
import type { ServerResponse } from 'node:http'
import type { Dispatcher } from 'undici'
import { Type, type Static } from '@sinclair/typebox'
import { isBreakerOpenError } from './breakers.ts'
import type { FlagSource } from './flag-source.ts'
import type { ProxyMetrics } from './metrics.ts'
import type { TrafficRecorder } from './ramp/traffic.ts'
import type { Route } from './route-map.ts'
import type { ShadowComparisons, ShadowTap } from './shadow/shadow.ts'
import type { UpstreamRuntime, Upstreams } from './upstreams.ts'
import { FORWARDED_METHODS } from './edge-guards.ts'
import { errors, type CatalogueError } from '../lib/errors.ts'
import { bufferRequestBodies } from './request-body.ts'
import { checkOptions } from './options.ts'
import { SideOptions, decideRoute, requestFacts, type RouteDecision, type RouteReason } from './routing.ts'
import { clientOf, type TrustFn } from './trust-proxy.ts'
import { FAILURE_TEXT, UpstreamFailure, clientResponseHeaders, failureKind, isUpstreamFailure, upstreamFailed, upstreamRequestHeaders } from './upstream-client.ts'
import type { ProxyTracing } from './tracing.ts'

export const ProxyRoutesSettings = Type.Composite([
  SideOptions,
  Type.Object({
    /** Largest request body; larger answers 413. */
    bodyLimitBytes: Type.Integer({ minimum: 1 }),
    /** Longest pause between two reads of a request body; then 408. */
    bodyIdleTimeoutMs: Type.Integer({ minimum: 1 }),
    /** Retry-After sent with a 503. */
    retryAfterSeconds: Type.Integer({ minimum: 1 }),
  }),
])
export type ProxyRoutesSettings = Static<typeof ProxyRoutesSettings>

export interface ProxyRoutesOptions {
  settings: ProxyRoutesSettings
  routes: Route[]
  upstreams: Upstreams
  flags: FlagSource
  metrics: ProxyMetrics
  /** TRUST_PROXY's trust function (undefined = no peer trusted). */
  trust: TrustFn | undefined
  /** Shadow comparison (proxy/shadow/); absent = off. */
  shadow?: ShadowComparisons
  /** The ramp guard's per-route traffic (proxy/ramp/traffic.ts). */
  traffic?: TrafficRecorder
  /** Tracing on (proxy/tracing.ts): the decision on the request's span, a span per upstream attempt. */
  tracing?: ProxyTracing
}

declare module 'fastify' {
  interface FastifyRequest {
    proxyRoute: string | null
    proxyUpstream: string | null
    proxyReason: RouteReason | null
    shadowTap: ShadowTap | null
  }
  interface FastifyContextConfig {
    /** The route-map entry a proxied Fastify route serves. */
    proxyRoute?: Route
  }
}

export async function proxyRoutes(app: FastifyInstance, opts: ProxyRoutesOptions): Promise<void> {
  const { flags, metrics, upstreams, tracing } = opts
  const settings = checkOptions(ProxyRoutesSettings, opts.settings, 'proxy routes')
  bufferRequestBodies(app, { limit: settings.bodyLimitBytes, idleTimeoutMs: settings.bodyIdleTimeoutMs })

  app.decorateRequest('proxyRoute', null)
  app.decorateRequest('proxyUpstream', null)
  app.decorateRequest('proxyReason', null)
  app.decorateRequest('shadowTap', null)
  // Callback style, not async: one promise less per request on the hot path.
  app.addHook('onResponse', (request, reply, done) => {
    if (request.proxyRoute !== null) {
      metrics.observe(request.proxyRoute, request.proxyUpstream ?? 'proxy', reply.statusCode, request.proxyReason ?? 'default', reply.elapsedTime / 1000)
      opts.traffic?.record(request.proxyRoute, request.proxyUpstream ?? 'proxy', reply.statusCode, request.proxyReason ?? 'default', reply.elapsedTime) // RAMP GUARD: per-route, per-side traffic (proxy/ramp/traffic.ts)
    }
    done()
  })

  /**
   * One upstream call through its breaker; resolves with a < 500 answer, rejects otherwise.
   * The body is complete (buffered) before the call starts; a client that goes away aborts the
   * call at once, which is not the upstream's failure.
   */
  function call(rt: UpstreamRuntime, request: FastifyRequest, signal: ClientGone, attempt: 'primary' | 'fallback' = 'primary'): Promise<Dispatcher.ResponseData> {
    // TRACING: each attempt in its own span (a fallback shows both).
    return tracing ? tracing.upstreamAttempt(request, rt, attempt, () => fire(rt, request, signal)) : fire(rt, request, signal)
  }

  function fire(rt: UpstreamRuntime, request: FastifyRequest, signal: ClientGone): Promise<Dispatcher.ResponseData> {
    return rt.breaker.fire(async () => {
      let response: Dispatcher.ResponseData
      const headers = upstreamRequestHeaders(request.headers, clientOf(request.raw, opts.trust), request.id)
      tracing?.dropIncomingContext(headers) // TRACING: undici's client span sends the proxy's traceparent
      try {
        response = await rt.pool.request({
          path: rt.basePath + request.url,
          method: request.method as Dispatcher.HttpMethod,
          headers,
          body: request.body as Buffer | undefined,
          signal,
        })
      } catch (error) {
        if (signal.aborted) throw new errors.CLIENT_GONE()
        const kind = failureKind(error)
        metrics.upstreamFailures.labels(rt.upstream.name, kind).inc()
        request.log.warn({ upstream: rt.upstream.name, kind, err: (error as Error).message }, 'upstream call failed')
        throw new UpstreamFailure(kind, `${rt.upstream.name} ${FAILURE_TEXT[kind]}`)
      }
      if (response.statusCode >= 500) {
        metrics.upstreamFailures.labels(rt.upstream.name, 'status_5xx').inc()
        throw new UpstreamFailure('status_5xx', `${rt.upstream.name} answered ${response.statusCode}`, response)
      }
      return response
    })
  }

  /**
   * The upstream's answer goes to the client: status and headers (with those the proxy set so
   * far: x-request-id, x-ratelimit-*, the sticky cookie), then the body chunk by chunk with
   * backpressure, straight onto the socket (the reply is hijacked: no stream wrapper, no onSend
   * hooks). The onResponse hooks still run when it finishes (access log, metrics).
   */
  function send(reply: FastifyReply, response: Dispatcher.ResponseData, upstream: string, reason: RouteReason): void {
    const request = reply.request
    request.proxyUpstream = upstream
    request.proxyReason = reason
    tracing?.annotateAnswer(request, upstream, reason) // TRACING
    // [shadow seam 2/3] the tap sees the answer's status and headers, then each chunk on its way to the client.
    const tap = request.shadowTap
    tap?.primaryResponse(upstream, response.statusCode, response.headers)
    const own = reply.getHeaders()
    reply.hijack()
    const res = reply.raw
    // As reply.headers() would merge them: the upstream's win, except that Set-Cookie adds up.
    const headers = clientResponseHeaders(response.headers)
    for (const name in own) {
      const value = own[name] as string | string[] | number
      if (!(name in headers)) res.setHeader(name, value)
      else if (name === 'set-cookie') headers[name] = [value, headers[name]!].flat().map(String)
    }
    for (const name in headers) res.setHeader(name, headers[name]!)
    res.setHeader('x-upstream', upstream)
    res.setHeader('x-route-reason', reason)
    res.statusCode = response.statusCode
    // Headers go out with the first chunk (or the end), so an upstream that fails before its first byte still gets a clean 500.
    const body = response.body
    const onDrain = () => body.resume()
    body.on('data', (chunk: Buffer) => {
      tap?.primaryChunk(chunk)
      if (!res.write(chunk)) body.pause()
    })
    body.on('end', () => {
      res.off('drain', onDrain)
      res.end()
      // [shadow seam 3/3] the whole answer was passed on: the copy may start (or, below, it never completed).
      tap?.primaryEnd()
    })
    body.on('error', (error: Error) => {
      tap?.primaryFailed()
      if (res.headersSent || res.destroyed) {
        request.log.warn({ err: error }, 'response terminated with an error with headers already sent')
        return void res.destroy()
      }
      request.log.error({ err: error }, 'request failed')
      writeJson(res, 500, { error: 'internal server error' })
    })
    res.on('drain', onDrain)
    res.once('close', () => {
      if (res.writableFinished) return
      tap?.primaryFailed()
      body.destroy()
    })
  }

  function unavailable(reply: FastifyReply, reason: RouteReason, error: CatalogueError): FastifyReply {
    reply.request.proxyUpstream = 'proxy'
    reply.request.proxyReason = reason
    tracing?.annotateAnswer(reply.request, 'proxy', reason) // TRACING
    if (error.statusCode === 503) reply.header('retry-after', String(settings.retryAfterSeconds))
    return reply.code(error.statusCode).header('x-upstream', 'proxy').header('x-route-reason', reason).send({ error: error.message })
  }

  /** Legacy answers or the client gets a clear 502/503/504; a legacy 5xx is passed on as it is. */
  async function viaLegacy(route: Route, request: FastifyRequest, reply: FastifyReply, reason: RouteReason, signal: ClientGone) {
    const rt = upstreams.get(route.legacy.name)!
    try {
      return send(reply, await call(rt, request, signal, reason === 'fallback' ? 'fallback' : 'primary'), rt.upstream.name, reason)
    } catch (error) {
      if (isUpstreamFailure(error) && error.response) return send(reply, error.response, rt.upstream.name, reason)
      if (isBreakerOpenError(error)) return unavailable(reply, reason, new errors.CIRCUIT_OPEN(rt.upstream.name))
      if (isUpstreamFailure(error)) return unavailable(reply, reason, upstreamFailed(error))
      throw error
    }
  }

  async function viaTarget(route: Route, request: FastifyRequest, reply: FastifyReply, decision: RouteDecision, signal: ClientGone) {
    const { reason } = decision
    const rt = upstreams.get(route.target!.name)!
    try {
      return send(reply, await call(rt, request, signal), rt.upstream.name, reason)
    } catch (error) {
      if (!isUpstreamFailure(error) && !isBreakerOpenError(error)) throw error
      if (isUpstreamFailure(error)) error.response?.body.dump().catch(() => {})
      const what = isBreakerOpenError(error) ? `${rt.upstream.name} is unavailable (circuit open)` : (error as UpstreamFailure).message
      if (decision.fallback === 'none') {
        // Not idempotent: it may have reached the target, so it is neither retried nor replayed on legacy.
        return unavailable(reply, reason, new errors.WRITE_NOT_RETRIED(what))
      }
      rt.breaker.countFallback()
      metrics.fallbacks.labels(route.name, rt.upstream.name, route.legacy.name).inc()
      request.log.warn({ route: route.name, from: rt.upstream.name, to: route.legacy.name, cause: what }, 'fallback to legacy')
      return viaLegacy(route, request, reply, 'fallback', signal)
    }
  }

  async function forward(route: Route, request: FastifyRequest, reply: FastifyReply) {
    request.proxyRoute = route.name
    const signal = abortWhenClientGoes(reply)
    const facts = requestFacts(route, request, settings)
    if (facts.setCookie) reply.header('set-cookie', facts.setCookie)
    // The breakers are not consulted here: the call goes through them and they answer for themselves.
    const decision = decideRoute(route, facts, flags)
    // [shadow seam 1/3] a share of requests is copied to the other side after the answer (proxy/shadow/).
    request.shadowTap = opts.shadow?.select(route, decision, request) ?? null
    tracing?.annotateDecision(request, route, decision, request.shadowTap !== null) // TRACING
    return decision.side === 'target' ? viaTarget(route, request, reply, decision, signal) : viaLegacy(route, request, reply, decision.reason, signal)
  }

  // A request without a body is forwarded from preParsing (after every onRequest hook: edge
  // guards, request id, rate limit): Fastify's body, validation and handler stages have nothing
  // to do for it. A request with a body is buffered first (request-body.ts), then the route
  // handler forwards it.
  app.addHook('preParsing', (request, reply, _payload, done) => {
    const route = request.routeOptions.config.proxyRoute
    const { headers } = request.raw
    if (!route || headers['transfer-encoding'] !== undefined || (headers['content-length'] !== undefined && headers['content-length'] !== '0')) return done()
    forward(route, request, reply).catch((error: Error) => reply.send(error))
  })

  for (const route of opts.routes) {
    const handler = (request: FastifyRequest, reply: FastifyReply) => forward(route, request, reply)
    const paths = route.prefix === '/' ? ['/', '/*'] : [route.prefix, `${route.prefix}/*`]
    // Forwarded as they come: the services' own OpenAPI documents describe them, not the proxy's.
    for (const url of paths) app.route({ method: [...FORWARDED_METHODS], url, schema: { hide: true }, config: { proxyRoute: route }, handler })
  }
}

/** A JSON answer written on a hijacked reply (the shape of lib/http/errors.ts). */
function writeJson(res: ServerResponse, status: number, body: object): void {
  const text = JSON.stringify(body)
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text) })
  res.end(text)
}

/**
 * The upstream call's abort signal: an EventEmitter, which undici takes as well as an
 * AbortSignal, at a fraction of an AbortController's cost per request.
 */
class ClientGone extends EventEmitter {
  aborted = false
}

/** Aborted ('abort') when the client's connection closes before its answer was sent. */
function abortWhenClientGoes(reply: FastifyReply): ClientGone {
  const signal = new ClientGone()
  const res = reply.raw
  res.once('close', () => {
    if (res.writableFinished) return
    signal.aborted = true
    signal.emit('abort')
  })
  return signal
}
