// One issuer's signing keys (its JWKS), through jose's createRemoteJWKSet, which fetches once for
// any number of concurrent callers, caches, refetches when the set is older than maxAgeMs, and
// refetches on an unknown `kid` at most once per cooldownMs (a key rotation is picked up on the
// first token that uses the new key; a storm of forged kids costs the issuer one fetch per
// cooldown, never one per token).
// What this thin layer adds, because jose's set throws whenever a fetch it needs fails:
// - the last good key set keeps serving while the issuer is unreachable (counted; `stale` says
//   so), also once it is older than maxAgeMs: an issuer's hiccup never takes the site down;
// - after a failed fetch the issuer is not asked again within cooldownMs (jose's cooldown runs
//   from the last successful fetch only, so a down issuer would be asked on every request);
// - the JWKS URL found by OIDC discovery, each fetch counted, the document bounded in size.
// Envoy fails every request when the JWKS endpoint is down; KrakenD refetches on every miss.
import { createLocalJWKSet, createRemoteJWKSet, customFetch, type JWSHeaderParameters, type FlattenedJWSInput, type JSONWebKeySet, type RemoteJWKSet } from 'jose'

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

/** A discovery or JWKS fetch that failed (network, timeout, status, size, not a key set). */
class FetchFailed extends Error {}

/** A jose key resolver (jwtVerify's second argument). */
export type KeyResolver = (header: JWSHeaderParameters, token: FlattenedJWSInput) => ReturnType<RemoteJWKSet>

export interface KeySet {
  /** The key for a token: throws KeysUnavailable (none ever fetched) or jose's errors (no key fits). */
  resolve: KeyResolver
  /** What the set holds and how fresh it is (metrics, /admin). */
  status(): { keys: number; fetchedAt?: number; lastFailureAt?: number; stale: boolean }
}

export function remoteKeySet(opts: KeySetOptions, hooks: KeySetHooks): KeySet {
  const maxBytes = opts.maxBytes ?? 512 * 1024
  let remote: RemoteJWKSet | undefined
  let resolvingUrl: Promise<RemoteJWKSet> | undefined
  let fetchedAt: number | undefined
  let lastFailureAt: number | undefined
  // The last good set as a local resolver, made again only when a newer set was fetched.
  let lastGood: { at: number; resolve: ReturnType<typeof createLocalJWKSet> } | undefined

  const failed = (error: unknown): FetchFailed => {
    const failure = error instanceof FetchFailed ? error : new FetchFailed((error as Error).message ?? String(error))
    lastFailureAt = Date.now()
    hooks.fetched('error', failure)
    return failure
  }

  /** jose's fetch, counted and bounded: only a 200 with a JWKS of at least one key reaches jose. */
  const countedFetch = async (url: string, init: { headers: Headers; method: 'GET'; redirect: 'manual'; signal: AbortSignal }): Promise<Response> => {
    try {
      const response = await fetch(url, init)
      if (response.status !== 200) throw new FetchFailed(`${url} answered ${response.status}`)
      const text = await response.text()
      if (text.length > maxBytes) throw new FetchFailed(`${url}: the JWKS is larger than ${maxBytes} bytes`)
      const doc = JSON.parse(text) as { keys?: unknown }
      if (!Array.isArray(doc?.keys)) throw new FetchFailed(`${url}: the JWKS has no "keys" array`)
      if (doc.keys.length === 0) throw new FetchFailed(`${url}: the JWKS holds no key`)
      // What jose's createLocalJWKSet would refuse is refused here, as a failed fetch: the last good keys stay.
      if (!doc.keys.every((k: unknown) => typeof k === 'object' && k !== null && typeof (k as { kty?: unknown }).kty === 'string')) throw new FetchFailed(`${url}: a JWKS member is not a JWK`)
      fetchedAt = Date.now()
      hooks.fetched('ok')
      return new Response(text, { status: 200, headers: { 'content-type': 'application/json' } })
    } catch (error) {
      throw failed(error)
    }
  }

  /** The remote set, once its URL is known (a discovery failure is retried after the cooldown). */
  function remoteSet(): Promise<RemoteJWKSet> {
    if (remote) return Promise.resolve(remote)
    resolvingUrl ??= opts
      .jwksUri()
      .then((url) => {
        remote = createRemoteJWKSet(new URL(url), { timeoutDuration: opts.timeoutMs, cooldownDuration: opts.cooldownMs, cacheMaxAge: opts.maxAgeMs, [customFetch]: countedFetch })
        return remote
      })
      .catch((error: unknown) => {
        throw failed(error)
      })
      .finally(() => {
        resolvingUrl = undefined
      })
    return resolvingUrl
  }

  function fallback(): ReturnType<typeof createLocalJWKSet> {
    const jwks = remote?.jwks() as JSONWebKeySet | undefined
    if (!jwks || fetchedAt === undefined) throw new KeysUnavailable('the key set could not be fetched')
    if (lastGood?.at !== fetchedAt) lastGood = { at: fetchedAt, resolve: createLocalJWKSet(jwks) }
    return lastGood.resolve
  }

  return {
    async resolve(header, token) {
      // Within the cooldown after a failed fetch the issuer is not asked: the last good keys answer.
      const resting = lastFailureAt !== undefined && Date.now() - lastFailureAt < opts.cooldownMs && (fetchedAt === undefined || lastFailureAt > fetchedAt)
      if (!resting) {
        try {
          return await (await remoteSet())(header, token)
        } catch (error) {
          if (!(error instanceof FetchFailed)) throw error
        }
      }
      return fallback()(header, token)
    },
    status: () => ({
      keys: remote?.jwks()?.keys.length ?? 0,
      fetchedAt,
      lastFailureAt,
      stale: fetchedAt !== undefined && lastFailureAt !== undefined && lastFailureAt > fetchedAt,
    }),
  }
}
