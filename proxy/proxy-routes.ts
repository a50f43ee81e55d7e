// The proxied routes: every route-map prefix is a Fastify route (the router does the prefix
// matching), the request goes to the side the flag picks, through that upstream's breaker.
// When the target fails or its breaker is open, GET/HEAD are answered by the legacy upstream;
// other methods get 503 and are never sent twice. Legacy unavailable: 503 with Retry-After.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { EventEmitter } from 'node:events'
import type { OutgoingHttpHeaders, ServerResponse } from 'node:http'
import { Type, type Static } from '@sinclair/typebox'
import type { FlagSource } from './flags/flag-source.ts'
import type { ProxyMetrics } from './observability/metrics.ts'
import type { TrafficRecorder } from './rollout/ramp/traffic.ts'
import type { Route } from './model/route-map.ts'
import type { ShadowComparisons, ShadowTap } from './rollout/shadow/shadow.ts'
import type { UpstreamAnswer, UpstreamRequest, UpstreamResult, UpstreamRuntime, Upstreams } from './forward/upstreams.ts'
import type { Upgrades } from './forward/websocket.ts'
import { EXPLAIN_HEADER, type ExplainedDecision } from './routing/explain.ts'
import { FORWARDED_METHODS } from './edge/edge-guards.ts'
import { errorHeaders, errors, type CatalogueError } from '../lib/errors.ts'
import { errorBody } from '../lib/http/errors.ts'
import { bufferRequestBodies } from './forward/request-body.ts'
import { checkOptions } from './model/options.ts'
import { SAFE_METHODS, SideOptions, decideRoute, requestFacts, asksRecentWrites, writerSideOf, type BreakerStates, type RequestFacts, type RouteDecision, type RouteReason, type Side } from './routing/decision.ts'
import type { RecentWrites } from './routing/recent-writes.ts'
import type { StoreWriters } from './rollout/store-writers.ts'
import { setTimeout as sleep } from 'node:timers/promises'
import { clientOf, type TrustFn } from './edge/trust-proxy.ts'
import { clientResponseHeaders, upstreamFailed, upstreamRequestHeaders, type FailureKind } from './forward/upstream-client.ts'
import type { ProxyTracing } from './forward/tracing.ts'
import type { MeasuredFeature } from './model/features.ts'
import type { RouteAuthCheck } from './auth/route-auth.ts'

export const ProxyRoutesSettings = Type.Composite([
  SideOptions,
  Type.Object({
    /** Largest request body; larger answers 413. */
    bodyLimitBytes: Type.Integer({ minimum: 1 }),
    /** Longest pause between two reads of a request body; then 408. */
    bodyIdleTimeoutMs: Type.Integer({ minimum: 1 }),
    /** Retry-After sent with a 503. */
    retryAfterSeconds: Type.Integer({ minimum: 1 }),
    /** Longest a write waits for a store that takes it (a handover in flight, a store catching up); then 503. */
    writesHandoverWaitMs: Type.Integer({ minimum: 0 }),
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
  /** Shadow comparison (proxy/rollout/shadow/); absent = off. */
  shadow?: ShadowComparisons
  /** The ramp guard's per-route traffic (proxy/rollout/ramp/traffic.ts). */
  traffic?: TrafficRecorder
  /** WebSocket upgrades routed through the app (websocket.ts); absent = none arrive. */
  upgrades?: Upgrades
  /** Read-your-writes marks (routing/recent-writes.ts); absent = reads follow the read flag only. */
  recentWrites?: RecentWrites
  /** The stores' writers (rollout/store-writers.ts): which side to try first for a write of a route whose stores decide who writes. */
  storeWriters?: StoreWriters
  /** A secret of this app: a request carrying it in EXPLAIN_HEADER is answered with its decision, never forwarded (/admin/explain). */
  explainToken?: string
  /** Tracing on (forward/tracing.ts): the decision on the request's span, a span per upstream attempt. */
  tracing?: ProxyTracing
  /** Features switched off to measure them (FEATURES_OFF, model/features.ts); empty in production. */
  featuresOff?: ReadonlySet<MeasuredFeature>
  /** Token policies of the routes that have one (auth/route-auth.ts); absent = no route has one. */
  routeAuth?: RouteAuthCheck
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
  const off = opts.featuresOff ?? new Set<MeasuredFeature>()
  const [measured, routed, forwardedFor, requestIds] = [!off.has('metrics'), !off.has('routing'), !off.has('forwarding-headers'), !off.has('request-id')]
  bufferRequestBodies(app, { limit: settings.bodyLimitBytes, idleTimeoutMs: settings.bodyIdleTimeoutMs })

  app.decorateRequest('proxyRoute', null)
  app.decorateRequest('proxyUpstream', null)
  app.decorateRequest('proxyReason', null)
  app.decorateRequest('shadowTap', null)
  app.decorateRequest('edgeToken', null)
  // Callback style, not async: one promise less per request on the hot path.
  app.addHook('onResponse', (request, reply, done) => {
    if (request.proxyRoute !== null) {
      if (measured) metrics.observe(request.proxyRoute, request.proxyUpstream ?? 'proxy', reply.statusCode, request.proxyReason ?? 'default', reply.elapsedTime / 1000)
      opts.traffic?.record(request.proxyRoute, request.proxyUpstream ?? 'proxy', reply.statusCode, request.proxyReason ?? 'default', reply.elapsedTime) // RAMP GUARD: per-route, per-side traffic (proxy/rollout/ramp/traffic.ts)
    }
    done()
  })

  /** The request as the upstream gets it (hop-by-hop headers out, X-Forwarded-* and X-Request-Id in). */
  function upstreamRequest(request: FastifyRequest, client: ClientGone): UpstreamRequest {
    const headers = upstreamRequestHeaders(request.headers, forwardedFor ? clientOf(request.raw, opts.trust) : undefined, requestIds ? request.id : undefined)
    tracing?.dropIncomingContext(headers) // TRACING: undici's client span sends the proxy's traceparent
    const upgrade = opts.upgrades?.of(request.raw) !== undefined
    // The one hop-by-hop list dropped Connection and Upgrade; a handshake asks for the same protocol again.
    if (upgrade) Object.assign(headers, { connection: 'Upgrade', upgrade: request.headers.upgrade! })
    // TRACING: a handshake goes out on node:http, not undici (no client span): the attempt's context is sent instead.
    if (upgrade) tracing?.injectContext(headers)
    return { method: request.method, url: request.url, headers, body: request.body as Buffer | undefined, client, log: request.log, upgrade }
  }

  /** One attempt at answering the request from `rt`; tracing on, in its own span (a fallback shows both). */
  function attempt(rt: UpstreamRuntime, request: FastifyRequest, client: ClientGone, which: 'primary' | 'fallback'): Promise<UpstreamResult> {
    const call = () => rt.call(upstreamRequest(request, client))
    return tracing ? tracing.upstreamAttempt(request, rt, which, call) : call()
  }

  /**
   * The upstream's answer goes to the client: status and headers (with those the proxy set so
   * far: x-request-id, x-ratelimit-*, the sticky cookie), then the body chunk by chunk with
   * backpressure, straight onto the socket (the reply is hijacked: no stream wrapper, no onSend
   * hooks). The onResponse hooks still run when it finishes (access log, metrics).
   */
  function send(reply: FastifyReply, response: UpstreamAnswer, upstream: string, reason: RouteReason): void {
    const request = reply.request
    request.proxyUpstream = upstream
    request.proxyReason = reason
    tracing?.annotateAnswer(request, upstream, reason) // TRACING
    if (response.upgraded) {
      reply.header('x-upstream', upstream).header('x-route-reason', reason)
      return opts.upgrades!.join(reply, response, upstreams.get(upstream)!.poolOptions.streamIdleTimeoutMs)
    }
    // [shadow seam 2/3] the tap sees the answer's status and headers, then each chunk on its way to the client.
    const tap = request.shadowTap
    tap?.primaryResponse(upstream, response.statusCode, response.headers)
    const own = reply.getHeaders()
    reply.hijack()
    const res = reply.raw
    // As reply.headers() would merge them: the upstream's win, except that Set-Cookie adds up.
    const upstreamHeaders = clientResponseHeaders(response.headers)
    const headers: OutgoingHttpHeaders = {}
    for (const name in own) if (!(name in upstreamHeaders)) headers[name] = own[name]
    for (const name in upstreamHeaders) {
      const value = upstreamHeaders[name]!
      headers[name] = name === 'set-cookie' && own[name] !== undefined ? [own[name] as string | string[], value].flat().map(String) : value
    }
    headers['x-upstream'] = upstream
    headers['x-route-reason'] = reason
    // Read by the onResponse hooks (metrics, access line) even if the client leaves before the first chunk.
    res.statusCode = response.statusCode
    // Status and headers go out with the first chunk (or the end), in one writeHead (no setHeader
    // per header), so an upstream that fails before its first byte still gets a clean 502 of the
    // catalogue, without any of the upstream's headers.
    let headed = false
    const body = response.body
    /** False when Node refuses the upstream's status or headers for a client: then a clean 502, the body dropped. */
    const head = (): boolean => {
      headed = true
      try {
        res.writeHead(response.statusCode, headers)
        return true
      } catch (error) {
        tap?.primaryFailed()
        body.destroy()
        request.log.warn({ upstream, err: (error as Error).message }, 'upstream answer not fit for a client')
        brokenAnswer()
        return false
      }
    }
    const brokenAnswer = () => {
      for (const name in own) res.setHeader(name, own[name] as string | string[] | number)
      res.setHeader('x-upstream', upstream)
      res.setHeader('x-route-reason', reason)
      writeError(res, new errors.UPSTREAM_BROKEN_ANSWER(upstream))
    }
    const onDrain = () => body.resume()
    body.on('data', (chunk: Buffer) => {
      tap?.primaryChunk(chunk)
      if (!headed && !head()) return
      if (!res.write(chunk)) body.pause()
    })
    body.on('end', () => {
      res.off('drain', onDrain)
      if (!headed && !head()) return
      res.end()
      // [shadow seam 3/3] the whole answer was passed on: the copy may start (or, below, it never completed).
      tap?.primaryEnd()
    })
    body.on('error', (error: Error) => {
      tap?.primaryFailed()
      if (headed || res.destroyed) {
        request.log.warn({ err: error }, 'response terminated with an error with headers already sent')
        return void res.destroy()
      }
      metrics.upstreamFailures.labels(upstream, 'reset').inc()
      request.log.warn({ upstream, err: error.message }, 'upstream broke off its answer before the first body byte')
      brokenAnswer()
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
    return reply.code(error.statusCode).header('x-upstream', 'proxy').header('x-route-reason', reason).send(errorBody(error, true))
  }

  /** Legacy answers or the client gets a clear 502/503/504; a legacy 5xx is passed on as it is. */
  async function viaLegacy(route: Route, request: FastifyRequest, reply: FastifyReply, reason: RouteReason, client: ClientGone) {
    const rt = upstreams.get(route.legacy.name)!
    const result = await attempt(rt, request, client, reason === 'fallback' ? 'fallback' : 'primary')
    if (result.kind === 'client-gone') return clientGone(reply, rt.upstream.name, reason)
    if (result.kind === 'answer') return send(reply, result.answer, rt.upstream.name, reason)
    if (result.answer) return send(reply, result.answer, rt.upstream.name, reason)
    return unavailable(reply, reason, failureAnswer(result, rt.upstream.name))
  }

  async function viaTarget(route: Route, request: FastifyRequest, reply: FastifyReply, decision: RouteDecision, client: ClientGone) {
    const { reason } = decision
    const rt = upstreams.get(route.target!.name)!
    const result = await attempt(rt, request, client, 'primary')
    if (result.kind === 'client-gone') return clientGone(reply, rt.upstream.name, reason)
    if (result.kind === 'answer') return send(reply, result.answer, rt.upstream.name, reason)
    // A read of a route retired from legacy has no fallback: the target's own answer, or a clear 502/503/504.
    if (decision.fallback === 'none' && SAFE_METHODS.has(request.method)) {
      return result.answer ? send(reply, result.answer, rt.upstream.name, reason) : unavailable(reply, reason, failureAnswer(result, rt.upstream.name))
    }
    result.answer?.discard()
    if (decision.fallback === 'none') {
      // Not idempotent: it may have reached the target, so it is neither retried nor replayed on legacy.
      return unavailable(reply, reason, new errors.WRITE_NOT_RETRIED(result.message))
    }
    rt.breaker.countFallback()
    metrics.fallbacks.labels(route.name, rt.upstream.name, route.legacy.name).inc()
    request.log.warn({ route: route.name, from: rt.upstream.name, to: route.legacy.name, cause: result.message }, 'fallback to legacy')
    return viaLegacy(route, request, reply, 'fallback', client)
  }

  /** Nobody reads this answer: 499 for the access line and the metrics. */
  function clientGone(reply: FastifyReply, upstream: string, reason: RouteReason) {
    reply.request.proxyUpstream = upstream
    reply.request.proxyReason = reason
    return reply.code(499).send(errorBody(new errors.CLIENT_GONE(), true))
  }

  /**
   * The routing decision with read-your-writes: a read the flag sends away from the route's
   * writer side asks whether this client wrote there recently (and is decided again if so); a
   * write to the writer side is remembered.
   */
  async function decide(route: Route, facts: RequestFacts, breakers?: BreakerStates, count = true): Promise<RouteDecision> {
    let decision = decideRoute(route, facts, flags, breakers)
    if (decision.reason === 'writes' && route.writer && opts.storeWriters) {
      // The store that wrote last, as far as this replica knows, is tried first (its refusal is what counts).
      const storeWriter = opts.storeWriters.hint(route.name)
      if (storeWriter && storeWriter !== decision.side) decision = decideRoute(route, { ...facts, storeWriter }, flags, breakers)
    }
    const recentWrites = opts.recentWrites
    if (!recentWrites || facts.identity === undefined) return decision
    if (decision.reason === 'writes') {
      // Where the stores decide, the side that took the write is remembered once it did (viaWriter).
      if (count && !(route.writer && opts.storeWriters)) await recentWrites.remember(route.name, facts.identity, decision.side)
      return decision
    }
    if (!asksRecentWrites(route, decision, facts, flags)) return decision
    const found = await recentWrites.lookup(route.name, facts.identity)
    // Unknown (Redis did not answer): the writer has every write, this client's included — the store
    // that writes as the stores last said, else the flag's writer side.
    const recentWrite = found === 'unknown' ? (opts.storeWriters?.hint(route.name) ?? writerSideOf(route, flags)) : found
    if (recentWrite === undefined || recentWrite === decision.side) return decision
    if (count) metrics.readYourWrites.labels(route.name).inc()
    return decideRoute(route, { ...facts, recentWrite }, flags, breakers)
  }

  /** The decision this request would meet, breakers included, without calling anything (/admin/explain). */
  async function explain(route: Route, facts: ReturnType<typeof requestFacts>, reply: FastifyReply) {
    reply.header(EXPLAIN_HEADER, 'decision')
    const identity: Pick<ExplainedDecision, 'identity'> = route.target ? { identity: { source: facts.identityFrom ?? 'none', auth: route.auth?.policy ?? 'off' } } : {}
    if (route.target && facts.setCookie) {
      const why = route.auth
        ? `route "${route.name}" takes the identity from a verified token (auth ${route.auth.policy}); give user_id to see the side of that subject${route.auth.policy === 'required' ? ' (without a token: 401)' : ''}`
        : 'no user_id: an anonymous client gets a random id in a cookie and keeps its side; give user_id to see one identity'
      return reply.send({ route: route.name, upstream: null, why, ...identity } satisfies ExplainedDecision)
    }
    const breakers = { legacy: upstreams.get(route.legacy.name)!.breaker.state(), target: route.target ? upstreams.get(route.target.name)!.breaker.state() : undefined }
    const { expected, fallback } = await decide(route, facts, breakers, false)
    return reply.send({ route: route.name, upstream: expected.upstream, ...(expected.status ? { status: expected.status } : {}), reason: expected.reason, fallback, why: expected.why ?? '', ...identity } satisfies ExplainedDecision)
  }

  /**
   * The sticky subject of a route with a token policy: the verified token's (or, for
   * /admin/explain, the user_id it was asked about, as a token's subject); null = no token;
   * undefined = no policy.
   */
  async function subjectOf(route: Route, request: FastifyRequest, reply: FastifyReply, explaining: boolean): Promise<string | null | undefined> {
    if (!route.auth || !opts.routeAuth) return undefined
    if (explaining) return typeof request.headers['x-user-id'] === 'string' ? request.headers['x-user-id'] : null
    return (await opts.routeAuth.check(route.name, route.auth, request, reply))?.subject ?? null
  }

  async function forward(route: Route, request: FastifyRequest, reply: FastifyReply) {
    const explaining = opts.explainToken !== undefined && request.headers[EXPLAIN_HEADER] === opts.explainToken
    if (!explaining) request.proxyRoute = route.name
    // Before anything is decided: a refused token is answered by the proxy (401/403/503).
    const subject = route.auth ? await subjectOf(route, request, reply, explaining) : undefined
    const facts = routed ? requestFacts(route, request, settings, subject) : { method: request.method }
    if (explaining) return explain(route, facts, reply)
    // A split route needs the flags: without them (Unleash never answered, no last known state) no side is known to be right.
    if (routed && route.target) {
      const flagStatus = flags.status()
      if (!flagStatus.loaded) return unavailable(reply, 'no-flags', new errors.FLAGS_NOT_LOADED(route.name, flagStatus.notLoaded ?? `from ${flagStatus.location}`))
    }
    const signal = abortWhenClientGoes(reply)
    if (facts.setCookie) reply.header('set-cookie', facts.setCookie)
    // The breakers are not consulted here: the call goes through them and they answer for themselves.
    const decision = routed ? await decide(route, facts) : unrouted(route)
    // [shadow seam 1/3] a share of requests is copied to the other side after the answer (proxy/rollout/shadow/).
    request.shadowTap = opts.upgrades?.of(request.raw) ? null : (opts.shadow?.select(route, decision, request) ?? null)
    tracing?.annotateDecision(request, route, decision, request.shadowTap !== null) // TRACING
    if (route.writer && route.target && opts.storeWriters && !SAFE_METHODS.has(request.method) && routed) return viaWriter(route, request, reply, decision, signal, facts.identity)
    return decision.side === 'target' ? viaTarget(route, request, reply, decision, signal) : viaLegacy(route, request, reply, decision.reason, signal)
  }

  /**
   * A write of a route whose stores decide who writes: sent to the side decided, and when that
   * store refuses it (NOT_WRITER: nothing written) to the other one; while neither takes it (a
   * handover in flight, a store catching up) it waits and asks again, up to
   * writesHandoverWaitMs, then 503. Retired from legacy: the target only. A store that fails
   * (5xx, timeout) may have written: never sent anywhere else.
   */
  async function viaWriter(route: Route, request: FastifyRequest, reply: FastifyReply, decision: RouteDecision, client: ClientGone, identity: string | undefined) {
    const sides: Side[] = decision.reason !== 'writes' ? ['target'] : decision.side === 'target' ? ['target', 'legacy'] : ['legacy', 'target']
    const until = Date.now() + settings.writesHandoverWaitMs
    for (let pause = 20; ; pause = Math.min(pause * 2, 200)) {
      for (const side of sides) {
        const rt = upstreams.get(side === 'target' ? route.target!.name : route.legacy.name)!
        const result = await attempt(rt, request, client, 'primary')
        if (result.kind === 'client-gone') return clientGone(reply, rt.upstream.name, decision.reason)
        if (result.kind === 'answer' && result.answer.statusCode === 421 && result.answer.headers['x-store-refused'] === 'not-writer') {
          result.answer.discard()
          continue
        }
        if (result.kind === 'answer') {
          opts.storeWriters!.noteWriter(route.name, side)
          if (identity !== undefined) await opts.recentWrites?.remember(route.name, identity, side)
          return send(reply, result.answer, rt.upstream.name, decision.reason)
        }
        if (side === 'legacy' && result.answer) return send(reply, result.answer, rt.upstream.name, decision.reason)
        result.answer?.discard()
        return unavailable(reply, decision.reason, side === 'legacy' ? failureAnswer(result, rt.upstream.name) : new errors.WRITE_NOT_RETRIED(result.message))
      }
      if (Date.now() >= until) {
        metrics.writesWaitedOut.labels(route.name).inc()
        return unavailable(reply, decision.reason, new errors.WRITER_UNAVAILABLE(route.name, 'the writes are being handed over between its stores, or the writer is catching up'))
      }
      if (client.aborted) return clientGone(reply, 'proxy', decision.reason)
      await sleep(pause)
    }
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

/** FEATURES_OFF=routing: no flag, no sticky identity, no read-your-writes look-up: legacy answers. */
function unrouted(route: Route): RouteDecision {
  const expected = { upstream: route.legacy.name, reason: 'default' as const }
  return { side: 'legacy', upstream: route.legacy.name, reason: 'default', fallback: 'none', expected }
}

/** An error of the catalogue written on a hijacked reply (the shape of lib/http/errors.ts). */
function writeError(res: ServerResponse, error: CatalogueError): void {
  const text = JSON.stringify(errorBody(error, true))
  res.writeHead(error.statusCode, { ...errorHeaders(error), 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text) })
  res.end(text)
}

/** What the client hears when an upstream was not called or gave no answer. */
export function failureAnswer(result: { failure: FailureKind | 'circuit_open'; message: string }, upstream: string): CatalogueError {
  return result.failure === 'circuit_open' ? new errors.CIRCUIT_OPEN(upstream) : upstreamFailed({ kind: result.failure, message: result.message })
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
