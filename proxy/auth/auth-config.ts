// The variables of token verification at the edge (proxy/auth/): which issuers, which audience,
// which algorithms, how much clock skew, how keys are fetched, which claims go upstream.
// Routes opt in with `auth` in the route map (proxy/model/route-map.ts); with no AUTH_ISSUERS a
// route map asking for tokens is refused at start.
import { ConfigError, env, type EnvField } from '../../lib/config.ts'

/** The asymmetric JWS algorithms a token may be signed with (RFC 7518, RFC 8037): never "none", never HS* (the proxy holds no shared secret). */
export const JWS_ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA'] as const
export type JwsAlgorithm = (typeof JWS_ALGORITHMS)[number]

/** One trusted issuer: its `iss` value and where its keys are (JWKS URL, else OIDC discovery). */
export interface IssuerConfig {
  /** The exact `iss` its tokens carry. */
  issuer: string
  /** The JWKS URL; absent = from the discovery document's jwks_uri. */
  jwksUri?: string
  /** The OIDC discovery document; default <issuer>/.well-known/openid-configuration. */
  discoveryUrl: string
  /** Overrides AUTH_AUDIENCE for this issuer. */
  audience?: string[]
}

const urlOf = (value: unknown, what: string, name: string): string => {
  let url: URL
  try {
    url = new URL(String(value))
  } catch {
    throw new ConfigError(`${name}: ${what} "${String(value).slice(0, 100)}" is not a URL`)
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new ConfigError(`${name}: ${what} must be http(s)`)
  return url.href
}

const discoveryOf = (issuer: string) => `${issuer.replace(/\/+$/, '')}/.well-known/openid-configuration`

/**
 * AUTH_ISSUERS: a comma-separated list of issuer URLs (each found by OIDC discovery), or a JSON
 * array of {"issuer", "jwksUri"?, "discoveryUrl"?, "audience"?}.
 */
const issuersEnv: EnvField<IssuerConfig[]> = {
  names: ['AUTH_ISSUERS'],
  description: 'trusted token issuers: issuer URLs, comma-separated (keys by OIDC discovery), or JSON [{"issuer","jwksUri"?,"discoveryUrl"?,"audience"?}]; unset = no route may ask for tokens',
  parse(raw, name) {
    if (raw === undefined || raw.trim() === '') return []
    const text = raw.trim()
    let entries: unknown[]
    if (text.startsWith('[')) {
      try {
        entries = JSON.parse(text)
      } catch (error) {
        throw new ConfigError(`${name} is not valid JSON: ${(error as Error).message}`)
      }
      if (!Array.isArray(entries)) throw new ConfigError(`${name} must be a JSON array`)
    } else entries = text.split(',').map((s) => s.trim()).filter(Boolean).map((issuer) => ({ issuer }))
    const issuers = entries.map((entry, i): IssuerConfig => {
      const e = entry as Record<string, unknown>
      if (typeof e !== 'object' || e === null || typeof e.issuer !== 'string' || e.issuer === '') throw new ConfigError(`${name} entry ${i + 1} needs "issuer"`)
      const unknown = Object.keys(e).filter((k) => !['issuer', 'jwksUri', 'discoveryUrl', 'audience'].includes(k))
      if (unknown.length) throw new ConfigError(`${name} entry ${i + 1}: unknown field(s) ${unknown.join(', ')}`)
      urlOf(e.issuer, 'issuer', name)
      const audience = e.audience === undefined ? undefined : [e.audience].flat()
      if (audience && (audience.length === 0 || audience.some((a) => typeof a !== 'string' || a === ''))) throw new ConfigError(`${name} entry ${i + 1}: audience must be a string or strings`)
      return {
        issuer: e.issuer,
        ...(e.jwksUri !== undefined ? { jwksUri: urlOf(e.jwksUri, 'jwksUri', name) } : {}),
        discoveryUrl: e.discoveryUrl !== undefined ? urlOf(e.discoveryUrl, 'discoveryUrl', name) : discoveryOf(e.issuer),
        ...(audience ? { audience: audience as string[] } : {}),
      }
    })
    const twice = issuers.find((x, i) => issuers.findIndex((y) => y.issuer === x.issuer) !== i)
    if (twice) throw new ConfigError(`${name}: issuer ${twice.issuer} appears twice`)
    return issuers
  },
}

const algorithmsEnv: EnvField<JwsAlgorithm[]> = {
  names: ['AUTH_ALGORITHMS'],
  description: `accepted token signature algorithms (pinned; "none" and HS* never), among ${JWS_ALGORITHMS.join(', ')}`,
  parse(raw, name) {
    const given = (raw ?? 'RS256,ES256').split(',').map((s) => s.trim()).filter(Boolean)
    const bad = given.filter((a) => !(JWS_ALGORITHMS as readonly string[]).includes(a))
    if (bad.length || given.length === 0) throw new ConfigError(`${name} must list algorithms among ${JWS_ALGORITHMS.join(', ')}; not accepted: ${bad.join(', ') || '(none given)'}`)
    return [...new Set(given)] as JwsAlgorithm[]
  },
}

/** Claim names as headers: letters, digits, - _ . (a dotted path reads a nested claim). */
const CLAIM = /^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/

const claimList = (names: string, fallback: string[], description: string): EnvField<string[]> => ({
  names: [names],
  description,
  parse(raw, name) {
    const given = raw === undefined ? fallback : raw.split(',').map((s) => s.trim()).filter(Boolean)
    const bad = given.find((c) => !CLAIM.test(c))
    if (bad) throw new ConfigError(`${name}: "${bad.slice(0, 64)}" is not a claim name (letters, digits, - _, dotted for a nested claim)`)
    return given
  },
})

export const authEnv = {
  authIssuers: issuersEnv,
  authAudience: env.list('AUTH_AUDIENCE', [], 'the audience tokens must name in "aud" (one of these); required with AUTH_ISSUERS unless each issuer gives its own'),
  authAlgorithms: algorithmsEnv,
  authClockToleranceSeconds: env.int('AUTH_CLOCK_TOLERANCE_SECONDS', 30, { min: 0, max: 300, description: 'clock skew allowed when checking exp and nbf' }),
  authJwksCooldownMs: env.int('AUTH_JWKS_COOLDOWN_MS', 30_000, { min: 1_000, description: 'least time between two fetches of an issuer\'s keys (an unknown kid refetches at most this often)' }),
  authJwksMaxAgeMs: env.int('AUTH_JWKS_MAX_AGE_MS', 600_000, { min: 1_000, description: "an issuer's keys are refetched once this old (if the issuer is down, the last good ones keep serving)" }),
  authJwksTimeoutMs: env.int('AUTH_JWKS_TIMEOUT_MS', 5_000, { min: 1, description: 'bound on each discovery and JWKS fetch' }),
  authVerifiedCacheSeconds: env.int('AUTH_VERIFIED_CACHE_SECONDS', 60, { min: 0, max: 3_600, description: 'a verified token is remembered this long (at most until it expires; 5,000 tokens): its next requests skip the signature check; 0 = check every request' }),
  authRolesClaim: env.string('AUTH_ROLES_CLAIM', 'roles', 'the claim (dotted path for a nested one, e.g. realm_access.roles) holding the roles a route\'s "roles" rule reads'),
  authForwardClaims: claimList('AUTH_FORWARD_CLAIMS', ['roles', 'scope'], 'claims sent upstream as X-Auth-<Claim> headers on routes with a token policy (besides X-Auth-Sub and X-Auth-Issuer)'),
}

export interface AuthSettings {
  issuers: IssuerConfig[]
  audience: string[]
  algorithms: JwsAlgorithm[]
  clockToleranceSeconds: number
  jwksCooldownMs: number
  jwksMaxAgeMs: number
  jwksTimeoutMs: number
  /** How long a verified token is remembered (0 = never). */
  verifiedCacheSeconds: number
  rolesClaim: string
  forwardClaims: string[]
}

/** The settings of proxy/auth/, checked together: an issuer without an audience is refused. */
export function authSettings(config: { [K in keyof typeof authEnv as K]: ReturnType<(typeof authEnv)[K]['parse']> }): AuthSettings {
  const noAudience = config.authIssuers.find((i) => !i.audience && config.authAudience.length === 0)
  // A token of the same issuer for another application would pass: the audience is what tells them apart.
  if (noAudience) throw new ConfigError(`invalid configuration: AUTH_AUDIENCE is required (issuer ${noAudience.issuer} gives no audience of its own)`)
  return {
    issuers: config.authIssuers,
    audience: config.authAudience,
    algorithms: config.authAlgorithms,
    clockToleranceSeconds: config.authClockToleranceSeconds,
    jwksCooldownMs: config.authJwksCooldownMs,
    jwksMaxAgeMs: config.authJwksMaxAgeMs,
    jwksTimeoutMs: config.authJwksTimeoutMs,
    verifiedCacheSeconds: config.authVerifiedCacheSeconds,
    rolesClaim: config.authRolesClaim,
    forwardClaims: config.authForwardClaims,
  }
}
