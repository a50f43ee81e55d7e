// A bearer token checked against the trusted issuers with jose's jwtVerify: the issuer its `iss`
// names (only the configured ones: no key is ever fetched from a URL a token gives), a key of that
// issuer's set (key-set.ts), the pinned algorithms, then iss, aud, exp (required), nbf with a
// small clock tolerance. What passes is the verified identity: subject, issuer and claims.
import { decodeJwt, errors as jose, jwtVerify } from 'jose'
import type { Logger } from '../../lib/logger.ts'
import type { AuthSettings, IssuerConfig } from './auth-config.ts'
import { KeysUnavailable, remoteKeySet, type FetchResult, type KeySet } from './key-set.ts'

/** A token refused (401); the message says why, without echoing the token. */
export class TokenError extends Error {}

/** Longest token looked at (characters of the compact form): larger ones are refused unread. */
export const MAX_TOKEN_LENGTH = 8_192

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

/** Why jose refused a token, in the words of the 401's error_description (never the token itself). */
function whyRefused(error: unknown): string {
  if (error instanceof jose.JWTExpired) return 'the token has expired'
  if (error instanceof jose.JWTClaimValidationFailed) {
    if (error.claim === 'exp') return 'the token has no expiry (exp)'
    if (error.claim === 'nbf') return 'the token is not valid yet (nbf)'
    if (error.claim === 'aud') return 'the token is not meant for this audience (aud)'
    if (error.claim === 'iss') return 'the issuer is not trusted'
    return `the claim ${error.claim} is not valid (${error.reason})`
  }
  if (error instanceof jose.JOSEAlgNotAllowed) return 'the algorithm (alg) is not accepted'
  if (error instanceof jose.JWSSignatureVerificationFailed) return 'the signature is not valid'
  if (error instanceof jose.JWKSNoMatchingKey) return "no key of the issuer fits the token (kid, alg)"
  if (error instanceof jose.JWKSMultipleMatchingKeys) return 'no single key of the issuer fits the token (it names no kid)'
  if (error instanceof jose.JOSEError) return `the token is malformed (${error.code})`
  throw error
}

export function createTokenVerifier(settings: AuthSettings, hooks: TokenVerifierHooks): TokenVerifier {
  const byIssuer = new Map<string, { config: IssuerConfig; keys: KeySet; audience: string[] }>()
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
    byIssuer.set(config.issuer, { config, keys, audience: config.audience ?? settings.audience })
  }
  const skew = settings.clockToleranceSeconds
  // Clients send the same token for many requests: a verified one is remembered briefly (never
  // past its expiry), so they skip the signature check. Bounded: the oldest go first.
  const remembered = new Map<string, { verified: VerifiedToken; until: number }>()
  const rememberMs = settings.verifiedCacheSeconds * 1000

  async function verifyUncached(token: string): Promise<VerifiedToken> {
    if (token.length > MAX_TOKEN_LENGTH) throw new TokenError(`the token is longer than ${MAX_TOKEN_LENGTH} characters`)
    let claimed: unknown
    try {
      // Unverified: only to pick the issuer among the configured ones; jwtVerify checks it again.
      claimed = decodeJwt(token).iss
    } catch {
      throw new TokenError('not a JWT (a compact JWS of three base64url parts with a JSON payload)')
    }
    const issuer = typeof claimed === 'string' ? byIssuer.get(claimed) : undefined
    if (!issuer) throw new TokenError('the issuer is not trusted')
    let payload
    try {
      ;({ payload } = await jwtVerify(token, issuer.keys.resolve, {
        algorithms: settings.algorithms,
        issuer: issuer.config.issuer,
        audience: issuer.audience,
        clockTolerance: settings.clockToleranceSeconds,
        requiredClaims: ['exp'],
      }))
    } catch (error) {
      if (error instanceof KeysUnavailable) throw new IssuerUnavailable(issuer.config.issuer)
      throw new TokenError(whyRefused(error))
    }
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
