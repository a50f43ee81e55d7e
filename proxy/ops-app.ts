// The operators' listener (ADMIN_HOST:ADMIN_PORT, default 127.0.0.1:9000, or ADMIN_SOCKET): the
// admin API and console, /metrics, /documentation/json and the detailed /ready, apart from the
// public listener, as Envoy keeps its admin interface. Reach it from inside only: loopback, a
// Unix socket, `kubectl port-forward`, Prometheus in the cluster. Every answer carries
// `X-Content-Type-Options: nosniff` and, unless a console file says otherwise, `Cache-Control:
// no-store`. Never listens (server.ts does).
import type { FastifyInstance } from 'fastify'
import type { Registry } from 'prom-client'
import { createHttpApp } from '../lib/http/create-app.ts'
import { httpMetrics } from '../lib/http/metrics.ts'
import type { Logger } from '../lib/logger.ts'
import { adminRoutes, reserveAdminNamespace, type AdminRoutesOptions } from './admin/admin-routes.ts'
import { consoleRoutes } from './admin/console-routes.ts'
import { opsRoutes, type Readiness } from './admin/ops-routes.ts'
import type { ProxyConfig } from './config.ts'
import type { Tracing } from '../lib/tracing/tracing.ts'
import { clientLimits } from './edge/client-limits.ts'
import { renderedAtMostEvery } from './observability/metrics-cache.ts'

export interface OpsAppParts {
  logger: Logger
  registry: Registry
  /** What GET /metrics renders (default: the registry's text); rendered at most once per METRICS_MIN_INTERVAL_MS. */
  renderMetrics?: (registry: Registry) => () => Promise<string>
  readiness: () => Promise<Readiness>
  /** The admin API and console; absent = no admin token, /admin is a 404. */
  admin?: AdminRoutesOptions
  /** Tracing on: an operator's call continues the caller's trace (a rollout change keeps its trace id in the ledger). */
  tracing?: Tracing
}

/** Connections the operators' listener keeps open at once: a handful of tabs, scrapers and scripts. */
const OPS_MAX_CONNECTIONS = 256

export async function buildOpsApp(config: ProxyConfig, parts: OpsAppParts): Promise<FastifyInstance> {
  const app = createHttpApp({
    logger: parts.logger.child({ listener: 'operators' }),
    tracing: parts.tracing,
    bodyLimitBytes: config.bodyLimitBytes,
    errorCodes: true,
    api: { title: 'CinemaAbyss proxy', description: "The strangler-fig edge's operators' listener: its health, metrics and admin API. Clients call the public listener, where every /api/* request is forwarded to the monolith or an extracted service (see their documents)." },
    // No trusted proxies: the address is the peer's own (the login back-off's key).
    server: clientLimits(config),
  })
  app.server.maxConnections = OPS_MAX_CONNECTIONS
  app.addHook('onSend', (_request, reply, payload, done) => {
    reply.header('x-content-type-options', 'nosniff')
    if (reply.getHeader('cache-control') === undefined) reply.header('cache-control', 'no-store')
    done(null, payload)
  })
  const render = parts.renderMetrics?.(parts.registry) ?? (() => parts.registry.metrics())
  await app.register(httpMetrics, { registry: parts.registry, countRequests: false, render: () => (config.metricsMinIntervalMs > 0 ? renderedAtMostEvery(render, config.metricsMinIntervalMs) : render) })
  await app.register(opsRoutes, { readiness: parts.readiness, detailed: true })
  if (parts.admin) {
    await app.register(adminRoutes, parts.admin)
    await app.register(consoleRoutes)
  } else reserveAdminNamespace(app)
  return app
}
