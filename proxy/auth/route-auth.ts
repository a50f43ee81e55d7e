// A route's token policy applied to one request (proxy-routes.ts calls it before the routing
// decision): `required` needs a valid bearer token, `optional` lets a request without one pass
// but checks a present one, `off` (no `auth` in the route map) asks nothing. On a route with a
// policy the client's own identity headers (X-User-Id, X-Auth-*) count for nothing: they are
// dropped before the upstream, and the verified subject and chosen claims are sent instead
// (shadow copies and WebSocket handshakes carry the same headers: they read request.headers).
// Header encoding of a claim: a string as is, except that "%", ",", control and non-ASCII
// characters are percent-encoded (UTF-8); a number or boolean as text; an array's elements so
// encoded and joined with ","; an object as its JSON, so encoded.
import type { FastifyReply, FastifyRequest } from 'fastify'
import { errors } from '../../lib/errors.ts'
import type { RouteAuth } from '../model/route-map.ts'
import type { ProxyMetrics } from '../observability/metrics.ts'
import { IssuerUnavailable, TokenError, type TokenVerifier, type VerifiedToken } from './token-verifier.ts'

export interface RouteAuthSettings {
  /** The claim holding roles (dotted path for a nested claim). */
  rolesClaim: string
  /** Claims sent upstream as X-Auth-<Claim>. */
  forwardClaims: string[]
}

/** What the upstream hears about who is calling; everything else of this shape the client sent is dropped. */
export const SUBJECT_HEADER = 'x-auth-sub'
const ISSUER_HEADER = 'x-auth-issuer'
const CLIENT_IDENTITY_HEADERS = ['x-user-id']
const MAX_HEADER_VALUE = 4_096

const REALM = 'Bearer realm="cinemaabyss"'

/** RFC 6750 3: the error description is a quoted-string of printable ASCII without " and \. */
const quoted = (text: string) => `"${text.replace(/[^\x20-\x21\x23-\x5b\x5d-\x7e]/g, '?')}"`

export function claimAt(claims: Record<string, unknown>, path: string): unknown {
  let value: unknown = claims
  for (const name of path.split('.')) {
    if (typeof value !== 'object' || value === null || Array.isArray(value)) return undefined
    value = (value as Record<string, unknown>)[name]
  }
  return value
}

const strings = (value: unknown): string[] => (Array.isArray(value) ? value.filter((v): v is string => typeof v === 'string') : typeof value === 'string' ? value.split(/[\s,]+/).filter(Boolean) : [])

/** The token's scopes: `scope` (space-separated, RFC 8693/9068) or `scp` (an array, as some issuers send). */
export const scopesOf = (claims: Record<string, unknown>): string[] => [...strings(claims.scope), ...strings(claims.scp)]

function encodeText(text: string): string {
  return text.replace(/[^\x20-\x24\x26-\x2b\x2d-\x7e]/gu, (c) => encodeURIComponent(c))
}

/** A claim as one header value (the encoding above); undefined when it has none. */
export function encodeClaim(value: unknown): string | undefined {
  if (value === undefined || value === null) return undefined
  if (Array.isArray(value)) return value.map((v) => encodeClaim(v) ?? '').join(',')
  if (typeof value === 'string') return encodeText(value)
  if (typeof value === 'number' || typeof value === 'boolean') return String(value)
  return encodeText(JSON.stringify(value))
}

export const claimHeaderOf = (claim: string) => `x-auth-${claim.toLowerCase().replace(/[._]/g, '-')}`

declare module 'fastify' {
  interface FastifyRequest {
    /** The verified token of a request on a route with a token policy (null: none, or no policy). */
    edgeToken: VerifiedToken | null
  }
}

export type RouteAuthResult = 'verified' | 'anonymous' | 'missing' | 'invalid' | 'forbidden' | 'unavailable'

export interface RouteAuthCheck {
  /**
   * Applies the route's policy: the verified token (also on request.edgeToken), null for an
   * anonymous request an optional route lets pass; throws the catalogue's 401/403/503 (with
   * WWW-Authenticate set on the reply) otherwise.
   */
  check(routeName: string, auth: RouteAuth, request: FastifyRequest, reply: FastifyReply): Promise<VerifiedToken | null>
}

export function createRouteAuth(settings: RouteAuthSettings, verifier: TokenVerifier, metrics: Pick<ProxyMetrics, 'authRequests'>): RouteAuthCheck {
  const forwarded = settings.forwardClaims.map((claim) => ({ claim, header: claimHeaderOf(claim) }))

  /** The client's identity headers out; the verified ones in. */
  function rewriteHeaders(request: FastifyRequest, token: VerifiedToken | null): void {
    const headers = request.headers
    for (const name of Object.keys(headers)) if (name.startsWith('x-auth-') || CLIENT_IDENTITY_HEADERS.includes(name)) delete headers[name]
    if (!token) return
    headers[SUBJECT_HEADER] = encodeText(token.subject)
    // Services reading X-User-Id (the legacy contract) get the verified subject, never the client's value.
    headers['x-user-id'] = headers[SUBJECT_HEADER]
    headers[ISSUER_HEADER] = encodeText(token.issuer)
    for (const { claim, header } of forwarded) {
      const value = encodeClaim(claimAt(token.claims, claim))
      if (value !== undefined && value.length <= MAX_HEADER_VALUE) headers[header] = value
    }
  }

  function refuse(routeName: string, result: RouteAuthResult, reply: FastifyReply, challenge: string): void {
    metrics.authRequests.labels(routeName, result).inc()
    reply.header('www-authenticate', challenge)
  }

  return {
    async check(routeName, auth, request, reply) {
      const given = request.headers.authorization
      const bearer = typeof given === 'string' && /^bearer /i.test(given) ? given.slice(7).trim() : undefined
      // Another scheme (Basic, say) is no bearer token: an optional route lets it pass as anonymous.
      if (bearer === undefined) {
        rewriteHeaders(request, null)
        if (auth.policy === 'optional') {
          metrics.authRequests.labels(routeName, 'anonymous').inc()
          return null
        }
        refuse(routeName, 'missing', reply, REALM)
        throw new errors.TOKEN_MISSING(routeName)
      }
      let token: VerifiedToken
      try {
        token = await verifier.verify(bearer)
      } catch (error) {
        rewriteHeaders(request, null)
        if (error instanceof IssuerUnavailable) {
          metrics.authRequests.labels(routeName, 'unavailable').inc()
          throw new errors.TOKEN_ISSUER_UNAVAILABLE(error.issuer)
        }
        if (!(error instanceof TokenError)) throw error
        refuse(routeName, 'invalid', reply, `${REALM}, error="invalid_token", error_description=${quoted(error.message)}`)
        throw new errors.TOKEN_INVALID(error.message)
      }
      const unmet = unmetRule(auth, token.claims, settings.rolesClaim)
      if (unmet) {
        rewriteHeaders(request, null)
        const scope = auth.scopes ? `, scope=${quoted(auth.scopes.join(' '))}` : ''
        refuse(routeName, 'forbidden', reply, `${REALM}, error="insufficient_scope", error_description=${quoted(unmet)}${scope}`)
        throw new errors.TOKEN_INSUFFICIENT(routeName, unmet)
      }
      rewriteHeaders(request, token)
      request.edgeToken = token
      metrics.authRequests.labels(routeName, 'verified').inc()
      return token
    },
  }
}

/** The claim rule the token does not meet, in words; undefined when it meets them all. */
export function unmetRule(auth: RouteAuth, claims: Record<string, unknown>, rolesClaim: string): string | undefined {
  if (auth.roles) {
    const roles = new Set(strings(claimAt(claims, rolesClaim)))
    if (!auth.roles.some((r) => roles.has(r))) return `one of the roles ${auth.roles.join(', ')} (claim ${rolesClaim})`
  }
  if (auth.scopes) {
    const scopes = new Set(scopesOf(claims))
    const missing = auth.scopes.filter((s) => !scopes.has(s))
    if (missing.length) return `the scope(s) ${missing.join(' ')}`
  }
  return undefined
}
