// Shared rate-limit counters in Redis: a store for @fastify/rate-limit (its documented custom
// store interface: incr, child, read). Fixed windows: the first request of a window creates the
// counter with the window as its expiry, every request adds one, in one Lua script (atomic, so
// replicas never race; one command per request, which the client's auto-pipelining batches with
// other requests' into one write). A Redis error never becomes the outage: the request passes
// (fail open) and `onError` is told, so it can be counted and logged.
import { createHash } from 'node:crypto'
import type { FastifyRateLimitOptions, FastifyRateLimitStoreCtor } from '@fastify/rate-limit'
import type { Redis } from '../lib/redis.ts'

// KEYS[1] the counter, ARGV[1] the window in ms: count one, start the window on the first, return {count, ms left}.
const INCR_SCRIPT = `redis.call('SET', KEYS[1], 0, 'PX', ARGV[1], 'NX')
local current = redis.call('INCR', KEYS[1])
return {current, redis.call('PTTL', KEYS[1])}`
const INCR_SHA = createHash('sha1').update(INCR_SCRIPT).digest('hex')

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
    const { redis } = this.options
    const counter = this.keyPrefix + key
    // EVALSHA, and the script itself the first time this Redis has not seen it (NOSCRIPT).
    const replies = redis
      .evalsha(INCR_SHA, 1, counter, timeWindow)
      .catch((error: Error) => (error.message.startsWith('NOSCRIPT') ? redis.eval(INCR_SCRIPT, 1, counter, timeWindow) : Promise.reject(error)))
    this.run(replies as Promise<unknown[]>, ([current, ttl]) => ({ current: Number(current), ttl: Number(ttl) > 0 ? Number(ttl) : timeWindow }), callback, timeWindow)
  }

  /** The state of `key` without counting a request (`{increment: false}` in the plugin). */
  read(key: string, callback: Callback, timeWindow: number): void {
    const counter = this.keyPrefix + key
    const replies = this.options.redis
      .multi()
      .get(counter)
      .pttl(counter)
      .exec()
      .then((results) => {
        const failed = results?.find(([error]) => error)?.[0]
        if (!results || failed) throw failed ?? new Error('rate-limit transaction aborted')
        return results.map(([, value]) => value)
      })
    this.run(replies, ([current, ttl]) => ({ current: Number(current ?? 0), ttl: Number(ttl) > 0 ? Number(ttl) : 0 }), callback, timeWindow)
  }

  /** A store for a route with its own limit: its counters live under the route's own prefix. */
  child(routeOptions: { routeInfo: { method: string; url: string } }): RedisRateLimitStore {
    return new RedisRateLimitStore(this.options, `${this.keyPrefix}${routeOptions.routeInfo.method}${routeOptions.routeInfo.url}-`)
  }

  /** Awaits one round trip's replies; a failure of any kind fails open. */
  private run(replies: Promise<unknown[]>, result: (replies: unknown[]) => RateLimitResult, callback: Callback, timeWindow: number): void {
    replies
      .then((values) => callback(null, result(values)))
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
