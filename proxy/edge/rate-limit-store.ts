// The rate limit's counters (rate-limit.ts): in Redis, shared by the replicas, or in process.
// Redis: fixed windows: the first request of a window creates the
// counter with the window as its expiry, every request adds one, in one Lua script (atomic, so
// replicas never race). The requests of one client are counted in batches: those that arrive in
// the same event-loop turn, or while the client's previous batch is still on its way to Redis
// (at most one in flight per counter: under load a round trip counts many requests), are counted
// by one script call (INCRBY n) and handed the counts n-1 below the result up to it, exactly as n
// calls in a row would have; the client's auto-pipelining puts the calls of one turn into one
// write. A Redis error never becomes the outage: the requests pass (fail open) and `onError` is
// told, so it can be counted and logged.
import { createHash } from 'node:crypto'
import type { Redis } from '../../lib/redis.ts'
import { DEFAULT_MAX_KEYS, Windows } from './rate-limit-windows.ts'

// KEYS[1] the counter, ARGV[1] the window in ms, ARGV[2] requests to count: start the window on
// the first, count them, return {count, ms left}.
const INCR_SCRIPT = `redis.call('SET', KEYS[1], 0, 'PX', ARGV[1], 'NX')
local current = redis.call('INCRBY', KEYS[1], ARGV[2])
return {current, redis.call('PTTL', KEYS[1])}`
const INCR_SHA = createHash('sha1').update(INCR_SCRIPT).digest('hex')

export interface RedisRateLimitStoreOptions {
  redis: Redis
  /** Prefix of every counter key, e.g. `cinemaabyss:rl:`. */
  keyPrefix: string
  /** Called for each failed Redis round trip; the request it belonged to passes. */
  onError: (error: Error) => void
}

/** `current`: the requests of the window so far, this one included; `ttl`: what is left of the window, ms. */
export type RateLimitResult = { current: number; ttl: number }
type Callback = (result: RateLimitResult) => void

export interface RateLimitStore {
  /** Counts one request of `key` in its window of `timeWindow` ms; never fails (a store that cannot count answers current 0). */
  incr(key: string, callback: Callback, timeWindow: number): void
}

interface Batch {
  timeWindow: number
  waiting: Callback[]
}

export class RedisRateLimitStore implements RateLimitStore {
  /** Requests not yet sent, per counter and window (one batch each). */
  private readonly batches = new Map<string, Batch>()
  /** Counters and windows with a batch on its way to Redis: the next one waits for its answer. */
  private readonly inFlight = new Set<string>()

  private readonly options: RedisRateLimitStoreOptions

  constructor(options: RedisRateLimitStoreOptions) {
    this.options = options
  }

  /** Counts one request of `key` in its window; `ttl` is what is left of the window in ms. */
  incr(key: string, callback: Callback, timeWindow: number): void {
    const counter = this.options.keyPrefix + key
    const slot = `${timeWindow}:${counter}`
    const open = this.batches.get(slot)
    if (open) return void open.waiting.push(callback)
    const batch: Batch = { timeWindow, waiting: [callback] }
    this.batches.set(slot, batch)
    // After the poll phase: every request that arrived in this turn has been counted in. With a
    // batch in flight, this one goes when its answer is back.
    if (!this.inFlight.has(slot)) setImmediate(() => this.send(slot, counter))
  }

  private send(slot: string, counter: string): void {
    const batch = this.batches.get(slot)
    if (!batch) return
    this.batches.delete(slot)
    this.inFlight.add(slot)
    const { redis } = this.options
    const { timeWindow, waiting } = batch
    const n = waiting.length
    // EVALSHA, and the script itself the first time this Redis has not seen it (NOSCRIPT).
    const replies = redis
      .evalsha(INCR_SHA, 1, counter, timeWindow, n)
      .catch((error: Error) => (error.message.startsWith('NOSCRIPT') ? redis.eval(INCR_SCRIPT, 1, counter, timeWindow, n) : Promise.reject(error))) as Promise<unknown[]>
    void replies
      .then(
        ([current, ttl]) => waiting.forEach((callback, i) => callback({ current: Number(current) - n + 1 + i, ttl: Number(ttl) > 0 ? Number(ttl) : timeWindow })),
        // A failure of any kind lets the whole batch pass.
        (error: Error) => {
          this.options.onError(error)
          for (const callback of waiting) callback({ current: 0, ttl: timeWindow })
        },
      )
      .finally(() => {
        this.inFlight.delete(slot)
        if (this.batches.has(slot)) setImmediate(() => this.send(slot, counter))
      })
  }
}

/** Counters of this process alone (no REDIS_URL), for at most `maxKeys` clients at a time. */
export class LocalRateLimitStore implements RateLimitStore {
  private readonly windows: Windows<{ count: number; resetAt: number }>

  constructor(maxKeys = DEFAULT_MAX_KEYS) {
    this.windows = new Windows(maxKeys)
  }

  incr(key: string, callback: Callback, timeWindow: number): void {
    const now = Date.now()
    const window = this.windows.running(key, now) ?? this.windows.start(key, { count: 0, resetAt: now + timeWindow }, now)
    window.count++
    callback({ current: window.count, ttl: window.resetAt - now })
  }
}
