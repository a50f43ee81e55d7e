// The rate limit's counters (rate-limit.ts): in Redis, shared by the replicas, or in process.
// Redis: fixed windows, counted here and synced in the background (as Kong's `sync_rate` and
// Envoy's local + global limits do), so no request waits for Redis. A request's count is at once
// what Redis said at this replica's last sync of the client, plus the requests counted here since,
// plus one. At most once per `syncIntervalMs`, and one at a time per counter, what was counted
// here goes to Redis in one Lua script (INCRBY n; the first of a window sets its expiry; atomic,
// so replicas never race) whose answer, the count of all replicas and the window's end, replaces
// the estimate; the syncs of one turn leave in one write (the client's auto-pipelining).
// Exactness: one replica never admits a request past the limit; across replicas a client can pass
// the limit by what the other replicas admitted since this replica's last sync of it: at most one
// sync interval (and a round trip) while the client keeps calling this replica; the first requests
// after a pause here are decided on the count of the sync before the pause.
// Redis failing never becomes the outage: the replica goes on counting alone (the estimate keeps
// the last known count), `onError` hears of each failed sync, and the unsent requests ride with
// the client's next sync while their window lasts, dropped when it ends (memory stays bounded).
import { createHash } from 'node:crypto'
import { Type } from '@sinclair/typebox'
import type { Redis } from '../../lib/redis.ts'
import { checkOptions } from '../model/options.ts'
import { DEFAULT_MAX_KEYS, Windows } from './rate-limit-windows.ts'

// KEYS[1] the counter, ARGV[1] the window in ms, ARGV[2] requests to count: start the window on
// the first, count them, return {count, ms left}.
const INCR_SCRIPT = `redis.call('SET', KEYS[1], 0, 'PX', ARGV[1], 'NX')
local current = redis.call('INCRBY', KEYS[1], ARGV[2])
return {current, redis.call('PTTL', KEYS[1])}`
const INCR_SHA = createHash('sha1').update(INCR_SCRIPT).digest('hex')

export const DEFAULT_SYNC_INTERVAL_MS = 25

/** How often a Redis store syncs and how many clients it holds; checked when a store is created. */
export const RedisSyncSettings = Type.Object(
  {
    /** Least time between two syncs of the store's counters, ms: a replica's view of the others is this old. */
    syncIntervalMs: Type.Integer({ minimum: 1, maximum: 60_000 }),
    /** Clients counted at once (ended windows go first, then the oldest). */
    maxKeys: Type.Integer({ minimum: 1 }),
  },
  { additionalProperties: false },
)

export interface RedisRateLimitStoreOptions {
  redis: Redis
  /** Prefix of every counter key, e.g. `cinemaabyss:rl:`. */
  keyPrefix: string
  /** Called for each failed sync with Redis; meanwhile this replica counts alone. */
  onError: (error: Error) => void
  syncIntervalMs?: number
  maxKeys?: number
}

/** `current`: the requests of the window so far, this one included; `ttl`: what is left of the window, ms. */
export type RateLimitResult = { current: number; ttl: number }
type Callback = (result: RateLimitResult) => void

export interface RateLimitStore {
  /** Counts one request of `key` in its window of `timeWindow` ms and calls back at once; never fails. */
  incr(key: string, callback: Callback, timeWindow: number): void
}

/** One client's window as this replica sees it. */
interface Counter {
  /** The Redis key. */
  readonly key: string
  readonly timeWindow: number
  /** The window's end (epoch ms): from the last sync, or a local guess before the first. */
  resetAt: number
  /** The count Redis answered at the last sync: all replicas' requests. */
  synced: number
  /** Counted here, not sent yet. */
  pending: number
  /** Sent, not answered yet (a sync in flight; at most one). */
  sending: number
}

export class RedisRateLimitStore implements RateLimitStore {
  private readonly counters: Windows<Counter>
  /** Counters with requests since their last sync: the next tick sends them (unless one is in flight). */
  private readonly due = new Set<Counter>()
  private readonly inFlight = new Set<Promise<void>>()
  private timer: NodeJS.Timeout | undefined
  private lastTick = -Infinity
  private closed = false

  private readonly options: RedisRateLimitStoreOptions
  private readonly syncIntervalMs: number

  constructor(options: RedisRateLimitStoreOptions) {
    const { syncIntervalMs = DEFAULT_SYNC_INTERVAL_MS, maxKeys = DEFAULT_MAX_KEYS } = options
    checkOptions(RedisSyncSettings, { syncIntervalMs, maxKeys }, 'rate-limit store')
    this.options = options
    this.syncIntervalMs = syncIntervalMs
    this.counters = new Windows(maxKeys)
  }

  incr(key: string, callback: Callback, timeWindow: number): void {
    const now = Date.now()
    // By client key alone, as the local store and the Redis key itself are (the window is one setting).
    const counter =
      this.counters.running(key, now) ??
      this.counters.start(key, { key: this.options.keyPrefix + key, timeWindow, resetAt: now + timeWindow, synced: 0, pending: 0, sending: 0 }, now)
    counter.pending++
    this.due.add(counter)
    if (!this.timer) this.schedule()
    callback({ current: counter.synced + counter.sending + counter.pending, ttl: counter.resetAt - now })
  }

  /** Sends what is counted now, not waiting for the interval, and resolves once Redis has answered (or failed). */
  async flush(): Promise<void> {
    await Promise.all(this.inFlight)
    this.sendDue()
    await Promise.all(this.inFlight)
  }

  /** No more syncs by timer; what is counted goes to Redis one last time. */
  async close(): Promise<void> {
    this.closed = true
    clearTimeout(this.timer)
    this.timer = undefined
    await this.flush()
  }

  /** One tick per interval at most, only while there is something to send: no timer when idle. */
  private schedule(): void {
    if (this.closed) return
    this.timer = setTimeout(() => {
      this.timer = undefined
      this.lastTick = Date.now()
      this.sendDue()
    }, Math.max(0, this.lastTick + this.syncIntervalMs - Date.now()))
    this.timer.unref()
  }

  private sendDue(): void {
    const now = Date.now()
    for (const counter of this.due) {
      if (counter.sending) continue // goes when its answer is back
      this.due.delete(counter)
      if (counter.resetAt > now) this.sync(counter) // an ended window's requests are dropped
    }
  }

  private sync(counter: Counter): void {
    const n = counter.pending
    counter.pending = 0
    counter.sending = n
    const { redis } = this.options
    // EVALSHA, and the script itself the first time this Redis has not seen it (NOSCRIPT).
    const replies = redis
      .evalsha(INCR_SHA, 1, counter.key, counter.timeWindow, n)
      .catch((error: Error) => (error.message.startsWith('NOSCRIPT') ? redis.eval(INCR_SCRIPT, 1, counter.key, counter.timeWindow, n) : Promise.reject(error))) as Promise<unknown[]>
    const answered = replies.then(
      ([count, ttl]) => {
        counter.synced = Number(count)
        counter.resetAt = Date.now() + (Number(ttl) > 0 ? Number(ttl) : counter.timeWindow)
        this.answered(counter, answered)
      },
      (error: Error) => {
        counter.pending += n // they ride with the client's next sync, if its window lasts
        this.answered(counter, answered)
        this.options.onError(error)
      },
    )
    this.inFlight.add(answered)
  }

  private answered(counter: Counter, sync: Promise<void>): void {
    counter.sending = 0
    this.inFlight.delete(sync)
    if (this.due.has(counter) && !this.timer) this.schedule()
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
