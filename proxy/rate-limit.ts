// Per-client rate limiting (@fastify/rate-limit). With Redis the counters are shared by all
// proxy replicas; without, each process counts alone. A Redis failure lets the request through
// and is counted in proxy_rate_limit_store_errors_total: the limiter must never become the outage.
import type { FastifyInstance } from 'fastify'
import rateLimit from '@fastify/rate-limit'
import { HttpError } from '../lib/http/errors.ts'
import type { Logger } from '../lib/logger.ts'
import type { Redis } from '../lib/redis.ts'
import type { ProxyConfig } from './config.ts'
import type { ProxyMetrics } from './metrics.ts'
import { redisRateLimitStore } from './rate-limit-store.ts'

const EXEMPT = new Set(['/health', '/ready', '/metrics'])

export async function registerRateLimit(
  app: FastifyInstance,
  config: Pick<ProxyConfig, 'rateLimitMax' | 'rateLimitWindowMs' | 'rateLimitKeyPrefix'>,
  deps: { redis?: Redis; metrics: ProxyMetrics; logger: Logger },
): Promise<void> {
  if (config.rateLimitMax === 0) return
  let lastLogged = 0
  const onStoreError = (err: Error) => {
    deps.metrics.rateLimitStoreErrors.inc()
    if (Date.now() - lastLogged > 10_000) {
      lastLogged = Date.now()
      deps.logger.warn({ err: err.message }, 'rate-limit counters unavailable: requests pass unlimited')
    }
  }
  const store = deps.redis ? redisRateLimitStore({ redis: deps.redis, keyPrefix: config.rateLimitKeyPrefix, onError: onStoreError }) : undefined

  await app.register(rateLimit, {
    global: true,
    max: config.rateLimitMax,
    timeWindow: config.rateLimitWindowMs,
    store,
    skipOnError: true,
    // The client address as Fastify sees it under TRUST_PROXY (trust-proxy.ts): the same one sent upstream.
    keyGenerator: (request) => request.ip,
    allowList: (request) => EXEMPT.has(request.routeOptions.url ?? ''),
    onExceeded: () => deps.metrics.rateLimited.inc(),
    errorResponseBuilder: (_request, context) =>
      new HttpError(429, `rate limit exceeded: ${context.max} requests per ${Math.round(config.rateLimitWindowMs / 1000)} s; retry in ${Math.max(1, Math.ceil(context.ttl / 1000))} s`),
  })
}
