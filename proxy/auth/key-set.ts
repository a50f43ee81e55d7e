// One issuer's signing keys (its JWKS), fetched over HTTP and kept in memory:
// - fetched once for any number of concurrent callers (one fetch in flight at a time);
// - refreshed in the background once older than maxAgeMs, while the cached keys keep serving;
// - an unknown `kid` refetches at once (a key rotation is picked up on the first token that uses
//   the new key), but at most once per cooldownMs: a storm of forged kids costs the issuer one
//   fetch per cooldown, never one per token;
// - a failed fetch keeps the last good key set serving (counted; `stale` says so) for as long as
//   the issuer is unreachable: an issuer's hiccup never takes the site down.
// Envoy fails every request when the JWKS endpoint is down; KrakenD refetches on every miss.
import { type KeyObject, createPublicKey, type JsonWebKey } from 'node:crypto'
import { JWS_ALGORITHMS, type JwsAlgorithm, keyFits } from './jws.ts'

export interface KeySetOptions {
  /** The JWKS URL (or a function resolving it, e.g. through OIDC discovery). */
  jwksUri: () => Promise<string>
  timeoutMs: number
  cooldownMs: number
  maxAgeMs: number
  /** Largest JWKS document read. */
  maxBytes?: number
}

export type FetchResult = 'ok' | 'error'

export interface KeySetHooks {
  /** Every fetch's outcome (the metric) and, when it failed, why (the log). */
  fetched(result: FetchResult, error?: Error): void
}

/** No key set has ever been fetched and the issuer cannot be reached now. */
export class KeysUnavailable extends Error {}

interface Key {
  kid?: string
  alg?: string
  key: KeyObject
}

export interface KeySet {
  /** The key for the token's header; undefined = no key of this set fits (unknown kid, after at most one refetch). */
  keyFor(alg: JwsAlgorithm, kid: string | undefined): Promise<KeyObject | undefined>
  /** What the set holds and how fresh it is (metrics, /admin). */
  status(): { keys: number; fetchedAt?: number; lastFailureAt?: number; stale: boolean }
}

/** The signing keys of a JWKS document; keys it cannot use (encryption, symmetric, unknown kind) are left out. */
export function parseJwks(doc: unknown): Key[] {
  const keys = (doc as { keys?: unknown } | null)?.keys
  if (!Array.isArray(keys)) throw new Error('the JWKS has no "keys" array')
  const out: Key[] = []
  for (const jwk of keys as Array<Record<string, unknown>>) {
    if (typeof jwk !== 'object' || jwk === null) continue
    if (jwk.use !== undefined && jwk.use !== 'sig') continue
    if (!['RSA', 'EC', 'OKP'].includes(jwk.kty as string)) continue
    if (jwk.d !== undefined) continue // a private key published by mistake is not used
    if (jwk.alg !== undefined && !(JWS_ALGORITHMS as readonly string[]).includes(jwk.alg as string)) continue
    try {
      out.push({ kid: typeof jwk.kid === 'string' ? jwk.kid : undefined, alg: jwk.alg as string | undefined, key: createPublicKey({ key: jwk as JsonWebKey, format: 'jwk' }) })
    } catch {
      // A malformed key is skipped: the others still verify.
    }
  }
  return out
}

export function remoteKeySet(opts: KeySetOptions, hooks: KeySetHooks): KeySet {
  let keys: Key[] | undefined
  let fetchedAt: number | undefined
  let lastAttemptAt = -Infinity
  let lastFailureAt: number | undefined
  let inFlight: Promise<void> | undefined
  const maxBytes = opts.maxBytes ?? 512 * 1024

  async function load(): Promise<void> {
    const url = await opts.jwksUri()
    const response = await fetch(url, { signal: AbortSignal.timeout(opts.timeoutMs), headers: { accept: 'application/json, application/jwk-set+json' }, redirect: 'error' })
    if (!response.ok) throw new Error(`${url} answered ${response.status}`)
    const text = await response.text()
    if (text.length > maxBytes) throw new Error(`${url}: the JWKS is larger than ${maxBytes} bytes`)
    const parsed = parseJwks(JSON.parse(text))
    if (parsed.length === 0) throw new Error(`${url}: the JWKS holds no signing key`)
    keys = parsed
    fetchedAt = Date.now()
  }

  /** One fetch for every caller; a failure keeps the keys there were. */
  function refresh(): Promise<void> {
    inFlight ??= (async () => {
      lastAttemptAt = Date.now()
      try {
        await load()
        hooks.fetched('ok')
      } catch (error) {
        lastFailureAt = Date.now()
        hooks.fetched('error', error as Error)
      } finally {
        inFlight = undefined
      }
    })()
    return inFlight
  }

  const find = (alg: JwsAlgorithm, kid: string | undefined): KeyObject | undefined => {
    const fitting = (keys ?? []).filter((k) => (k.alg === undefined || k.alg === alg) && keyFits(alg, k.key) && (kid === undefined || k.kid === kid))
    // Without a kid, only an unambiguous key is used (as jose does).
    return fitting.length === 1 || (kid !== undefined && fitting.length > 0) ? fitting[0]!.key : undefined
  }

  return {
    async keyFor(alg, kid) {
      const now = Date.now()
      if (!keys) {
        // Nothing cached: every caller waits for the same fetch (retried at most once per cooldown).
        if (inFlight || now - lastAttemptAt >= opts.cooldownMs) await refresh()
        if (!keys) throw new KeysUnavailable('the key set could not be fetched')
        return find(alg, kid)
      }
      if (now - fetchedAt! >= opts.maxAgeMs && now - lastAttemptAt >= opts.cooldownMs) void refresh()
      const key = find(alg, kid)
      if (key) return key
      // An unknown kid: the issuer may have rotated its keys. A fetch in flight is joined; a
      // fetch within the cooldown is not repeated.
      if (inFlight) await inFlight
      else if (now - lastAttemptAt >= opts.cooldownMs) await refresh()
      return find(alg, kid)
    },
    status: () => ({ keys: keys?.length ?? 0, fetchedAt, lastFailureAt, stale: keys !== undefined && lastFailureAt !== undefined && lastFailureAt > fetchedAt! }),
  }
}
