// Shared rate-limit counters in Redis: a store for @fastify/rate-limit (its documented custom
// store interface: incr, child, read). Fixed windows: the first request of a window creates the
// counter with the window as its expiry, every request adds one, all in one MULTI so replicas
// never race. A Redis error never becomes the outage: the request passes (fail open) and
// `onError` is told, so it can be counted and logged.
import type { FastifyRateLimitOptions, FastifyRateLimitStoreCtor } from '@fastify/rate-limit'
import type { ChainableCommander } from 'ioredis'
import type { Redis } from '../lib/redis.ts'

export interface RedisRateLimitStoreOptions {
  redis: Redis
  /** Prefix of every counter key, e.g. `cinemaabyss:rl:`. */
  keyPrefix: string
  /** Called for each failed Redis round trip; the request it belonged to passes. */
  onError: (error: Error) => void
}

export type RateLimitResult = { current: number; ttl: number }
type Callback = (error: Error | null, result?: RateLimitResult) => void

export class RedisRateLimitStore {
  constructor(
    private readonly options: RedisRateLimitStoreOptions,
    private readonly keyPrefix = options.keyPrefix,
  ) {}

  /** Counts one request of `key` in its window; `ttl` is what is left of the window in ms. */
  incr(key: string, callback: Callback, timeWindow: number): void {
    const counter = this.keyPrefix + key
    const transaction = this.options.redis.multi().set(counter, 0, 'PX', timeWindow, 'NX').incr(counter).pttl(counter)
    this.run(transaction, ([, current, ttl]) => ({ current: Number(current), ttl: Number(ttl) > 0 ? Number(ttl) : timeWindow }), callback, timeWindow)
  }

  /** The state of `key` without counting a request (`{increment: false}` in the plugin). */
  read(key: string, callback: Callback, timeWindow: number): void {
    const counter = this.keyPrefix + key
    const transaction = this.options.redis.multi().get(counter).pttl(counter)
    this.run(transaction, ([current, ttl]) => ({ current: Number(current ?? 0), ttl: Number(ttl) > 0 ? Number(ttl) : 0 }), callback, timeWindow)
  }

  /** A store for a route with its own limit: its counters live under the route's own prefix. */
  child(routeOptions: { routeInfo: { method: string; url: string } }): RedisRateLimitStore {
    return new RedisRateLimitStore(this.options, `${this.keyPrefix}${routeOptions.routeInfo.method}${routeOptions.routeInfo.url}-`)
  }

  /** Runs one MULTI; any failed reply (or a dropped transaction) fails open. */
  private run(transaction: ChainableCommander, result: (replies: unknown[]) => RateLimitResult, callback: Callback, timeWindow: number): void {
    transaction
      .exec()
      .then((replies) => {
        const failed = replies?.find(([error]) => error)?.[0]
        if (!replies || failed) throw failed ?? new Error('rate-limit transaction aborted')
        callback(null, result(replies.map(([, value]) => value)))
      })
      .catch((error: Error) => {
        this.options.onError(error)
        callback(null, { current: 0, ttl: timeWindow })
      })
  }
}

/** The store as the plugin's `store` option wants it: a class it instantiates with its options. */
export function redisRateLimitStore(options: RedisRateLimitStoreOptions): FastifyRateLimitStoreCtor {
  return class extends RedisRateLimitStore {
    constructor(_pluginOptions: FastifyRateLimitOptions) {
      super(options)
    }
  } as unknown as FastifyRateLimitStoreCtor
}
