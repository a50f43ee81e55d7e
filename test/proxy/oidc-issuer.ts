// A small OpenID Connect issuer for the proxy's token tests, over real HTTP: the discovery
// document (/.well-known/openid-configuration) and the JWKS it points to, with keys made by
// node:crypto, tokens signed with them, a key rotation, and a stop/start that keeps the port.
// (oidc-provider is not installed in this repository; see proxy/README.md, "Identity at the edge".)
import { type KeyObject, generateKeyPairSync, randomBytes, sign } from 'node:crypto'
import http from 'node:http'
import type { AddressInfo, Socket } from 'node:net'

export interface SigningKey {
  kid: string
  alg: 'RS256' | 'ES256'
  privateKey: KeyObject
  publicKey: KeyObject
}

export function newKey(alg: SigningKey['alg'] = 'RS256', kid = `k-${randomBytes(6).toString('hex')}`): SigningKey {
  const pair = alg === 'RS256' ? generateKeyPairSync('rsa', { modulusLength: 2048 }) : generateKeyPairSync('ec', { namedCurve: 'P-256' })
  return { kid, alg, ...pair }
}

const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url')

/** A compact JWS of `claims` with `key` (header fields may be overridden, e.g. another kid). */
export function signToken(key: SigningKey, claims: Record<string, unknown>, header: Record<string, unknown> = {}): string {
  const input = `${b64({ alg: key.alg, typ: 'JWT', kid: key.kid, ...header })}.${b64(claims)}`
  const signature = key.alg === 'RS256' ? sign('sha256', Buffer.from(input), key.privateKey) : sign('sha256', Buffer.from(input), { key: key.privateKey, dsaEncoding: 'ieee-p1363' })
  return `${input}.${signature.toString('base64url')}`
}

export interface TestIssuer {
  /** The issuer identifier (`iss`), also the base URL of its discovery document. */
  url: string
  /** The keys its JWKS publishes now (the first one signs by default). */
  keys: SigningKey[]
  /** Fetches of the JWKS and of the discovery document so far. */
  fetches: { jwks: number; discovery: number }
  /** A token of this issuer: sub, aud, iat, exp (in 5 min) by default, then `claims`. */
  token(claims?: Record<string, unknown>, key?: SigningKey, header?: Record<string, unknown>): string
  /** A new signing key published (the old ones dropped unless `keepOld`). */
  rotate(keepOld?: boolean): SigningKey
  stop(): Promise<void>
  start(): Promise<void>
  close(): Promise<void>
}

export async function startIssuer(audience: string): Promise<TestIssuer> {
  const sockets = new Set<Socket>()
  let port = 0
  const issuer: TestIssuer = {
    url: '',
    keys: [newKey('RS256')],
    fetches: { jwks: 0, discovery: 0 },
    token(claims = {}, key = issuer.keys[0]!, header = {}) {
      const now = Math.floor(Date.now() / 1000)
      return signToken(key, { iss: issuer.url, sub: 'user-1', aud: audience, iat: now, exp: now + 300, ...claims }, header)
    },
    rotate(keepOld = false) {
      const key = newKey('RS256')
      issuer.keys = keepOld ? [key, ...issuer.keys] : [key]
      return key
    },
    stop: async () => {
      await new Promise<void>((resolve) => {
        server.close(() => resolve())
        for (const s of sockets) s.destroy()
      })
    },
    start: async () => {
      await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve))
      port = (server.address() as AddressInfo).port
      issuer.url = `http://127.0.0.1:${port}`
    },
    close: () => issuer.stop(),
  }
  const server = http.createServer((req, res) => {
    const send = (body: unknown) => {
      const text = JSON.stringify(body)
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) })
      res.end(text)
    }
    if (req.url === '/.well-known/openid-configuration') {
      issuer.fetches.discovery++
      return send({
        issuer: issuer.url,
        jwks_uri: `${issuer.url}/jwks`,
        authorization_endpoint: `${issuer.url}/auth`,
        token_endpoint: `${issuer.url}/token`,
        response_types_supported: ['code'],
        subject_types_supported: ['public'],
        id_token_signing_alg_values_supported: ['RS256', 'ES256'],
      })
    }
    if (req.url === '/jwks') {
      issuer.fetches.jwks++
      return send({ keys: issuer.keys.map((k) => ({ ...k.publicKey.export({ format: 'jwk' }), kid: k.kid, alg: k.alg, use: 'sig' })) })
    }
    res.writeHead(404).end()
  })
  server.on('connection', (socket) => {
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket))
  })
  await issuer.start()
  return issuer
}
