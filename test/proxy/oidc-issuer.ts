// A real OpenID Connect provider for the proxy's token tests: oidc-provider (panva) over HTTP on
// 127.0.0.1, serving its discovery document and its JWKS. Its signing keys are made here (jose's
// generateKeyPair) and handed to it as its `jwks`, so the tokens the tests sign with the matching
// private keys (jose's SignJWT) are exactly what the provider would sign: the JWKS the proxy
// fetches is the provider's own. A key rotation restarts the provider with a new key set behind
// the same port; stop/start closes and reopens that port (the issuer down, then back).
import http from 'node:http'
import type { AddressInfo, Socket } from 'node:net'
import { randomBytes } from 'node:crypto'
import { SignJWT, exportJWK, generateKeyPair } from 'jose'
import { Provider } from 'oidc-provider'

type KeyPair = Awaited<ReturnType<typeof generateKeyPair>>

export interface SigningKey {
  kid: string
  alg: 'RS256' | 'ES256'
  privateKey: KeyPair['privateKey']
  publicKey: KeyPair['publicKey']
}

export async function newKey(alg: SigningKey['alg'] = 'RS256', kid = `k-${randomBytes(6).toString('hex')}`): Promise<SigningKey> {
  return { kid, alg, ...(await generateKeyPair(alg, { extractable: true })) }
}

/** A compact JWS of `claims` with `key` (header fields may be overridden, e.g. another kid); undefined claims are left out. */
export function signToken(key: SigningKey, claims: Record<string, unknown>, header: Record<string, unknown> = {}): Promise<string> {
  const present = Object.fromEntries(Object.entries(claims).filter(([, v]) => v !== undefined))
  return new SignJWT(present).setProtectedHeader({ alg: key.alg, typ: 'JWT', kid: key.kid, ...header }).sign(key.privateKey)
}

export interface TestIssuer {
  /** The issuer identifier (`iss`), also the base URL of its discovery document. */
  url: string
  /** The keys its JWKS publishes now (the first one signs by default). */
  keys: SigningKey[]
  /** Fetches of the JWKS and of the discovery document so far. */
  fetches: { jwks: number; discovery: number }
  /** A token of this issuer: sub, aud, iat, exp (in 5 min) by default, then `claims`. */
  token(claims?: Record<string, unknown>, key?: SigningKey, header?: Record<string, unknown>): Promise<string>
  /** An access token the provider itself issues (client credentials grant, a JWT for `audience`; its `sub` is CLIENT_ID). */
  issued(): Promise<string>
  /** The provider restarted with a new signing key (the old ones dropped unless `keepOld`). */
  rotate(keepOld?: boolean): Promise<SigningKey>
  /** The provider restarted publishing `keys` (e.g. one more key added). */
  publish(keys: SigningKey[]): Promise<void>
  stop(): Promise<void>
  start(): Promise<void>
  close(): Promise<void>
}

/**
 * The provider's storage (sessions, grants: nothing these tests use) in memory, per instance;
 * given explicitly so the provider does not warn about its development default on every start.
 */
function memoryAdapter() {
  const stored = new Map<string, Record<string, unknown>>()
  return class MemoryAdapter {
    readonly model: string
    constructor(model: string) {
      this.model = model
    }
    key = (id: string) => `${this.model}:${id}`
    async upsert(id: string, payload: Record<string, unknown>) {
      stored.set(this.key(id), payload)
    }
    async find(id: string) {
      return stored.get(this.key(id))
    }
    async findByUid(uid: string) {
      return [...stored.values()].find((p) => p.uid === uid)
    }
    async findByUserCode(userCode: string) {
      return [...stored.values()].find((p) => p.userCode === userCode)
    }
    async consume(id: string) {
      const payload = stored.get(this.key(id))
      if (payload) payload.consumed = Math.floor(Date.now() / 1000)
    }
    async destroy(id: string) {
      stored.delete(this.key(id))
    }
    async revokeByGrantId(grantId: string) {
      for (const [k, p] of stored) if (p.grantId === grantId) stored.delete(k)
    }
  }
}

/** The provider's one client: a service asking for access tokens with the client credentials grant. */
export const CLIENT_ID = 'edge-test-client'
const CLIENT_SECRET = randomBytes(24).toString('base64url')
/** The resource indicator (RFC 8707: an absolute URI) of the API; its tokens carry `audience` as aud. */
const RESOURCE = 'urn:cinemaabyss:api'

/**
 * An oidc-provider instance publishing `keys` (private JWKs: it serves only their public parts),
 * issuing JWT access tokens for `audience` to CLIENT_ID, signed with the first RS256 key.
 */
async function providerFor(url: string, keys: SigningKey[], audience: string): Promise<ReturnType<Provider['callback']>> {
  const jwks = { keys: await Promise.all(keys.map(async (k) => ({ ...(await exportJWK(k.privateKey)), kid: k.kid, alg: k.alg, use: 'sig' }))) }
  const provider = new Provider(url, {
    jwks,
    adapter: memoryAdapter(),
    clients: [{ client_id: CLIENT_ID, client_secret: CLIENT_SECRET, grant_types: ['client_credentials'], redirect_uris: [], response_types: [] }],
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => RESOURCE,
        useGrantedResource: () => true,
        getResourceServerInfo: () => ({ scope: 'movies', audience, accessTokenFormat: 'jwt', jwt: { sign: { alg: 'RS256' } } }),
      },
    },
  })
  return provider.callback()
}

export async function startIssuer(audience: string): Promise<TestIssuer> {
  const sockets = new Set<Socket>()
  let port = 0
  let handle: ReturnType<Provider['callback']> | undefined
  const server = http.createServer((req, res) => {
    const path = (req.url ?? '').split('?')[0]
    if (path === '/jwks') issuer.fetches.jwks++
    if (path === '/.well-known/openid-configuration') issuer.fetches.discovery++
    if (!handle) return res.writeHead(503).end()
    void handle(req, res)
  })
  server.on('connection', (socket) => {
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket))
  })
  const issuer: TestIssuer = {
    url: '',
    keys: [await newKey('RS256')],
    fetches: { jwks: 0, discovery: 0 },
    token(claims = {}, key = issuer.keys[0]!, header = {}) {
      const now = Math.floor(Date.now() / 1000)
      return signToken(key, { iss: issuer.url, sub: 'user-1', aud: audience, iat: now, exp: now + 300, ...claims }, header)
    },
    async issued() {
      const response = await fetch(`${issuer.url}/token`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from(`${CLIENT_ID}:${CLIENT_SECRET}`).toString('base64')}` },
        body: new URLSearchParams({ grant_type: 'client_credentials', resource: RESOURCE, scope: 'movies' }),
      })
      const body = (await response.json()) as { access_token?: string; error?: string; error_description?: string }
      if (!response.ok || !body.access_token) throw new Error(`the provider issued no token: ${response.status} ${body.error ?? ''} ${body.error_description ?? ''}`)
      return body.access_token
    },
    async rotate(keepOld = false) {
      const key = await newKey('RS256')
      await issuer.publish(keepOld ? [key, ...issuer.keys] : [key])
      return key
    },
    async publish(keys) {
      handle = await providerFor(issuer.url, keys, audience)
      issuer.keys = keys
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
  await issuer.start()
  await issuer.publish(issuer.keys)
  return issuer
}
