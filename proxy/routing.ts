// Which side of a split route a request goes to, and why. The identity is X-User-Id, else the
// user_id query parameter, else the proxy's own cookie (set for anonymous clients), so the
// same person keeps landing on the same side while the percentage is unchanged. The flag is
// a sticky rollout evaluated by unleash-client: raising it only adds identities to the target.
import { randomUUID } from 'node:crypto'
import type { FlagSource } from './flag-source.ts'
import type { Route } from './route-map.ts'

/** x-route-reason values. */
export type RouteReason = 'default' | 'flag' | 'sticky' | 'override' | 'fallback'
export type Side = 'legacy' | 'target'

export interface Decision {
  side: Side
  reason: RouteReason
}

export type IdentitySource = 'header' | 'query' | 'cookie' | 'new'

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

export function identityOf(headers: Record<string, string | string[] | undefined>, query: unknown, cookieName: string): Identity {
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

export class BadOverrideError extends Error {
  override readonly name = 'BadOverrideError'
  readonly statusCode = 400
  constructor(value: string) {
    super(`X-Backend must be "legacy" or "target", got "${value.slice(0, 40)}"`)
  }
}

/** The QA override, when enabled: X-Backend: legacy|target. */
export function overrideOf(value: string | string[] | undefined): Side | undefined {
  if (value === undefined) return undefined
  if (value === 'legacy' || value === 'target') return value
  throw new BadOverrideError(String(value))
}

/** Hot path: the side of a split route for `identity`. */
export function decide(route: Route, flags: FlagSource, identity: string): Decision {
  const on = flags.isEnabled(route.flag!, identity)
  const { percent, sticky } = flags.state(route.flag!)
  // "sticky" when the identity's bucket decided (a partial rollout); "flag" when the flag sends everyone the same way.
  const partial = percent === undefined || (percent > 0 && percent < 100)
  return { side: on ? 'target' : 'legacy', reason: partial && sticky ? 'sticky' : 'flag' }
}

export interface Choice extends Decision {
  /** Set-Cookie value when the client had no identity yet (the proxy made one up). */
  setCookie?: string
}

/** Hot path: the side a request on a split route goes to — QA override, else the sticky decision. */
export function chooseSide(
  route: Route,
  flags: FlagSource,
  request: { headers: Record<string, string | string[] | undefined>; query: unknown },
  opts: { stickyCookie: string; allowBackendOverride: boolean },
): Choice {
  const override = opts.allowBackendOverride ? overrideOf(request.headers['x-backend']) : undefined
  if (override) return { side: override, reason: 'override' }
  const identity = identityOf(request.headers, request.query, opts.stickyCookie)
  const decision = decide(route, flags, identity.id)
  return identity.from === 'new' ? { ...decision, setCookie: stickyCookie(opts.stickyCookie, identity.id) } : decision
}
