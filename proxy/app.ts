// The strangler-fig edge proxy: one URL for clients; each route-map prefix goes to its legacy
// upstream or, for the share of users its flag selects, to the new service — with breakers,
// legacy fallback, metrics, rate limiting and an admin API. Two apps: the public listener's
// (the routes, a bare /health and /ready) and the operators' (ops-app.ts: admin API, console,
// /metrics, /documentation/json, the detailed /ready). Never listens (server.ts does).
import { randomBytes } from 'node:crypto'
import { dirname, join } from 'node:path'
import type { FastifyInstance } from 'fastify'
import type { Registry } from 'prom-client'
import { createHttpApp } from '../lib/http/create-app.ts'
import type { Logger } from '../lib/logger.ts'
import type { Redis } from '../lib/redis.ts'
import { adminActorOf } from './admin/admin-routes.ts'
import type { ProxyConfig } from './config.ts'
import { clientLimits } from './edge/client-limits.ts'
import { edgeGuards } from './edge/edge-guards.ts'
import { trustFunction } from './edge/trust-proxy.ts'
import { routeUpgrades } from './forward/websocket.ts'
import type { FlagSource } from './flags/flag-source.ts'
import { createFlagSource } from './flags/flag-sources.ts'
import { createLedger } from './rollout/ledger.ts'
import { createMetrics } from './observability/metrics.ts'
import { createReadiness, opsRoutes } from './admin/ops-routes.ts'
import { buildOpsApp } from './ops-app.ts'
import { createParityMonitor } from './rollout/parity/parity-monitor.ts'
import { createStages } from './rollout/stages.ts'
import { createRecentWrites } from './routing/recent-writes.ts'
import { createStoreWriters } from './rollout/store-writers.ts'
import { proxyRoutes } from './proxy-routes.ts'
import { localCoordination, redisCoordination } from './rollout/ramp/coordination.ts'
import { createRampController } from './rollout/ramp/controller.ts'
import { createTrafficRecorder } from './rollout/ramp/traffic.ts'
import { registerRateLimit } from './edge/rate-limit.ts'
import { createRolloutChanges } from './rollout/rollout-changes.ts'
import { ShadowComparisons } from './rollout/shadow/shadow.ts'
import { closeUpstreams, createUpstreams, upstreamDefaults } from './forward/upstreams.ts'
import { createTrafficHistory } from './admin/traffic-history.ts'
import type { Tracing } from '../lib/tracing/tracing.ts'
import { createProxyTracing } from './forward/tracing.ts'
import { createTokenVerifier } from './auth/token-verifier.ts'
import { createRouteAuth } from './auth/route-auth.ts'

export interface ProxyDeps {
  logger: Logger
  /** Shared rate-limit counters and the ledger stream; absent = in-process counters, the ledger file. Owned by the caller. */
  redis?: Redis
  /** Absent = built from config (Unleash or the flags file) and closed with the app. */
  flags?: FlagSource
  /** What GET /metrics answers (default: this process's registry); proxy/workers.ts sums the workers'. */
  renderMetrics?: (registry: Registry) => () => Promise<string>
  /** Tracing on (lib/tracing/, proxy/forward/tracing.ts). */
  tracing?: Tracing
}

/** The proxy's two listeners' apps. Closing `app` closes `ops` first (and then everything the proxy holds). */
export interface ProxyApps {
  /** The public listener: the routes, a bare /health and /ready; nothing of the operators'. */
  app: FastifyInstance
  /** The operators' listener (ops-app.ts). */
  ops: FastifyInstance
}

export async function buildApp(config: ProxyConfig, deps: ProxyDeps): Promise<ProxyApps> {
  const { routes } = config.routeMap
  const metrics = createMetrics()
  // A measurement switch (npm run bench prices each feature): never set in production.
  const off = new Set(config.featuresOff)
  if (off.size > 0) deps.logger.warn({ featuresOff: [...off] }, 'FEATURES_OFF: per-request features switched off for a measurement')
  const ownsFlags = !deps.flags
  const flags = deps.flags ?? (await createFlagSource(config, deps.logger, deps.redis))
  const upstreams = createUpstreams(config.routeMap.upstreams, { ...upstreamDefaults(config), breakers: !off.has('breaker') }, metrics, deps.logger)
  const tracing = deps.tracing && createProxyTracing(deps.tracing, { flags, upstreams }) // TRACING

  // Rollout gauges and flag-source health follow every change of the flags.
  const publishFlags = () => {
    const status = flags.status()
    metrics.rollout.reset()
    for (const route of routes) {
      if (!route.flag) continue
      const state = flags.state(route.flag)
      metrics.rollout.labels(route.name, route.flag, state.source).set(state.percent ?? -1)
    }
    metrics.flagSourceUp.reset()
    metrics.flagSourceUp.labels(status.kind).set(status.healthy ? 1 : 0)
    metrics.flagsLoaded.set(status.loaded ? 1 : 0)
    if (status.lastSuccessAt) metrics.flagSourceLastSuccess.labels(status.kind).set(Date.parse(status.lastSuccessAt) / 1000)
  }
  flags.onChange(publishFlags)
  publishFlags()

  // Every rollout change — made through the proxy or noticed in the flag source — goes to the ledger.
  const ledger = createLedger(
    // A claimed change stays claimed while every replica's Unleash fetch can still bring it in.
    { maxEntries: config.ledgerMaxEntries, redisKey: config.ledgerRedisKey, file: config.ledgerFile, claimTtlMs: Math.max(60_000, 6 * config.unleashRefreshIntervalMs) },
    { logger: deps.logger, redis: deps.redis, onStoreError: () => metrics.ledgerStoreErrors.inc(), traceId: tracing?.activeTraceId },
  )
  const rolloutChanges = createRolloutChanges({ routes, flags, ledger, logger: deps.logger })
  const { changeRollout } = rolloutChanges

  // Data parity of split routes with two stores: periodic checks and the migration_* gauges.
  const parity = createParityMonitor({ routes, registry: metrics.registry, logger: deps.logger, internalToken: config.internalToken })
  // The writer side and retirement of split routes, guarded by parity; read-your-writes after a write.
  // Who writes a route whose stores decide it: each replica keeps them in view and asks for the handover the flags want.
  const storeWriters = createStoreWriters({ routes, flags, ledger, metrics, logger: deps.logger, checkMs: config.storeWritersCheckMs, timeoutMs: Math.min(config.upstreamResponseTimeoutMs, 5_000), quietMs: Math.max(config.writesHandoverQuietMs, 3 * config.unleashRefreshIntervalMs), internalToken: config.internalToken })
  const stages = createStages({
    writers: storeWriters,
    flags,
    parity,
    ledger,
    metrics,
    logger: deps.logger,
    limits: { maxLagSeconds: config.writesSwitchMaxLagSeconds, holdMs: config.writesSwitchHoldMs, retireWindowSeconds: config.retireWindowSeconds },
  })
  const recentWrites =
    config.readYourWritesWindowMs > 0
      ? createRecentWrites(
          { windowMs: config.readYourWritesWindowMs, keyPrefix: config.readYourWritesKeyPrefix, maxLocal: 100_000 },
          { redis: deps.redis, logger: deps.logger, caughtUpAt: (route) => stages.caughtUpAt(route) },
        )
      : undefined

  const trust = trustFunction(config.trustProxy)
  // Shadow comparison: a share of requests also goes to the side the flag did not pick.
  const shadow = new ShadowComparisons(
    { maxInFlight: config.shadowMaxInFlight, timeoutMs: config.shadowTimeoutMs, maxBodyBytes: config.shadowMaxBodyBytes },
    { routes, upstreams, metrics, trust, logger: deps.logger, tracing, ledger },
  )

  // Guarded ramps: the traffic the guard judges, and the controller driving ramps and standing guards.
  const traffic = createTrafficRecorder(routes)
  const ramps = createRampController({
    routes,
    traffic,
    upstreams,
    flags,
    coordination: deps.redis
      ? redisCoordination({ redis: deps.redis, keyPrefix: config.rampKeyPrefix, leaseTtlMs: config.rampLeaseTtlMs })
      : localCoordination(join(dirname(config.flagsFile), 'ramps.json'), deps.logger),
    changeRollout,
    recordAction: (entry) => ledger.append(entry),
    readsMayGoBack: (route) => stages.readsMayGoBack(route),
    shadowTotals: (route) => shadow.totals(route),
    metrics,
    logger: deps.logger,
    tickMs: config.rampTickMs,
  })

  const app = createHttpApp({
    logger: deps.logger,
    tracing: deps.tracing,
    bodyLimitBytes: config.bodyLimitBytes,
    errorCodes: true,
    // The proxy sends INTERNAL_TOKEN (parity calls); its own /internal answers 404 (edge/internal-namespace.ts).
    guardInternal: false,
    accessLog: !off.has('access-log'),
    requestIds: !off.has('request-id'),
    // The document lists every admin path: it is the operators' listener's (ops-app.ts).
    openApi: false,
    accessLogFields: (request) => (request.proxyRoute === null ? {} : { route: request.proxyRoute, upstream: request.proxyUpstream, reason: request.proxyReason }),
    server: { ...clientLimits(config), trustProxy: trust },
  })
  app.server.maxConnections = config.clientMaxConnections
  edgeGuards(app)
  registerRateLimit(app, { max: off.has('rate-limit') ? 0 : config.rateLimitMax, windowMs: config.rateLimitWindowMs, keyPrefix: config.rateLimitKeyPrefix, syncIntervalMs: config.rateLimitSyncMs }, { redis: deps.redis, metrics, logger: deps.logger })
  const upgrades = routeUpgrades(app)

  const catchAll = routes.find((r) => r.prefix === '/')!
  // /admin/explain asks the proxied routes themselves; this secret tells them it is explain asking.
  const explainToken = randomBytes(24).toString('base64url')
  const readiness = createReadiness({ flags, legacy: upstreams.get(catchAll.legacy.name)!, probeTimeoutMs: Math.min(config.upstreamResponseTimeoutMs, 2_000) }, app.log)
  await app.register(opsRoutes, { readiness, detailed: false })
  // /admin, /internal, /metrics, /documentation: 404 here in every spelling (edge-guards.ts).

  const history =
    config.adminTokens.length > 0
      ? await createTrafficHistory({ intervalMs: config.adminHistoryIntervalMs, retentionMs: 3_600_000, rateWindowMs: 60_000 }, { routes, upstreams, flags, metrics, logger: deps.logger })
      : undefined
  if (off.has('console-history')) history?.stop()
  const auth = {
    tokens: config.adminTokens,
    rateLimitMax: config.adminRateLimitMax,
    rateLimitWindowMs: config.adminRateLimitWindowMs,
    failuresMax: config.adminAuthFailuresMax,
    backoffMs: config.adminAuthBackoffMs,
    metrics,
  }
  const ops = await buildOpsApp(config, {
    logger: deps.logger,
    tracing: deps.tracing,
    registry: metrics.registry,
    renderMetrics: deps.renderMetrics,
    readiness,
    admin: history && {
      auth,
      publicApp: app,
      routes,
      upstreams,
      flags,
      changeRollout,
      ledger,
      allowBackendOverride: config.allowBackendOverride,
      shadow,
      ramps: { ramps, actorOf: adminActorOf },
      history,
      explainToken,
      parity,
      stages,
      storeWriters,
      readYourWrites: metrics.readYourWrites,
    },
  })
  let opsClosed = false
  ops.addHook('onClose', async () => {
    opsClosed = true
    history?.stop()
  })
  // Tokens at the edge: only when a route asks for them (config.ts refuses a route map that asks without AUTH_ISSUERS).
  const routeAuth = routes.some((r) => r.auth) ? edgeTokens(config, metrics, deps.logger) : undefined
  const side = { stickyCookie: config.stickyCookie, allowBackendOverride: config.allowBackendOverride }
  await app.register(proxyRoutes, {
    settings: { ...side, bodyLimitBytes: config.bodyLimitBytes, bodyIdleTimeoutMs: config.clientBodyTimeoutMs, retryAfterSeconds: config.retryAfterSeconds, writesHandoverWaitMs: config.writesHandoverWaitMs },
    routes,
    upstreams,
    flags,
    metrics,
    trust,
    shadow: off.has('shadow-selection') ? undefined : shadow,
    traffic: off.has('ramp-traffic') ? undefined : traffic,
    upgrades,
    explainToken,
    tracing,
    recentWrites,
    storeWriters,
    featuresOff: off,
    routeAuth,
  })

  app.addHook('onClose', async () => {
    storeWriters.stop()
    // The operators' calls in flight finish first: they use what is released below.
    if (!opsClosed) await ops.close()
    parity.stop()
    await ramps.close()
    shadow.close()
    await closeUpstreams(upstreams)
    if (ownsFlags) await flags.close()
    await rolloutChanges.settled()
  })
  ramps.start()
  storeWriters.start()
  deps.logger.info(
    { routes: routes.map((r) => ({ name: r.name, prefix: r.prefix, legacy: r.legacy.name, target: r.target?.name, flag: r.flag })), flags: flags.status().kind, admin: config.adminTokens.map((t) => t.name), ledgerStore: ledger.location },
    'proxy configured',
  )
  return { app, ops }
}

/** The verifier of the trusted issuers' tokens and the routes' policies; the key sets' staleness as a gauge. */
function edgeTokens(config: ProxyConfig, metrics: ReturnType<typeof createMetrics>, logger: Logger) {
  const verifier = createTokenVerifier(config.auth, { logger, fetched: (issuer, result) => metrics.authJwksFetches.labels(issuer, result).inc() })
  for (const { issuer } of config.auth.issuers) {
    metrics.authJwksFetches.labels(issuer, 'error').inc(0)
    metrics.authJwksStale.labels(issuer).set(0)
  }
  // Read at each scrape: no timer of its own.
  metrics.onAuthStalenessRead(() => {
    for (const status of verifier.issuers()) metrics.authJwksStale.labels(status.issuer).set(status.stale || (status.keys === 0 && status.lastFailureAt !== undefined) ? 1 : 0)
  })
  return createRouteAuth(config.auth, verifier, metrics)
}
