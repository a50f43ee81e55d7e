// A bearer token checked against the trusted issuers: the issuer its `iss` names (only the
// configured ones: no key is ever fetched from a URL a token gives), a key of that issuer's set
// (key-set.ts), the pinned algorithm (jws.ts), then aud, exp, nbf with a small clock tolerance.
// What passes is the verified identity: subject, issuer and claims.
import type { Logger } from '../../lib/logger.ts'
import type { AuthSettings, IssuerConfig } from './auth-config.ts'
import { TokenError, decodeJws, signatureValid } from './jws.ts'
import { KeysUnavailable, remoteKeySet, type FetchResult, type KeySet } from './key-set.ts'

export interface VerifiedToken {
  subject: string
  issuer: string
  claims: Record<string, unknown>
}

export interface TokenVerifierHooks {
  logger: Logger
  /** Each discovery/JWKS fetch's outcome per issuer (proxy_auth_jwks_fetches_total). */
  fetched(issuer: string, result: FetchResult): void
}

export interface TokenVerifier {
  /** The verified identity; throws TokenError (a bad token: 401) or IssuerUnavailable (no keys ever fetched: 503). */
  verify(token: string): Promise<VerifiedToken>
  /** Each issuer's key set (metrics: proxy_auth_jwks_stale, proxy_auth_jwks_age_seconds). */
  issuers(): Array<{ issuer: string; keys: number; fetchedAt?: number; lastFailureAt?: number; stale: boolean }>
}

export class IssuerUnavailable extends Error {
  readonly issuer: string
  constructor(issuer: string) {
    super(`the keys of ${issuer} cannot be fetched`)
    this.issuer = issuer
  }
}

/** Subjects carried upstream in a header and used as the sticky key: printable, bounded. */
const SUBJECT = /^[\x21-\x7e\u00a0-\uffff][\x20-\x7e\u00a0-\uffff]{0,254}$/

/** Resolves the JWKS URL through OIDC discovery once (a failure is retried on the key set's next fetch). */
function jwksUriOf(config: IssuerConfig, timeoutMs: number): () => Promise<string> {
  if (config.jwksUri) return async () => config.jwksUri!
  let found: string | undefined
  return async () => {
    if (found) return found
    const response = await fetch(config.discoveryUrl, { signal: AbortSignal.timeout(timeoutMs), headers: { accept: 'application/json' }, redirect: 'error' })
    if (!response.ok) throw new Error(`${config.discoveryUrl} answered ${response.status}`)
    const doc = (await response.json()) as { issuer?: unknown; jwks_uri?: unknown }
    // OIDC Discovery 4.3: the document must name the very issuer it was fetched for.
    if (doc.issuer !== config.issuer) throw new Error(`${config.discoveryUrl} names issuer ${JSON.stringify(doc.issuer)}, not ${config.issuer}`)
    if (typeof doc.jwks_uri !== 'string') throw new Error(`${config.discoveryUrl} gives no jwks_uri`)
    found = new URL(doc.jwks_uri).href
    return found
  }
}

/** Verified tokens remembered at most. */
const REMEMBERED_MAX = 5_000

const audiencesOf = (aud: unknown): string[] => (typeof aud === 'string' ? [aud] : Array.isArray(aud) ? aud.filter((a): a is string => typeof a === 'string') : [])

export function createTokenVerifier(settings: AuthSettings, hooks: TokenVerifierHooks): TokenVerifier {
  const allowed = new Set<string>(settings.algorithms)
  const byIssuer = new Map<string, { config: IssuerConfig; keys: KeySet; audience: Set<string> }>()
  for (const config of settings.issuers) {
    const keys = remoteKeySet(
      { jwksUri: jwksUriOf(config, settings.jwksTimeoutMs), timeoutMs: settings.jwksTimeoutMs, cooldownMs: settings.jwksCooldownMs, maxAgeMs: settings.jwksMaxAgeMs },
      {
        fetched(result, error) {
          hooks.fetched(config.issuer, result)
          if (error) hooks.logger.warn({ issuer: config.issuer, err: error.message }, 'token issuer: keys not fetched; the last good keys keep serving')
        },
      },
    )
    byIssuer.set(config.issuer, { config, keys, audience: new Set(config.audience ?? settings.audience) })
  }
  const skew = settings.clockToleranceSeconds
  // Clients send the same token for many requests: a verified one is remembered briefly (never
  // past its expiry), so they skip the signature check. Bounded: the oldest go first.
  const remembered = new Map<string, { verified: VerifiedToken; until: number }>()
  const rememberMs = settings.verifiedCacheSeconds * 1000

  async function verifyUncached(token: string): Promise<VerifiedToken> {
      const jws = decodeJws(token, allowed)
      const { payload } = jws
      const issuer = typeof payload.iss === 'string' ? byIssuer.get(payload.iss) : undefined
      if (!issuer) throw new TokenError('the issuer is not trusted')
      let key
      try {
        key = await issuer.keys.keyFor(jws.header.alg, jws.header.kid)
      } catch (error) {
        if (error instanceof KeysUnavailable) throw new IssuerUnavailable(issuer.config.issuer)
        throw error
      }
      if (!key) throw new TokenError(jws.header.kid === undefined ? 'no single key of the issuer fits the token (it names no kid)' : 'the key the token names (kid) is not one of the issuer\'s')
      if (!signatureValid(jws, key)) throw new TokenError('the signature is not valid')
      // Claims are read only once the signature holds.
      const now = Date.now() / 1000
      if (typeof payload.exp !== 'number') throw new TokenError('the token has no expiry (exp)')
      if (payload.exp + skew <= now) throw new TokenError('the token has expired')
      if (payload.nbf !== undefined && (typeof payload.nbf !== 'number' || payload.nbf - skew > now)) throw new TokenError('the token is not valid yet (nbf)')
      if (!audiencesOf(payload.aud).some((a) => issuer.audience.has(a))) throw new TokenError('the token is not meant for this audience (aud)')
      if (typeof payload.sub !== 'string' || !SUBJECT.test(payload.sub)) throw new TokenError('the token has no usable subject (sub)')
      return { subject: payload.sub, issuer: issuer.config.issuer, claims: payload }
  }

  return {
    async verify(token) {
      if (rememberMs === 0) return verifyUncached(token)
      const now = Date.now()
      const hit = remembered.get(token)
      if (hit && hit.until > now) return hit.verified
      if (hit) remembered.delete(token)
      const verified = await verifyUncached(token)
      if (remembered.size >= REMEMBERED_MAX) remembered.delete(remembered.keys().next().value!)
      remembered.set(token, { verified, until: Math.min(now + rememberMs, ((verified.claims.exp as number) + skew) * 1000) })
      return verified
    },
    issuers: () => [...byIssuer.values()].map((i) => ({ issuer: i.config.issuer, ...i.keys.status() })),
  }
}
