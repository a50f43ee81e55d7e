// A compact JWS (a JWT) taken apart and its signature checked, with node:crypto only: the
// algorithm is pinned (the token's `alg` must be one of the allowed ones, and the key must be of
// that algorithm's kind), "none" and the HMAC family are never accepted (the proxy holds no
// shared secret, so an HS256 token signed with a public key is refused, not checked).
// Stands in for `jose`'s jwtVerify, which is not installed here (proxy/README.md, "Identity at the edge").
import { type KeyObject, constants, verify } from 'node:crypto'

/** The asymmetric JWS algorithms the proxy can check (RFC 7518, RFC 8037). */
export const JWS_ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA'] as const
export type JwsAlgorithm = (typeof JWS_ALGORITHMS)[number]

/** Longest token taken apart (bytes of the compact form): larger ones are refused unread. */
export const MAX_TOKEN_LENGTH = 8_192

export class TokenError extends Error {}

export interface DecodedJws {
  header: { alg: JwsAlgorithm; kid?: string; typ?: string; [name: string]: unknown }
  payload: Record<string, unknown>
  /** The signed bytes (header.payload) and the signature. */
  signingInput: Buffer
  signature: Buffer
}

const B64URL = /^[A-Za-z0-9_-]*$/

function part(text: string, what: string): Record<string, unknown> {
  if (!B64URL.test(text)) throw new TokenError(`the ${what} is not base64url`)
  let value: unknown
  try {
    value = JSON.parse(Buffer.from(text, 'base64url').toString('utf8'))
  } catch {
    throw new TokenError(`the ${what} is not JSON`)
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new TokenError(`the ${what} is not a JSON object`)
  return value as Record<string, unknown>
}

/** Takes a compact JWS apart; the algorithm must be one of `allowed`. Checks nothing else. */
export function decodeJws(token: string, allowed: ReadonlySet<string>): DecodedJws {
  if (token.length > MAX_TOKEN_LENGTH) throw new TokenError(`the token is longer than ${MAX_TOKEN_LENGTH} characters`)
  const parts = token.split('.')
  if (parts.length !== 3) throw new TokenError('not a compact JWS (three dot-separated parts)')
  const header = part(parts[0]!, 'header')
  const alg = header.alg
  if (typeof alg !== 'string' || !allowed.has(alg) || !(JWS_ALGORITHMS as readonly string[]).includes(alg)) {
    throw new TokenError(`algorithm ${JSON.stringify(typeof alg === 'string' ? alg.slice(0, 20) : alg ?? null)} is not accepted`)
  }
  // RFC 7515 4.1.11: extensions the proxy does not know must be refused, not ignored.
  if (header.crit !== undefined) throw new TokenError('the header has "crit" extensions, none of which this proxy understands')
  if (header.kid !== undefined && typeof header.kid !== 'string') throw new TokenError('"kid" is not a string')
  if (header.b64 !== undefined) throw new TokenError('unencoded payloads are not accepted')
  const payload = part(parts[1]!, 'payload')
  if (!B64URL.test(parts[2]!) || parts[2] === '') throw new TokenError('the signature is missing or not base64url')
  return { header: header as DecodedJws['header'], payload, signingInput: Buffer.from(`${parts[0]}.${parts[1]}`, 'ascii'), signature: Buffer.from(parts[2]!, 'base64url') }
}

const HASH = { '256': 'sha256', '384': 'sha384', '512': 'sha512' } as const
const CURVE: Record<string, string> = { ES256: 'prime256v1', ES384: 'secp384r1', ES512: 'secp521r1' }

/** Whether `key` is of the kind `alg` signs with (an RSA key never checks an ES256 token, and so on). */
export function keyFits(alg: JwsAlgorithm, key: KeyObject): boolean {
  const type = key.asymmetricKeyType
  if (alg.startsWith('RS') || alg.startsWith('PS')) return type === 'rsa' || (alg.startsWith('PS') && type === 'rsa-pss')
  if (alg.startsWith('ES')) return type === 'ec' && key.asymmetricKeyDetails?.namedCurve === CURVE[alg]
  return type === 'ed25519' || type === 'ed448'
}

/** Whether the signature of `jws` is `key`'s for its algorithm. */
export function signatureValid(jws: DecodedJws, key: KeyObject): boolean {
  const { alg } = jws.header
  if (!keyFits(alg, key)) return false
  if (alg === 'EdDSA') return verify(null, jws.signingInput, key, jws.signature)
  const hash = HASH[alg.slice(2) as keyof typeof HASH]
  if (alg.startsWith('RS')) return verify(hash, jws.signingInput, { key, padding: constants.RSA_PKCS1_PADDING }, jws.signature)
  if (alg.startsWith('PS')) return verify(hash, jws.signingInput, { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: Number(alg.slice(2)) / 8 }, jws.signature)
  return verify(hash, jws.signingInput, { key, dsaEncoding: 'ieee-p1363' }, jws.signature)
}
