// Per-client rate limiting (@fastify/rate-limit). With Redis the counters are shared by all
// proxy replicas; without, each process counts alone. A Redis failure lets the request through
// and is counted in proxy_rate_limit_store_errors_total: the limiter must never become the outage.
import type { FastifyInstance } from 'fastify'
import rateLimit from '@fastify/rate-limit'
import { Type, type Static } from '@sinclair/typebox'
import { errors } from '../lib/errors.ts'
import type { Logger } from '../lib/logger.ts'
import type { Redis } from '../lib/redis.ts'
import type { ProxyMetrics } from './metrics.ts'
import { checkOptions } from './options.ts'
import { redisRateLimitStore } from './rate-limit-store.ts'

const EXEMPT = new Set(['/health', '/ready', '/metrics'])

export const RateLimitOptions = Type.Object(
  {
    /** Requests per client per window; 0 = no limit. */
    max: Type.Integer({ minimum: 0 }),
    windowMs: Type.Integer({ minimum: 1 }),
    /** Prefix of the Redis counters. */
    keyPrefix: Type.String(),
  },
  { additionalProperties: false },
)
export type RateLimitOptions = Static<typeof RateLimitOptions>

export async function registerRateLimit(app: FastifyInstance, options: RateLimitOptions, deps: { redis?: Redis; metrics: ProxyMetrics; logger: Logger }): Promise<void> {
  const config = checkOptions(RateLimitOptions, options, 'rate limit')
  if (config.max === 0) return
  let lastLogged = 0
  const onStoreError = (err: Error) => {
    deps.metrics.rateLimitStoreErrors.inc()
    if (Date.now() - lastLogged > 10_000) {
      lastLogged = Date.now()
      deps.logger.warn({ err: err.message }, 'rate-limit counters unavailable: requests pass unlimited')
    }
  }
  const store = deps.redis ? redisRateLimitStore({ redis: deps.redis, keyPrefix: config.keyPrefix, onError: onStoreError }) : undefined

  await app.register(rateLimit, {
    global: true,
    max: config.max,
    timeWindow: config.windowMs,
    store,
    skipOnError: true,
    // The client address as Fastify sees it under TRUST_PROXY (trust-proxy.ts): the same one sent upstream.
    keyGenerator: (request) => request.ip,
    allowList: (request) => EXEMPT.has(request.routeOptions.url ?? ''),
    onExceeded: () => deps.metrics.rateLimited.inc(),
    errorResponseBuilder: (_request, context) =>
      new errors.RATE_LIMITED(context.max, Math.round(config.windowMs / 1000), Math.max(1, Math.ceil(context.ttl / 1000))),
  })
}
