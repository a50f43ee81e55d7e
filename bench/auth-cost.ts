// What verifying a bearer token costs per request (proxy/auth/): `node bench/auth-cost.ts`.
// 1. The verification alone (decode, key look-up in the cached JWKS, signature, claims), RS256
//    and ES256, in µs of CPU per token.
// 2. The whole proxy in process (app.inject, a stub upstream over HTTP): CPU per request on the
//    movies route without a policy and with `auth: "required"` (RS256; 200 users' tokens in
//    turn), with the verified-token memory and without it (AUTH_VERIFIED_CACHE_SECONDS=0), the
//    same requests otherwise. A measurement, not a test: the figures go to proxy/README.md.
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { buildApp } from '../proxy/app.ts'
import { loadConfig } from '../proxy/config.ts'
import { createTokenVerifier } from '../proxy/auth/token-verifier.ts'
import { createLogger } from '../lib/logger.ts'
import { newKey, startIssuer } from '../test/proxy/oidc-issuer.ts'
import { startStubUpstream } from '../test/proxy/stub-upstream.ts'

const AUDIENCE = 'bench'
const N = Number(process.env.AUTH_BENCH_REQUESTS ?? 5_000)
const logger = createLogger({ level: 'warn' })

function cpuMicros<T>(work: () => Promise<T>): Promise<number> {
  const start = process.cpuUsage()
  return work().then(() => {
    const used = process.cpuUsage(start)
    return used.user + used.system
  })
}

const issuer = await startIssuer(AUDIENCE)
const es = await newKey('ES256')
await issuer.publish([...issuer.keys, es])
try {
  const verifier = createTokenVerifier(
    { issuers: [{ issuer: issuer.url, discoveryUrl: `${issuer.url}/.well-known/openid-configuration` }], audience: [AUDIENCE], algorithms: ['RS256', 'ES256'], clockToleranceSeconds: 30, jwksCooldownMs: 30_000, jwksMaxAgeMs: 600_000, jwksTimeoutMs: 5_000, verifiedCacheSeconds: 0, rolesClaim: 'roles', forwardClaims: [] },
    { logger, fetched: () => {} },
  )
  for (const [alg, key] of [['RS256', issuer.keys[0]!], ['ES256', es]] as const) {
    const tokens = await Promise.all(Array.from({ length: 200 }, (_, i) => issuer.token({ sub: `user-${i}` }, key)))
    await verifier.verify(tokens[0]!) // the key set is fetched once, outside the measurement
    const micros = await cpuMicros(async () => {
      for (let i = 0; i < N; i++) await verifier.verify(tokens[i % tokens.length]!)
    })
    console.log(`verify ${alg}: ${(micros / N).toFixed(1)} µs CPU per token`)
  }

  const stub = await startStubUpstream('any')
  const routes = JSON.parse(readFileSync(new URL('../proxy/routes.json', import.meta.url), 'utf8'))
  const withAuth = structuredClone(routes)
  withAuth.routes.find((r: { name: string }) => r.name === 'movies').auth = 'required'
  const dir = mkdtempSync(join(tmpdir(), 'auth-bench-'))
  writeFileSync(join(dir, 'plain.json'), JSON.stringify(routes))
  writeFileSync(join(dir, 'auth.json'), JSON.stringify(withAuth))
  const perRequest: Record<string, number> = {}
  const tokens = await Promise.all(Array.from({ length: 200 }, (_, i) => issuer.token({ sub: `user-${i}` })))
  // Three rounds each, interleaved; the least CPU of each counts (the machine is shared).
  for (const variant of ['plain', 'auth', 'uncached', 'plain', 'auth', 'uncached', 'plain', 'auth', 'uncached']) {
    const config = loadConfig({
      ROUTES_FILE: join(dir, `${variant === 'plain' ? 'plain' : 'auth'}.json`),
      AUTH_VERIFIED_CACHE_SECONDS: variant === 'uncached' ? '0' : '60',
      MONOLITH_URL: stub.url,
      MOVIES_SERVICE_URL: stub.url,
      EVENTS_SERVICE_URL: stub.url,
      FLAGS_FILE: join(dir, 'flags.json'),
      RATE_LIMIT_MAX: '0',
      LOG_LEVEL: 'warn',
      AUTH_ISSUERS: issuer.url,
      AUTH_AUDIENCE: AUDIENCE,
    })
    writeFileSync(join(dir, 'flags.json'), readFileSync(new URL('../flags/flags.json', import.meta.url)))
    const { app } = await buildApp(config, { logger })
    const headers = (i: number) => ({ authorization: `Bearer ${tokens[i % tokens.length]}` })
    await app.inject({ url: '/api/movies', headers: headers(0) })
    const micros = await cpuMicros(async () => {
      for (let i = 0; i < N; i++) await app.inject({ url: '/api/movies', headers: headers(i) })
    })
    perRequest[variant] = Math.min(perRequest[variant] ?? Infinity, micros / N)
    await app.close()
  }
  const plain = perRequest.plain!
  const row = (what: string, micros: number) => console.log(`${what.padEnd(60)} ${micros.toFixed(1)} µs CPU per request (+${(micros - plain).toFixed(1)} µs, ${((100 * (micros - plain)) / plain).toFixed(1)} %)`)
  console.log(`${'proxy, movies route, no policy'.padEnd(60)} ${plain.toFixed(1)} µs CPU per request`)
  row('proxy, movies route, auth required (RS256)', perRequest.auth!)
  row('proxy, movies route, auth required, AUTH_VERIFIED_CACHE_SECONDS=0', perRequest.uncached!)
  await stub.close()
} finally {
  await issuer.close()
}
