// Per-client rate limiting (@fastify/rate-limit). With Redis the counters are shared by all
// proxy replicas; without, each process counts alone. A Redis failure lets the request through
// and is counted in proxy_rate_limit_store_errors_total: the limiter must never become the outage.
import { createRequire } from 'node:module'
import type { FastifyInstance } from 'fastify'
import rateLimit, { type FastifyRateLimitOptions, type FastifyRateLimitStoreCtor } from '@fastify/rate-limit'
import { HttpError } from '../lib/http/errors.ts'
import type { Logger } from '../lib/logger.ts'
import type { Redis } from '../lib/redis.ts'
import type { ProxyConfig } from './config.ts'
import type { ProxyMetrics } from './metrics.ts'

type StoreCallback = (err: Error | null, res?: { current: number; ttl: number }) => void
interface Store {
  incr(key: string, cb: StoreCallback, timeWindow: number, max: number): void
  child(routeOptions: unknown): Store
}
const RedisStore = createRequire(import.meta.url)('@fastify/rate-limit/store/RedisStore.js') as new (
  continueExceeding: boolean,
  exponentialBackoff: boolean,
  redis: Redis,
  key: string,
) => Store

const EXEMPT = new Set(['/health', '/ready', '/metrics'])

function failOpen(inner: Store, onError: (err: Error) => void): Store {
  return {
    incr(key, cb, timeWindow, max) {
      inner.incr(key, (err, res) => (err ? (onError(err), cb(null, { current: 0, ttl: timeWindow })) : cb(null, res)), timeWindow, max)
    },
    child: (routeOptions) => failOpen(inner.child(routeOptions), onError),
  }
}

/** The plugin's Redis store, except that a Redis error lets the request through (counted). */
function failOpenRedisStore(redis: Redis, prefix: string, onError: (err: Error) => void): FastifyRateLimitStoreCtor {
  return class {
    private readonly inner: Store
    constructor(params: FastifyRateLimitOptions) {
      const p = params as { continueExceeding: boolean; exponentialBackoff: boolean }
      this.inner = failOpen(new RedisStore(p.continueExceeding, p.exponentialBackoff, redis, prefix), onError)
    }
    incr(key: string, cb: StoreCallback, timeWindow: number, max: number): void {
      this.inner.incr(key, cb, timeWindow, max)
    }
    child(routeOptions: unknown): Store {
      return this.inner.child(routeOptions)
    }
  } as unknown as FastifyRateLimitStoreCtor
}

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
  const redis = deps.redis
  const store = redis ? failOpenRedisStore(redis, config.rateLimitKeyPrefix, onStoreError) : undefined

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
