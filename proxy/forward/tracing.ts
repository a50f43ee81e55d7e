// What the proxy's spans say (tracing on, lib/tracing/): the request's SERVER span (from
// @fastify/otel) gets the routing decision — route, side, reason, flag and its percentage,
// the decided side's breaker state, shadow selected — and the answer's upstream and final reason; every upstream attempt is an
// `upstream <name>` span (breaker state, side, attempt) whose child is undici's CLIENT span
// carrying traceparent upstream, so a fallback shows both attempts; a shadow copy is a span of
// its own in a new trace, LINKED to the request's (it runs after the answer).
//
// The proxy code calls these at marked call sites (`TRACING:`); with tracing off it holds no
// ProxyTracing and calls nothing.
import { context, propagation, ROOT_CONTEXT, SpanKind, SpanStatusCode, trace, type Context, type Link } from '@opentelemetry/api'
import type { FastifyRequest } from 'fastify'
import { inSpan } from '../../lib/tracing/spans.ts'
import type { Tracing } from '../../lib/tracing/tracing.ts'
import type { FlagSource } from '../flags/flag-source.ts'
import type { Route } from '../model/route-map.ts'
import type { RouteDecision, RouteReason } from '../routing/decision.ts'
import type { UpstreamResult, UpstreamRuntime, Upstreams } from './upstreams.ts'

export interface ProxyTracing {
  /** The decision, on the request's span. */
  annotateDecision(request: FastifyRequest, route: Route, decision: RouteDecision, shadowSelected: boolean): void
  /** Who answered and why (e.g. `fallback`), on the request's span. */
  annotateAnswer(request: FastifyRequest, upstream: string, reason: RouteReason): void
  /** Runs one upstream attempt inside its span (a child of the request's), marked failed when the upstream failed. */
  upstreamAttempt(request: FastifyRequest, rt: UpstreamRuntime, attempt: 'primary' | 'fallback', call: () => Promise<UpstreamResult>): Promise<UpstreamResult>
  /** The link a later shadow copy keeps to the request's trace (captured while the request runs). */
  linkOf(request: FastifyRequest): Link | undefined
  /** Runs a shadow copy in its own span: a new trace, linked to the request's. */
  shadowCopy<T>(link: Link | undefined, route: string, rt: UpstreamRuntime, call: () => Promise<T>): Promise<T>
  /** The active trace's id (ledger entries made by a request carry it). */
  activeTraceId(): string | undefined
  /** The client's traceparent/tracestate are replaced by the proxy's own (undici's client span adds them). */
  dropIncomingContext(headers: Record<string, string | string[]>): void
  /** The active context (the upstream attempt's span) into `headers`: for a WebSocket handshake, sent without undici. */
  injectContext(headers: Record<string, string | string[]>): void
}

/** The request's span and context, when @fastify/otel made one for it. */
function requestSpanOf(request: FastifyRequest): { context: Context; span: NonNullable<ReturnType<FastifyRequest['opentelemetry']>['span']> } | undefined {
  const otel = request.opentelemetry()
  return otel.span && otel.context ? { context: otel.context, span: otel.span } : undefined
}

export function createProxyTracing(tracing: Tracing, deps: { flags: FlagSource; upstreams: Upstreams }): ProxyTracing {
  const { tracer } = tracing
  return {
    annotateDecision(request, route, decision, shadowSelected) {
      const span = requestSpanOf(request)?.span
      if (!span?.isRecording()) return // not sampled: nothing to say
      span.updateName(`${request.method} ${route.prefix}`)
      span.setAttributes({
        'proxy.route': route.name,
        'proxy.side': decision.side,
        'proxy.reason': decision.reason,
        'proxy.decision.upstream': decision.upstream,
        'proxy.shadow.selected': shadowSelected,
        // The decided side's breaker as the request found it (each attempt's span has its own).
        'proxy.breaker.state': deps.upstreams.get(decision.upstream)?.breaker.state() ?? 'none',
      })
      if (route.flag) {
        const state = deps.flags.state(route.flag)
        span.setAttribute('proxy.flag', route.flag)
        if (state.percent !== undefined && state.percent !== null) span.setAttribute('proxy.flag.percent', state.percent)
      }
    },
    annotateAnswer(request, upstream, reason) {
      const span = requestSpanOf(request)?.span
      if (span?.isRecording()) span.setAttributes({ 'proxy.upstream': upstream, 'proxy.reason': reason })
    },
    upstreamAttempt(request, rt, attempt, call) {
      const parent = requestSpanOf(request)?.context ?? context.active()
      const attributes = { 'proxy.upstream': rt.upstream.name, 'proxy.attempt': attempt, 'proxy.breaker.state': rt.breaker.state() }
      return inSpan(tracer, `upstream ${rt.upstream.name}`, { kind: SpanKind.INTERNAL, attributes }, parent, async () => {
        const result = await call()
        // The one call answers failures as results (not throws): the span says so itself.
        if (result.kind === 'failure') trace.getActiveSpan()?.setStatus({ code: SpanStatusCode.ERROR, message: `${result.failure}: ${result.message}` })
        else if (result.kind === 'client-gone') trace.getActiveSpan()?.setAttribute('proxy.client_gone', true)
        return result
      })
    },
    linkOf(request) {
      const span = requestSpanOf(request)?.span
      return span ? { context: span.spanContext(), attributes: { 'proxy.link': 'shadowed request' } } : undefined
    },
    shadowCopy(link, route, rt, call) {
      const attributes = { 'proxy.route': route, 'proxy.upstream': rt.upstream.name, 'proxy.shadow': true, 'proxy.breaker.state': rt.breaker.state() }
      return inSpan(tracer, `shadow ${rt.upstream.name}`, { kind: SpanKind.INTERNAL, attributes, links: link ? [link] : [], root: true }, ROOT_CONTEXT, call)
    },
    activeTraceId() {
      return trace.getActiveSpan()?.spanContext().traceId
    },
    dropIncomingContext(headers) {
      delete headers.traceparent
      delete headers.tracestate
    },
    injectContext(headers) {
      propagation.inject(context.active(), headers)
    },
  }
}
