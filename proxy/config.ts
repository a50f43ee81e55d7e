// The edge proxy's configuration: the route map (its upstreams' URLs come from the variables
// it names — MONOLITH_URL, MOVIES_SERVICE_URL, EVENTS_SERVICE_URL in the shipped one), the flag
// sources, breaker and timeout defaults, rate limiting and the admin API.
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { ConfigError, env, envVarNames, parseEnv, serverEnv, type EnvField } from '../lib/config.ts'
import { loadRouteMap, readRouteFile, routeMapEnvVars, type RouteMap } from './model/route-map.ts'
import { trustProxyEnv } from './edge/trust-proxy.ts'
import { featuresOffEnv } from './model/features.ts'
import { DEFAULT_SYNC_INTERVAL_MS } from './edge/rate-limit-store.ts'
import { authEnv, authSettings } from './auth/auth-config.ts'
import { ADMIN_ROLES, DEFAULT_ADMIN_ROLE, type AdminRole } from './admin/admin-roles.ts'

const repoFile = (relative: string) => fileURLToPath(new URL(`../${relative}`, import.meta.url))
const SHIPPED_ROUTES = repoFile('proxy/routes.json')

function optionalPercent(name: string, description: string): EnvField<number | undefined> {
  return {
    names: [name],
    description,
    parse(raw, n) {
      if (raw === undefined || raw === '') return undefined
      if (!/^\d{1,3}$/.test(raw.trim()) || Number(raw) > 100) throw new ConfigError(`${n} must be an integer between 0 and 100, got "${raw}"`)
      return Number(raw)
    },
  }
}

/** One admin API credential: the name the ledger records as the actor, its bearer token and its role (admin/admin-roles.ts). */
export interface AdminToken {
  name: string
  token: string
  role: AdminRole
}

const ADMIN_NAME = /^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$/
export const MIN_ADMIN_TOKEN = 24
const MIN_DISTINCT_CHARACTERS = 10
// Tokens that ship in this repository's examples (compose, chart, docs) and the usual
// placeholders: anyone who read the repository knows them.
const KNOWN_TOKENS = new Set(['cinemaabyss-local-admin-token', 'change-me-proxy-admin-token'])
const PLACEHOLDER = /change[-_ ]?me|changeit|replace[-_ ]?me|placeholder|example|^(?:admin|secret|password|token|test|default)[-_]?(?:token|secret|password)?$/i

/**
 * Why `token` must not guard the admin API (a known placeholder, too short, too few different
 * characters), or undefined. Never echoes the token.
 */
export function weakAdminToken(token: string): string | undefined {
  if (KNOWN_TOKENS.has(token.toLowerCase()) || PLACEHOLDER.test(token)) return 'is a known placeholder: generate one, e.g. openssl rand -base64 32'
  if (token.length < MIN_ADMIN_TOKEN) return `must be at least ${MIN_ADMIN_TOKEN} characters (e.g. openssl rand -base64 32)`
  if (new Set(token).size < MIN_DISTINCT_CHARACTERS) return `must have at least ${MIN_DISTINCT_CHARACTERS} different characters (e.g. openssl rand -base64 32)`
  return undefined
}

/**
 * ADMIN_TOKENS=name:token[:role],name2:token2[:role] — each part named, no empty part, no name or
 * token twice; the role (viewer, operator, owner) defaults to owner (what every token could do before).
 */
const namedAdminTokens: EnvField<AdminToken[]> = {
  names: ['ADMIN_TOKENS'],
  description: `named admin API tokens, name:token[:role],name2:token2[:role] (the ledger records the name; role among ${ADMIN_ROLES.join(', ')}, default ${DEFAULT_ADMIN_ROLE}); besides ADMIN_TOKEN ("admin", ${DEFAULT_ADMIN_ROLE})`,
  parse(raw, n) {
    if (raw === undefined || raw.trim() === '') return []
    const tokens = raw.split(',').map((part, i): AdminToken => {
      const at = part.indexOf(':')
      const name = at < 0 ? '' : part.slice(0, at).trim()
      let token = at < 0 ? '' : part.slice(at + 1).trim()
      let role: AdminRole = DEFAULT_ADMIN_ROLE
      const last = token.lastIndexOf(':')
      if (last >= 0 && (ADMIN_ROLES as readonly string[]).includes(token.slice(last + 1).trim())) {
        role = token.slice(last + 1).trim() as AdminRole
        token = token.slice(0, last).trim()
      }
      // Never echo a token: the problem names the part by position and name only.
      if (!name || !token) throw new ConfigError(`${n} part ${i + 1} must be name:token (empty name or token)`)
      if (!ADMIN_NAME.test(name)) throw new ConfigError(`${n} part ${i + 1}: name "${name.slice(0, 64)}" must be letters, digits, . _ @ - (at most 64)`)
      const weak = weakAdminToken(token)
      if (weak) throw new ConfigError(`${n}: the token of "${name}" ${weak}`)
      return { name, token, role }
    })
    const names = tokens.map((t) => t.name)
    const twice = names.find((name, i) => names.indexOf(name) !== i)
    if (twice) throw new ConfigError(`${n}: the name "${twice}" appears twice`)
    if (new Set(tokens.map((t) => t.token)).size !== tokens.length) throw new ConfigError(`${n}: two names share one token`)
    return tokens
  },
}

/** The backend token's environment (`<project>:<environment>.<secret>`), where Unleash writes go by default. */
const tokenEnvironment = (token: string | undefined) => /^[^:]+:([^.*:]+)\./.exec(token ?? '')?.[1]

const spec = {
  port: env.port('PORT', 8000),
  ...serverEnv,
  workers: env.int('PROXY_WORKERS', 1, { min: 1, max: 64, description: 'proxy processes on this host (node:cluster); 1 = a single process' }),
  routesFile: env.string('ROUTES_FILE', SHIPPED_ROUTES, 'the route map: upstreams and routes (validated at start)'),

  // Flags: Unleash when UNLEASH_URL is set, else the local file; the legacy pair pins the movies flag.
  // GRADUAL_MIGRATION is three-valued: unset means "the flags decide", true/false pins the movies route.
  gradualMigration: env.optionalBool('GRADUAL_MIGRATION', 'legacy switch of the movies split; set = overrides the flags file'),
  moviesMigrationPercent: optionalPercent('MOVIES_MIGRATION_PERCENT', 'legacy: percent of movie users sent to the movies service'),
  flagsFile: env.string('FLAGS_FILE', repoFile('flags/flags.json'), 'flag definitions (Unleash export format), reloaded on change'),
  unleashUrl: env.optionalUrl('UNLEASH_URL', 'Unleash API, e.g. http://unleash:4242/api; set = flags come from Unleash', ['http', 'https']),
  unleashApiToken: env.optionalString('UNLEASH_API_TOKEN', 'Unleash backend (client) token'),
  unleashAppName: env.string('UNLEASH_APP_NAME', 'cinemaabyss-proxy', 'appName reported to Unleash'),
  flagsLastKnownKey: env.string('FLAGS_LAST_KNOWN_KEY', 'cinemaabyss:flags:last-known', 'Redis key of the last flag state fetched from Unleash (a replica starting with Unleash down routes by it)'),
  unleashRefreshIntervalMs: env.int('UNLEASH_REFRESH_INTERVAL_MS', 10_000, { min: 100, description: 'how often flags are fetched from Unleash' }),
  unleashTimeoutMs: env.int('UNLEASH_TIMEOUT_MS', 5_000, { min: 1, description: 'bound on each Unleash fetch and Admin API call' }),
  // Rollout changes through the proxy (admin API, ramps) in Unleash mode go to the Unleash Admin API.
  unleashAdminToken: env.optionalString('UNLEASH_ADMIN_TOKEN', 'Unleash admin API token; set = rollout changes through the proxy are written to Unleash'),
  unleashAdminUrl: env.optionalUrl('UNLEASH_ADMIN_URL', 'Unleash Admin API base; default UNLEASH_URL + /admin', ['http', 'https']),
  unleashProject: env.string('UNLEASH_PROJECT', 'default', 'Unleash project of the route flags (Admin API writes)'),
  unleashEnvironment: env.optionalString('UNLEASH_ENVIRONMENT', 'Unleash environment the proxy writes rollouts in; default the one of UNLEASH_API_TOKEN, else development'),

  // Stickiness and QA override.
  stickyCookie: env.string('STICKY_COOKIE_NAME', 'cinemaabyss_uid', 'cookie carrying the anonymous client id'),
  allowBackendOverride: env.bool('ALLOW_BACKEND_OVERRIDE', false, 'honour X-Backend: legacy|target (QA only)'),

  // Upstream calls and breakers.
  upstreamConnectTimeoutMs: env.int('UPSTREAM_CONNECT_TIMEOUT_MS', 2_000, { min: 1, description: 'TCP connect timeout to an upstream' }),
  upstreamResponseTimeoutMs: env.int('UPSTREAM_RESPONSE_TIMEOUT_MS', 10_000, { min: 1, description: 'wait for the response headers of an upstream' }),
  upstreamStreamIdleTimeoutMs: env.int('UPSTREAM_STREAM_IDLE_TIMEOUT_MS', 300_000, { min: 1, description: 'longest quiet gap inside a streamed response body (SSE, long poll, download)' }),
  upstreamConnections: env.int('UPSTREAM_CONNECTIONS', 128, { min: 1, description: 'keep-alive connections per upstream' }),
  breakerVolumeThreshold: env.int('BREAKER_VOLUME_THRESHOLD', 10, { min: 1, description: 'calls in the window before a breaker may open' }),
  breakerErrorPercent: env.int('BREAKER_ERROR_PERCENT', 50, { min: 1, max: 100, description: 'failure percentage that opens a breaker' }),
  breakerResetTimeoutMs: env.int('BREAKER_RESET_TIMEOUT_MS', 10_000, { min: 1, description: 'open time before a breaker lets one trial call through' }),
  breakerConsecutiveFailures: env.int('BREAKER_CONSECUTIVE_FAILURES', 5, { min: 0, description: 'consecutive failures that open a breaker whatever the window says; 0 = off' }),
  breakerWindowMs: env.int('BREAKER_WINDOW_MS', 10_000, { min: 100, description: 'rolling window of the failure statistics' }),
  breakerSlowCallMs: env.int('BREAKER_SLOW_CALL_MS', 1_000, { min: 1, description: 'a call answering after this long is slow; a client leaving after it counts the call as a slow failure' }),
  breakerSlowCallPercent: env.int('BREAKER_SLOW_CALL_PERCENT', 50, { min: 1, max: 100, description: 'share of slow calls in the window that opens a breaker' }),
  retryAfterSeconds: env.int('RETRY_AFTER_SECONDS', 5, { min: 1, description: 'Retry-After sent with 503 when an upstream is unavailable' }),

  // Shadow comparison (proxy/rollout/shadow/; per-route settings in the route map).
  shadowMaxInFlight: env.int('SHADOW_MAX_IN_FLIGHT', 32, { min: 1, description: 'shadow copies in flight at once; beyond it a copy is dropped and counted' }),
  shadowTimeoutMs: env.int('SHADOW_TIMEOUT_MS', 5_000, { min: 1, description: 'bound on each shadow copy' }),
  shadowMaxBodyBytes: env.int('SHADOW_MAX_BODY_BYTES', 262_144, { min: 0, description: 'largest answer body compared; larger ones are counted as not compared' }),

  // Client connections (slowloris, stalled and vanishing clients).
  clientBodyTimeoutMs: env.int('CLIENT_BODY_TIMEOUT_MS', 30_000, { min: 1, description: 'longest pause between two reads of a request body; then 408' }),
  clientHeadersTimeoutMs: env.int('CLIENT_HEADERS_TIMEOUT_MS', 10_000, { min: 1, description: 'time a client has to send the request headers' }),
  clientRequestTimeoutMs: env.int('CLIENT_REQUEST_TIMEOUT_MS', 120_000, { min: 1, description: 'time a client has to send the whole request (headers and body)' }),
  clientKeepAliveTimeoutMs: env.int('CLIENT_KEEPALIVE_TIMEOUT_MS', 72_000, { min: 1, description: 'idle client connections are closed after this' }),
  clientMaxConnections: env.int('CLIENT_MAX_CONNECTIONS', 1_024, { min: 1, description: 'open client connections per process; further ones are closed at once' }),

  // Rate limiting.
  rateLimitMax: env.int('RATE_LIMIT_MAX', 1_000, { min: 0, description: 'requests per client per window; 0 = no limit' }),
  rateLimitWindowMs: env.int('RATE_LIMIT_WINDOW_MS', 60_000, { min: 1, description: 'rate-limit window' }),
  rateLimitKeyPrefix: env.string('RATE_LIMIT_KEY_PREFIX', 'cinemaabyss:rl:', 'prefix of the Redis counters'),
  rateLimitSyncMs: env.int('RATE_LIMIT_SYNC_MS', DEFAULT_SYNC_INTERVAL_MS, {
    min: 1,
    max: 60_000,
    description: 'least time between two syncs of the Redis counters; requests never wait for Redis, and across replicas a client may pass the limit by what the others admitted in about this long',
  }),
  redisUrl: env.optionalUrl('REDIS_URL', 'shared rate-limit counters; unset = per-process counters', ['redis', 'rediss']),
  redisTimeoutMs: env.int('REDIS_TIMEOUT_MS', 100, { min: 1, description: 'bound on each Redis command; slower = the request passes' }),
  trustProxy: trustProxyEnv,

  adminToken: env.optionalString('ADMIN_TOKEN', 'enables /admin/* on the operators\' listener with Authorization: Bearer <token> (actor "admin" in the ledger) and the console at /admin/; at least 24 characters, no placeholder'),
  namedAdminTokens,
  // The operators' listener (proxy/ops-app.ts): /admin, the console, /metrics, /documentation/json, the detailed /ready.
  adminHost: env.string('ADMIN_HOST', '127.0.0.1', "interface of the operators' listener (admin API, console, metrics); keep it off the public network"),
  adminPort: env.port('ADMIN_PORT', 9000, "TCP port of the operators' listener"),
  adminSocket: env.optionalString('ADMIN_SOCKET', "a Unix socket path for the operators' listener instead of ADMIN_HOST:ADMIN_PORT (owner-only permissions)"),
  metricsMinIntervalMs: env.int('METRICS_MIN_INTERVAL_MS', 1_000, { min: 0, max: 60_000, description: 'least time between two renderings of /metrics; scrapes in between get the last one (0 = render every scrape)' }),
  adminRateLimitMax: env.int('ADMIN_RATE_LIMIT_MAX', 600, { min: 0, description: 'admin API calls per token per window (ADMIN_RATE_LIMIT_WINDOW_MS); 0 = no limit' }),
  adminRateLimitWindowMs: env.int('ADMIN_RATE_LIMIT_WINDOW_MS', 60_000, { min: 1, description: "window of the admin API's per-token limit" }),
  adminAuthFailuresMax: env.int('ADMIN_AUTH_FAILURES_MAX', 5, { min: 1, description: 'failed admin logins from one address before it must wait (ADMIN_AUTH_BACKOFF_MS, doubling each time)' }),
  adminAuthBackoffMs: env.int('ADMIN_AUTH_BACKOFF_MS', 5_000, { min: 1, description: 'first wait after ADMIN_AUTH_FAILURES_MAX failed admin logins from one address; doubles on each further round, at most 15 min' }),

  // The rollout ledger (proxy/rollout/ledger.ts): a Redis stream when REDIS_URL is set, else a JSON-lines file.
  ledgerFile: env.optionalString('LEDGER_FILE', 'the ledger file without Redis; default rollout-ledger.jsonl beside FLAGS_FILE'),
  ledgerMaxEntries: env.int('LEDGER_MAX_ENTRIES', 10_000, { min: 10, max: 1_000_000, description: 'entries the ledger keeps (stream MAXLEN ~; the file rotates once at this size)' }),
  ledgerRedisKey: env.string('LEDGER_REDIS_KEY', 'cinemaabyss:ledger', 'Redis stream of the ledger'),

  // Guarded ramps (proxy/rollout/ramp): with REDIS_URL a lease per route and the ramp state live in Redis.
  rampKeyPrefix: env.string('RAMP_KEY_PREFIX', 'cinemaabyss:ramp:', 'prefix of the ramp leases and state in Redis'),
  rampLeaseTtlMs: env.int('RAMP_LEASE_TTL_MS', 15_000, { min: 1_000, description: "a ramp lease's expiry: a replica that stops without giving it up is taken over after this" }),
  rampTickMs: env.int('RAMP_TICK_MS', 1_000, { min: 100, description: 'how often the ramp controller judges its routes' }),
  // Stages of a migration (proxy/rollout/stages.ts, proxy/routing/recent-writes.ts).
  writesSwitchMaxLagSeconds: env.int('WRITES_SWITCH_MAX_LAG_SECONDS', 5, { min: 0, description: 'largest replication lag a switch of a route\'s writer side accepts (PUT /admin/routes/:name/writes; 409 above it unless forced)' }),
  writesSwitchHoldMs: env.int('WRITES_SWITCH_HOLD_MS', 10_000, { min: 1_000, description: "longest PUT /admin/routes/:name/writes waits for the stores' handover to finish before answering 202 (in progress)" }),
  writesHandoverWaitMs: env.int('WRITES_HANDOVER_WAIT_MS', 15_000, { min: 0, description: "longest a client's write waits for a store of its route that takes it (a handover in flight, a store catching up) before 503" }),
  writesHandoverQuietMs: env.int('WRITES_HANDOVER_QUIET_MS', 30_000, { min: 0, description: "after a handover of a route's writes, how long a replica whose flags did not change since asks for none (at least 3 Unleash refresh intervals): a replica that has not seen a switch yet never undoes it" }),
  storeWritersCheckMs: env.int('STORE_WRITERS_CHECK_MS', 500, { min: 50, description: "how often each replica compares the stores' writer of a route with its writer flag, and asks for the handover when they differ" }),
  retireWindowSeconds: env.int('RETIRE_WINDOW_SECONDS', 60, { min: 0, description: 'how long parity must have held at 0 before POST /admin/routes/:name/retire is accepted' }),
  readYourWritesWindowMs: env.int('READ_YOUR_WRITES_WINDOW_MS', 30_000, { min: 0, description: "longest time a client's reads follow its write to the writer side (shorter once a parity check finds the write on both stores); 0 = off" }),
  readYourWritesKeyPrefix: env.string('READ_YOUR_WRITES_KEY_PREFIX', 'cinemaabyss:ryw:', 'prefix of the read-your-writes marks in Redis'),
  featuresOff: featuresOffEnv,
  // Tokens verified at the edge on routes whose route-map entry has `auth` (proxy/auth/).
  ...authEnv,
  adminHistoryIntervalMs: env.int('ADMIN_HISTORY_INTERVAL_MS', 10_000, { min: 100, description: "how often the console's per-route history (the last hour, in memory) takes a point" }),
}

export type ProxyConfig = ReturnType<typeof loadConfig>
export const loadConfig = (source: Record<string, string | undefined> = process.env) => {
  // The route map reads its upstreams' variables from the same source; its problems and the
  // other variables' are reported together.
  let routeMap: RouteMap | undefined
  const problems: string[] = []
  try {
    routeMap = loadRouteMap(spec.routesFile.parse(source.ROUTES_FILE, 'ROUTES_FILE'), source)
  } catch (error) {
    problems.push((error as Error).message)
  }
  let parsed
  try {
    parsed = parseEnv(spec, source)
  } catch (error) {
    problems.push((error as Error).message)
  }
  if (!routeMap || !parsed) throw new ConfigError(problems.join('; '))
  const config = { ...parsed, routeMap }
  if (config.unleashUrl && !config.unleashApiToken) throw new ConfigError('invalid configuration: UNLEASH_API_TOKEN is required when UNLEASH_URL is set')
  if (config.clientHeadersTimeoutMs > config.clientRequestTimeoutMs) {
    throw new ConfigError('invalid configuration: CLIENT_HEADERS_TIMEOUT_MS must not be larger than CLIENT_REQUEST_TIMEOUT_MS')
  }
  if (config.rampTickMs * 2 > config.rampLeaseTtlMs) throw new ConfigError('invalid configuration: RAMP_LEASE_TTL_MS must be at least twice RAMP_TICK_MS (the holder renews its lease every tick)')
  const weakToken = config.adminToken === undefined ? undefined : weakAdminToken(config.adminToken)
  if (weakToken) throw new ConfigError(`invalid configuration: ADMIN_TOKEN ${weakToken}`)
  if (!config.adminSocket && config.adminPort !== 0 && config.adminPort === config.port) {
    throw new ConfigError("invalid configuration: ADMIN_PORT must differ from PORT (the operators' listener is a listener of its own)")
  }
  const adminTokens: AdminToken[] = [...(config.adminToken ? [{ name: 'admin', token: config.adminToken, role: DEFAULT_ADMIN_ROLE }] : []), ...config.namedAdminTokens]
  if (config.adminToken && config.namedAdminTokens.some((t) => t.name === 'admin' || t.token === config.adminToken)) {
    throw new ConfigError('invalid configuration: ADMIN_TOKENS repeats ADMIN_TOKEN (its name is "admin" and its token must differ)')
  }
  const auth = authSettings(config)
  const asking = routeMap.routes.filter((r) => r.auth)
  if (asking.length > 0 && auth.issuers.length === 0) {
    throw new ConfigError(`invalid configuration: AUTH_ISSUERS is required (route(s) ${asking.map((r) => r.name).join(', ')} ask for tokens)`)
  }
  const unleashAdminUrl = config.unleashAdminUrl ?? (config.unleashUrl ? `${config.unleashUrl.replace(/\/+$/, '')}/admin` : undefined)
  const unleashEnvironment = config.unleashEnvironment ?? tokenEnvironment(config.unleashApiToken) ?? 'development'
  const ledgerFile = config.ledgerFile ?? join(dirname(config.flagsFile), 'rollout-ledger.jsonl')
  return { ...config, adminTokens, unleashAdminUrl, unleashEnvironment, ledgerFile, auth }
}
/** What the proxy reads: its own variables and those the shipped route map names (a deployment with its own ROUTES_FILE adds that file's). */
export const ENV_VARS = [...envVarNames(spec), ...routeMapEnvVars(readRouteFile(SHIPPED_ROUTES))]
