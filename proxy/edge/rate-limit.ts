// Per-client rate limiting: fixed windows of RATE_LIMIT_WINDOW_MS, at most RATE_LIMIT_MAX
// requests of one client (its address as TRUST_PROXY resolves it; an IPv6 client by its /64,
// client-key.ts) in each. With Redis the counters
// are shared by all proxy replicas, synced at most every RATE_LIMIT_SYNC_MS in the background
// (rate-limit-store.ts); without, each process counts alone. A failed sync is counted in
// proxy_rate_limit_store_errors_total and the replica counts alone meanwhile: the limiter must
// never become the outage. Every counted answer carries x-ratelimit-limit,
// -remaining and -reset (seconds); past the limit, 429 JSON with Retry-After.
//
// One callback-style onRequest hook rather than @fastify/rate-limit: the plugin's promise chain
// and per-request option look-ups cost the proxy a measurable share of its throughput (issue 16,
// proxy/README.md "Performance"); the headers and the 429 are the ones it sent.
import type { FastifyInstance } from 'fastify'
import { Type, type Static } from '@sinclair/typebox'
import { errors } from '../../lib/errors.ts'
import type { Logger } from '../../lib/logger.ts'
import type { Redis } from '../../lib/redis.ts'
import type { ProxyMetrics } from '../observability/metrics.ts'
import { checkOptions } from '../model/options.ts'
import { clientKey } from './client-key.ts'
import { LocalRateLimitStore, RedisRateLimitStore, RedisSyncSettings, type RateLimitStore } from './rate-limit-store.ts'

const EXEMPT = new Set(['/health', '/ready', '/metrics'])

export const RateLimitOptions = Type.Object(
  {
    /** Requests per client per window; 0 = no limit. */
    max: Type.Integer({ minimum: 0 }),
    windowMs: Type.Integer({ minimum: 1 }),
    /** Prefix of the Redis counters. */
    keyPrefix: Type.String(),
    /** Least time between two syncs of the counters with Redis. */
    syncIntervalMs: RedisSyncSettings.properties.syncIntervalMs,
  },
  { additionalProperties: false },
)
export type RateLimitOptions = Static<typeof RateLimitOptions>

export function registerRateLimit(app: FastifyInstance, options: RateLimitOptions, deps: { redis?: Redis; metrics: ProxyMetrics; logger: Logger }): void {
  const { max, windowMs, keyPrefix, syncIntervalMs } = checkOptions(RateLimitOptions, options, 'rate limit')
  if (max === 0) return
  let lastLogged = 0
  const onStoreError = (err: Error) => {
    deps.metrics.rateLimitStoreErrors.inc()
    if (Date.now() - lastLogged > 10_000) {
      lastLogged = Date.now()
      deps.logger.warn({ err: err.message }, 'rate-limit counters unavailable: this replica counts alone')
    }
  }
  const shared = deps.redis && new RedisRateLimitStore({ redis: deps.redis, keyPrefix, syncIntervalMs, onError: onStoreError })
  // The requests counted since the last sync still reach Redis (server.ts disconnects it after).
  if (shared) app.addHook('onClose', () => shared.close())
  const store: RateLimitStore = shared || new LocalRateLimitStore()
  const windowSeconds = Math.round(windowMs / 1000)

  app.addHook('onRequest', (request, reply, done) => {
    // Unmatched paths (404) and the probes are not counted.
    if (request.is404 || EXEMPT.has(request.routeOptions.url ?? '')) return done()
    // The client address as Fastify sees it under TRUST_PROXY (trust-proxy.ts): the same one sent upstream (an IPv6 one by its /64).
    store.incr(
      clientKey(request.ip),
      ({ current, ttl }) => {
        const resetSeconds = Math.ceil(ttl / 1000)
        reply.header('x-ratelimit-limit', max)
        if (current <= max) {
          reply.header('x-ratelimit-remaining', max - current).header('x-ratelimit-reset', resetSeconds)
          return done()
        }
        deps.metrics.rateLimited.inc()
        reply.header('x-ratelimit-remaining', 0).header('x-ratelimit-reset', resetSeconds).header('retry-after', resetSeconds)
        done(new errors.RATE_LIMITED(max, windowSeconds, Math.max(1, resetSeconds)))
      },
      windowMs,
    )
  })
}
