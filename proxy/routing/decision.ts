// The routing decision, in one place: which upstream a request on a route goes to, why, what
// happens when that upstream fails, and what breaker states make of it. The hot path
// (proxy-routes.ts, WebSocket handshakes included) calls decideRoute, and /admin/explain asks
// the hot path itself (proxy-routes.ts, EXPLAIN_HEADER).
// The identity is X-User-Id, else the user_id query parameter, else the proxy's own cookie (set
// for anonymous clients), so the same person keeps landing on the same side while the
// percentage is unchanged. On a route with a token policy (proxy/auth/) it is the verified
// token's subject, else the cookie: what the client says about itself counts for nothing there. The flag is a sticky rollout evaluated by unleash-client: raising it
// only adds identities to the target.
import { randomUUID } from 'node:crypto'
import { Type, type Static } from '@sinclair/typebox'
import { errors } from '../../lib/errors.ts'
import type { BreakerStateName } from '../model/upstream-options.ts'
import type { FlagSource } from '../flags/flag-source.ts'
import type { Route } from '../model/route-map.ts'

/** x-route-reason values. */
export type RouteReason = 'default' | 'flag' | 'sticky' | 'override' | 'fallback' | 'writes' | 'read-your-writes' | 'no-flags'
export type Side = 'legacy' | 'target'

/**
 * The writer side of a split route is a second flag beside the read flag, `<flag>-writes`
 * (the flags file and Unleash alike): on at 100 % = writes go to the target, anything else =
 * legacy. Missing: legacy for a route whose stores decide who writes (`writer` in the route map:
 * the target owns its data); a route without stores of its own keeps the behaviour before writer
 * sides existed: writes follow the read flag.
 */
export const writesFlagOf = (flag: string): string => `${flag}-writes`

/** Set (on at 100 %) once legacy is retired for the route (POST /admin/routes/:name/retire): everything goes to the target, with no fallback. */
export const retiredFlagOf = (flag: string): string => `${flag}-retired`

/** Legacy retired for the route (`<flag>-retired` on at 100 %). */
export function isRetired(route: Route, flags: Pick<FlagSource, 'state'>): boolean {
  if (!route.flag) return false
  const retired = flags.state(retiredFlagOf(route.flag))
  return retired.defined === true && retired.percent === 100
}

/** The side every write of the route goes to; undefined = no writer side (writes follow the read flag). */
export function writerSideOf(route: Route, flags: Pick<FlagSource, 'state'>): Side | undefined {
  if (!route.target || !route.flag) return undefined
  const writes = flags.state(writesFlagOf(route.flag))
  if (writes.defined !== true) return route.writer ? 'legacy' : undefined
  return writes.percent === 100 ? 'target' : 'legacy'
}

export type IdentitySource = 'token' | 'header' | 'query' | 'cookie' | 'new'

export interface Identity {
  id: string
  from: IdentitySource
}

const ID = /^[\w.:@-]{1,128}$/

function cookieValue(header: string | undefined, name: string): string | undefined {
  if (!header) return undefined
  let at = header.indexOf(`${name}=`)
  while (at > 0 && header[at - 1] !== ' ' && header[at - 1] !== ';') at = header.indexOf(`${name}=`, at + 1)
  if (at < 0) return undefined
  const start = at + name.length + 1
  const end = header.indexOf(';', start)
  return header.slice(start, end < 0 ? undefined : end).trim()
}

/**
 * `subject`: undefined on a route without a token policy (the client's X-User-Id / user_id
 * count); on a route with one, the verified subject, or null without a token (cookie only).
 */
export function identityOf(headers: Record<string, string | string[] | undefined>, query: unknown, cookieName: string, subject?: string | null): Identity {
  if (typeof subject === 'string') return { id: subject, from: 'token' }
  if (subject === null) {
    const cookie = cookieValue(headers.cookie as string | undefined, cookieName)
    return cookie && ID.test(cookie) ? { id: cookie, from: 'cookie' } : { id: randomUUID(), from: 'new' }
  }
  const header = headers['x-user-id']
  if (typeof header === 'string' && ID.test(header)) return { id: header, from: 'header' }
  const q = (query as Record<string, unknown> | undefined)?.user_id
  if (typeof q === 'string' && ID.test(q)) return { id: q, from: 'query' }
  const cookie = cookieValue(headers.cookie as string | undefined, cookieName)
  if (cookie && ID.test(cookie)) return { id: cookie, from: 'cookie' }
  return { id: randomUUID(), from: 'new' }
}

export function stickyCookie(name: string, id: string): string {
  return `${name}=${id}; Path=/; Max-Age=31536000; HttpOnly; SameSite=Lax`
}

/** The QA override, when enabled: X-Backend: legacy|target. */
export function overrideOf(value: string | string[] | undefined): Side | undefined {
  if (value === undefined) return undefined
  if (value === 'legacy' || value === 'target') return value
  throw new errors.BAD_BACKEND_OVERRIDE(String(value).slice(0, 40))
}

/** Methods that may be replayed on legacy when the target fails (they change nothing). */
export const SAFE_METHODS: ReadonlySet<string> = new Set(['GET', 'HEAD'])

/** What the decision needs to know about one request. */
export interface RequestFacts {
  /** Upper case, as Node gives it. */
  method: string
  /** The sticky identity (absent on routes without a split: it is not needed there). */
  identity?: string
  /** The QA override (X-Backend), when allowed and given. */
  override?: Side
  /** The side this identity's last write on the route went to, while read-your-writes holds it (recent-writes.ts). */
  recentWrite?: Side
  /** The side whose store takes the writes now, as the stores last said (proxy/rollout/store-writers.ts): tried first. */
  storeWriter?: Side
}

/** Breaker state of the route's upstreams; absent = closed. */
export interface BreakerStates {
  legacy?: BreakerStateName
  target?: BreakerStateName
}

/** The flag evaluation the decision reads (a FlagSource). */
export type FlagView = Pick<FlagSource, 'isEnabled' | 'state'>

/**
 * `side`/`upstream`/`reason`: where the request is sent first and the x-route-reason it carries.
 * `fallback`: when that upstream fails (error, 5xx, open circuit), "legacy" = the request is
 * answered by legacy (reason "fallback"); "none" = the client gets 503/504 (never a replay of a
 * write). `expected`: what the breaker states given predict — the upstream that answers, or
 * "proxy" (503) when the circuits in the way are open.
 */
export interface RouteDecision {
  side: Side
  upstream: string
  reason: RouteReason
  fallback: 'legacy' | 'none'
  /** `why`: the decision in words (always set by decideRoute; /admin/explain shows it). */
  expected: { upstream: string; reason: RouteReason; status?: 503; why?: string }
}

/** The routing decision: pure, for the hot path, the tunnel and /admin/explain alike. */
export function decideRoute(route: Route, facts: RequestFacts, flags: FlagView, breakers: BreakerStates = {}): RouteDecision {
  let side: Side = 'legacy'
  let reason: RouteReason = 'default'
  const retired = route.target !== undefined && isRetired(route, flags)
  const writer = route.target && !SAFE_METHODS.has(facts.method) ? (facts.storeWriter ?? writerSideOf(route, flags)) : undefined
  if (retired) [side, reason] = ['target', 'flag']
  // Writes have one side, whatever X-Backend asks.
  else if (writer) [side, reason] = [writer, 'writes']
  else if (route.target) {
    if (facts.override) [side, reason] = [facts.override, 'override']
    else {
      const flag = route.flag!
      const on = flags.isEnabled(flag, facts.identity ?? '')
      const { percent, sticky } = flags.state(flag)
      // "sticky" when the identity's bucket decided (a partial rollout); "flag" when the flag sends everyone the same way.
      const partial = percent === undefined || (percent > 0 && percent < 100)
      side = on ? 'target' : 'legacy'
      reason = partial && sticky ? 'sticky' : 'flag'
      // A client that just wrote reads where its write went until the other store has it.
      if (facts.recentWrite && facts.recentWrite !== side && SAFE_METHODS.has(facts.method)) [side, reason] = [facts.recentWrite, 'read-your-writes']
    }
  }
  const fallback = side === 'target' && SAFE_METHODS.has(facts.method) && !retired ? 'legacy' : 'none'
  const legacyOpen = breakers.legacy === 'open'
  const upstream = side === 'target' ? route.target!.name : route.legacy.name
  const legacyDown = `${route.legacy.name} circuit is open: 503 with Retry-After`
  const chose = !route.target
    ? `route "${route.name}" always goes to ${route.legacy.name}`
    : retired
      ? `route "${route.name}" is retired from ${route.legacy.name}: everything goes to ${route.target.name}, with no fallback`
      : reason === 'override'
      ? `X-Backend sends it to ${side}`
      : reason === 'writes'
        ? `${facts.method} changes data: writes of route "${route.name}" go to ${side} (${writesFlagOf(route.flag!)})`
        : reason === 'read-your-writes'
          ? `this identity wrote to ${side} recently: it reads there until the other store has the write`
          : `${route.flag} sends this identity to ${side === 'target' ? 'the target' : 'legacy'}`
  let expected: RouteDecision['expected']
  if (side === 'legacy') expected = legacyOpen ? { upstream: 'proxy', reason, status: 503, why: legacyDown } : { upstream, reason, why: chose }
  else if (breakers.target !== 'open') expected = { upstream, reason, why: chose }
  else if (fallback === 'legacy') {
    expected = legacyOpen
      ? { upstream: 'proxy', reason: 'fallback', status: 503, why: legacyDown }
      : { upstream: route.legacy.name, reason: 'fallback', why: `${route.target!.name} circuit is open: ${facts.method} falls back to ${route.legacy.name}` }
  } else expected = { upstream: 'proxy', reason, status: 503, why: `${route.target!.name} circuit is open: ${facts.method} is not replayed on legacy` }
  return { side, upstream, reason, fallback, expected }
}

/** How a live request's side is picked: the anonymous-identity cookie and the QA override switch. */
export const SideOptions = Type.Object({
  /** Cookie carrying the anonymous client id. */
  stickyCookie: Type.String({ pattern: '^[A-Za-z0-9!#$%&\'*+.^_`|~-]{1,64}$' }),
  /** Honour X-Backend: legacy|target (QA only). */
  allowBackendOverride: Type.Boolean(),
})
export type SideOptions = Static<typeof SideOptions>

export interface RequestView {
  method: string
  headers: Record<string, string | string[] | undefined>
  query: unknown
}

/**
 * Whether read-your-writes has to be asked about this request: a read (no override) of a split
 * route with a writer side. Asked even when the read flag picks the writer side: the replica that
 * took the write may have seen a newer writer side than this one.
 */
export function asksRecentWrites(route: Route, decision: RouteDecision, facts: RequestFacts, flags: Pick<FlagSource, 'state'>): boolean {
  if (!SAFE_METHODS.has(facts.method) || facts.identity === undefined || decision.reason === 'override' || isRetired(route, flags)) return false
  return writerSideOf(route, flags) !== undefined
}

/**
 * The facts of a live request; `setCookie` when the client had no identity yet (the proxy made
 * one up); `identityFrom` says where the identity came from (/admin/explain). `subject`: as identityOf's.
 */
export function requestFacts(route: Route, request: RequestView, opts: SideOptions, subject?: string | null): RequestFacts & { setCookie?: string; identityFrom?: IdentitySource } {
  if (!route.target) return { method: request.method }
  const override = opts.allowBackendOverride ? overrideOf(request.headers['x-backend']) : undefined
  if (override) return { method: request.method, override }
  const identity = identityOf(request.headers, request.query, opts.stickyCookie, subject)
  return { method: request.method, identity: identity.id, identityFrom: identity.from, ...(identity.from === 'new' ? { setCookie: stickyCookie(opts.stickyCookie, identity.id) } : {}) }
}
