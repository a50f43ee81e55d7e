// The route map is data (proxy/routes.json): the upstreams the proxy talks to (name, URL —
// literal or from an environment variable —, health path, per-upstream pool and breaker
// overrides), which prefix goes to which upstream, and which flag moves a route from its legacy
// upstream to its target. Adding a service is an edit here (plus its flag), never code.
// Checked at start with errors that name the entry and the field.
import { readFileSync } from 'node:fs'
import { Type, type Static } from '@sinclair/typebox'
import { Value } from '@sinclair/typebox/value'
import { ConfigError, env } from '../../lib/config.ts'
import { DEFAULT_LIMITS, GuardLimits } from './guard.ts'
import { BreakerOptions, PoolOptions } from './upstream-options.ts'
import { ShadowEntry, shadowProblems } from './shadow-settings.ts'

const Name = Type.String({ pattern: '^[a-z0-9][a-z0-9-]{0,62}$' })
const Path = Type.String({ pattern: '^/[A-Za-z0-9._~/-]*$' })

/** A URL: literal, or `{"env": "MONOLITH_URL", "default": "http://localhost:8080"}` (the variable wins when set). */
const UrlRef = Type.Union([
  Type.String({ minLength: 1 }),
  Type.Object({ env: Type.String({ pattern: '^[A-Z_][A-Z0-9_]*$' }), default: Type.Optional(Type.String({ minLength: 1 })) }, { additionalProperties: false }),
])

const UpstreamEntry = Type.Object(
  {
    name: Name,
    url: UrlRef,
    /** Path the readiness probe calls when this upstream serves the catch-all route; default /health. */
    health: Type.Optional(Path),
    /** Overrides of the UPSTREAM_* defaults for this upstream only (proxy/forward/upstream-client.ts, PoolOptions). */
    pool: Type.Optional(Type.Partial(PoolOptions)),
    /** Overrides of the BREAKER_* defaults for this upstream only (proxy/forward/breakers.ts, BreakerOptions). */
    breaker: Type.Optional(Type.Partial(BreakerOptions)),
  },
  { additionalProperties: false },
)

/** The standing guard of a split route (proxy/rollout/ramp/guard.ts): the limits, judged every interval; omitted limits take the defaults. */
const GuardEntry = Type.Object(
  {
    intervalSeconds: Type.Optional(Type.Integer({ minimum: 1, maximum: 86_400 })),
    ...Type.Partial(GuardLimits).properties,
  },
  { additionalProperties: false },
)

/** The parity endpoint both sides of a split route serve (lib/parity/parity-routes.ts), compared by proxy/rollout/parity/. */
const ParityEntry = Type.Object(
  {
    path: Path,
    intervalSeconds: Type.Optional(Type.Integer({ minimum: 5, maximum: 86_400 })),
    buckets: Type.Optional(Type.Integer({ minimum: 1, maximum: 4096 })),
    // Each call to a side's parity endpoint; the summary scans the whole table (about 10 s per million rows on a busy 2-core machine).
    timeoutSeconds: Type.Optional(Type.Integer({ minimum: 1, maximum: 600 })),
  },
  { additionalProperties: false },
)

/**
 * The two stores of a split route decide who writes (lib/replication/write-authority.ts): the
 * proxy hands writes over through them and sends a write a store refused to the other one.
 */
const WriterEntry = Type.Object(
  {
    /** Each side's write authority (GET) and release (POST <path>/release). */
    path: Type.Optional(Path),
    /** Each side's open replication conflicts (GET) and their resolution (POST <path>/resolve). */
    conflictsPath: Type.Optional(Path),
  },
  { additionalProperties: false },
)

/** A route's token policy (proxy/auth/): off (default), optional (no token passes; a present one must be valid) or required. */
const AuthPolicy = Type.Union([Type.Literal('off'), Type.Literal('optional'), Type.Literal('required')])
const ClaimValue = Type.String({ pattern: '^[\\x21-\\x7e]{1,200}$' })
/** `"required"`, or with claim rules: any one of `roles` (AUTH_ROLES_CLAIM), every one of `scopes` (scope / scp); failing = 403. */
const AuthEntry = Type.Union([
  AuthPolicy,
  Type.Object(
    {
      policy: AuthPolicy,
      roles: Type.Optional(Type.Array(ClaimValue, { minItems: 1, maxItems: 50 })),
      scopes: Type.Optional(Type.Array(ClaimValue, { minItems: 1, maxItems: 50 })),
    },
    { additionalProperties: false },
  ),
])

export type AuthPolicy = Static<typeof AuthPolicy>

/** A route's token policy, resolved. */
export interface RouteAuth {
  policy: Exclude<AuthPolicy, 'off'>
  /** Any one of these roles is needed. */
  roles?: string[]
  /** Every one of these scopes is needed. */
  scopes?: string[]
}

const RouteEntry = Type.Object(
  {
    name: Name,
    prefix: Type.String({ pattern: '^/([A-Za-z0-9._~-]+(/[A-Za-z0-9._~-]+)*)?$' }),
    legacy: Name,
    target: Type.Optional(Name),
    flag: Type.Optional(Type.String({ pattern: '^[A-Za-z0-9._-]{1,100}$' })),
    /** Shadow comparison (proxy/rollout/shadow/): a share of requests is also sent to the side the flag did not pick, and the answers compared. */
    shadow: Type.Optional(ShadowEntry),
    guard: Type.Optional(GuardEntry),
    parity: Type.Optional(ParityEntry),
    writer: Type.Optional(WriterEntry),
    auth: Type.Optional(AuthEntry),
  },
  { additionalProperties: false },
)

const RouteFile = Type.Object(
  {
    $comment: Type.Optional(Type.String()),
    upstreams: Type.Array(UpstreamEntry, { minItems: 1 }),
    routes: Type.Array(RouteEntry, { minItems: 1 }),
  },
  { additionalProperties: false },
)

export type RouteFile = Static<typeof RouteFile>
export type RouteEntry = Static<typeof RouteEntry>

export interface Upstream {
  name: string
  /** Resolved, without a trailing slash. */
  url: string
  healthPath: string
  /** Per-upstream overrides of the pool and breaker defaults (app.ts merges them). */
  pool: Partial<PoolOptions>
  breaker: Partial<BreakerOptions>
}

export interface Route {
  name: string
  prefix: string
  legacy: Upstream
  /** Absent: the route always goes to `legacy`. */
  target?: Upstream
  flag?: string
  /** Shadow comparison settings at start (routes with a target only). */
  shadow?: ShadowEntry
  /** Opt-in: with no ramp running, a breach of these limits sends the rollout back to 0 %. */
  guard?: StandingGuard
  /** Data parity of the two sides' stores (proxy/rollout/parity/). */
  parity?: { path: string; intervalSeconds: number; buckets: number; timeoutSeconds: number }
  /** The stores decide who writes (the target owns its data): writes are handed over through them. */
  writer?: { path: string; conflictsPath: string }
  /** Tokens verified at the edge (proxy/auth/); absent = off: nothing is asked, the client's identity headers are passed on. */
  auth?: RouteAuth
}

export interface StandingGuard {
  intervalSeconds: number
  limits: GuardLimits
}

/** Default window of a standing guard. */
export const GUARD_INTERVAL_SECONDS = 60

export interface RouteMap {
  upstreams: Upstream[]
  routes: Route[]
}

type Env = Record<string, string | undefined>

/** Paths the proxy answers itself; a route may not claim them. */
export const RESERVED_PATHS = ['/health', '/ready', '/metrics', '/admin', '/internal']

export function readRouteFile(file: string): unknown {
  try {
    return JSON.parse(readFileSync(file, 'utf8'))
  } catch (error) {
    throw new ConfigError(`route map ${file}: ${(error as Error).message}`)
  }
}

/** Reads, validates and resolves a route map file; URLs from variables are read from `source`. */
export function loadRouteMap(file: string, source: Env = process.env): RouteMap {
  return parseRouteMap(readRouteFile(file), source, `route map ${file}`)
}

/** The environment variables a route map reads (for ENV_VARS and the deployment checks). */
export function routeMapEnvVars(raw: unknown): string[] {
  const upstreams = (raw as Partial<RouteFile> | undefined)?.upstreams
  if (!Array.isArray(upstreams)) return []
  return upstreams.flatMap((u) => (typeof u?.url === 'object' && u.url !== null && typeof u.url.env === 'string' ? [u.url.env] : []))
}

export function parseRouteMap(raw: unknown, source: Env = process.env, where = 'route map'): RouteMap {
  const problems: string[] = []
  for (const error of Value.Errors(RouteFile, raw)) {
    problems.push(`${error.path || '/'}: ${error.message}${error.value !== undefined && typeof error.value !== 'object' ? ` (got ${JSON.stringify(error.value)})` : ''}`)
    if (problems.length >= 5) break
  }
  if (problems.length) throw new ConfigError(`${where} is invalid: ${problems.join('; ')}`)
  const file = raw as RouteFile

  const declared = new Map<string, Upstream>()
  file.upstreams.forEach((entry, i) => {
    const at = `/upstreams/${i}`
    if (declared.has(entry.name)) problems.push(`${at}/name: duplicate upstream name "${entry.name}"`)
    let url = ''
    try {
      url = resolveUrl(entry.url, `${at}/url`, source)
    } catch (error) {
      problems.push((error as Error).message)
    }
    declared.set(entry.name, { name: entry.name, url: url.replace(/\/+$/, ''), healthPath: entry.health ?? '/health', pool: { ...entry.pool }, breaker: { ...entry.breaker } })
  })

  const known = [...declared.keys()]
  const upstream = (name: string, at: string): Upstream => {
    const found = declared.get(name)
    if (!found) problems.push(`${at}: unknown upstream "${name}" (declared: ${known.join(', ')})`)
    return found ?? { name, url: '', healthPath: '/health', pool: {}, breaker: {} }
  }
  const seenNames = new Set<string>()
  const seenPrefixes = new Set<string>()
  const used = new Set<string>()
  const routes = file.routes.map((entry, i): Route => {
    const at = `/routes/${i}`
    if (seenNames.has(entry.name)) problems.push(`${at}/name: duplicate route name "${entry.name}"`)
    if (seenPrefixes.has(entry.prefix)) problems.push(`${at}/prefix: duplicate prefix "${entry.prefix}"`)
    seenNames.add(entry.name)
    seenPrefixes.add(entry.prefix)
    if (RESERVED_PATHS.some((p) => entry.prefix === p || entry.prefix.startsWith(`${p}/`))) {
      problems.push(`${at}/prefix: "${entry.prefix}" is answered by the proxy itself (${RESERVED_PATHS.join(', ')})`)
    }
    if ((entry.target === undefined) !== (entry.flag === undefined)) {
      problems.push(`${at}: "target" and "flag" go together (a split needs both)`)
    }
    if (entry.target !== undefined && entry.target === entry.legacy) problems.push(`${at}/target: same upstream as legacy`)
    if (entry.shadow && entry.target === undefined) problems.push(`${at}/shadow: a route without a target has nothing to compare with`)
    if (entry.shadow) problems.push(...shadowProblems(entry.shadow, `${at}/shadow`))
    if (entry.guard && entry.target === undefined) problems.push(`${at}/guard: only a split route (with "target" and "flag") can be guarded`)
    if (entry.parity && entry.target === undefined) problems.push(`${at}/parity: only a split route has two stores to compare`)
    if (entry.writer && entry.target === undefined) problems.push(`${at}/writer: only a split route has two stores to hand writes between`)
    used.add(entry.legacy)
    if (entry.target) used.add(entry.target)
    return {
      name: entry.name,
      prefix: entry.prefix,
      legacy: upstream(entry.legacy, `${at}/legacy`),
      target: entry.target === undefined ? undefined : upstream(entry.target, `${at}/target`),
      flag: entry.flag,
      ...(entry.shadow ? { shadow: entry.shadow } : {}),
      ...(entry.guard ? { guard: standingGuard(entry.guard) } : {}),
      ...(entry.parity ? { parity: { intervalSeconds: 60, buckets: 64, timeoutSeconds: 30, ...entry.parity } } : {}),
      ...(entry.writer ? { writer: { path: '/internal/writer', conflictsPath: '/internal/conflicts', ...entry.writer } } : {}),
      ...routeAuth(entry.auth),
    }
  })
  known.forEach((name, i) => {
    if (!used.has(name)) problems.push(`/upstreams/${i}: upstream "${name}" is not used by any route`)
  })
  if (!seenPrefixes.has('/')) problems.push('routes: a catch-all route with prefix "/" is required (everything else goes somewhere)')
  if (problems.length) throw new ConfigError(`${where} is invalid: ${problems.join('; ')}`)
  return { upstreams: [...declared.values()], routes }
}

function routeAuth(entry: Static<typeof AuthEntry> | undefined): { auth?: RouteAuth } {
  const { policy, ...rules } = typeof entry === 'string' || entry === undefined ? { policy: entry ?? 'off' } : entry
  if (policy === 'off') return {}
  return { auth: { policy, ...rules } }
}

function standingGuard(entry: Static<typeof GuardEntry>): StandingGuard {
  const { intervalSeconds = GUARD_INTERVAL_SECONDS, ...limits } = entry
  return { intervalSeconds, limits: { ...DEFAULT_LIMITS, ...limits } }
}

function resolveUrl(ref: Static<typeof UrlRef>, at: string, source: Env): string {
  const check = (name: string, fallback?: string) => env.url(name, fallback, '', ['http', 'https'])
  if (typeof ref === 'string') return check(at).parse(ref, at)
  const raw = source[ref.env]
  if ((raw === undefined || raw === '') && ref.default === undefined) throw new ConfigError(`${at}: ${ref.env} is required (the route map gives no default)`)
  // A bad value names the variable (that is what the operator sets); a bad default names the entry.
  return raw === undefined || raw === '' ? check(`${at}/default`).parse(ref.default, `${at}/default`) : check(ref.env).parse(raw, ref.env)
}

/** The route a path belongs to: longest prefix on a segment boundary. For explain and tests; the hot path uses Fastify's router. */
export function matchRoute(routes: readonly Route[], path: string): Route {
  let best: Route | undefined
  for (const route of routes) {
    const p = route.prefix
    const hit = p === '/' || path === p || path.startsWith(`${p}/`)
    if (hit && (!best || p.length > best.prefix.length)) best = route
  }
  return best!
}
