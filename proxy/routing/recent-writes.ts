// Read-your-writes: which side a client's last write on a route went to, and when. After a write
// to the route's writer side, that client's reads go to the writer side too (decision.ts,
// reason "read-your-writes") until the other store has applied the write — a parity check that
// started after it found nothing unreplicated — or `windowMs` has passed. With Redis the marks
// are shared by every replica (a key per route and identity, expiring after the window); without
// it they are kept in process, at most `maxLocal` of them (the oldest go first).
import type { Redis } from '../../lib/redis.ts'
import type { Logger } from '../../lib/logger.ts'
import type { Side } from './decision.ts'

export interface RecentWritesOptions {
  /** Longest time a client's reads follow its write. */
  windowMs: number
  /** Prefix of the Redis keys. */
  keyPrefix: string
  /** Marks kept in process without Redis. */
  maxLocal: number
}

export interface RecentWritesDeps {
  redis?: Redis
  logger: Logger
  /** When the last check found the route's stores agreeing with nothing left to replicate (ms since epoch); a write older than that has reached both. */
  caughtUpAt?: (route: string) => number | undefined
}

export interface RecentWrites {
  /** A write of `identity` on `route` is about to be sent to `side`: stored before the write goes (so a read that follows finds it). Never throws. */
  remember(route: string, identity: string, side: Side): Promise<void>
  /**
   * The side `identity` wrote to on `route`, while its reads still have to follow it; undefined =
   * no recent write; 'unknown' = Redis did not answer (the caller reads from the writer side,
   * which has every write).
   */
  lookup(route: string, identity: string): Promise<Side | undefined | 'unknown'>
}

type Mark = { side: Side; at: number }
const encode = (m: Mark) => `${m.side}:${m.at}`
function decode(text: string | null | undefined): Mark | undefined {
  if (!text) return undefined
  const [side, at] = text.split(':')
  return (side === 'legacy' || side === 'target') && Number.isFinite(Number(at)) ? { side, at: Number(at) } : undefined
}

export function createRecentWrites(options: RecentWritesOptions, deps: RecentWritesDeps): RecentWrites {
  const local = new Map<string, Mark>()
  const keyOf = (route: string, identity: string) => `${options.keyPrefix}${route}:${identity}`
  const current = (route: string, mark: Mark | undefined): Side | undefined => {
    if (!mark) return undefined
    const now = Date.now()
    if (now - mark.at >= options.windowMs) return undefined
    const caughtUp = deps.caughtUpAt?.(route)
    return caughtUp !== undefined && caughtUp > mark.at ? undefined : mark.side
  }
  return {
    async remember(route, identity, side) {
      const key = keyOf(route, identity)
      const mark = { side, at: Date.now() }
      if (deps.redis) {
        try {
          await deps.redis.set(key, encode(mark), 'PX', options.windowMs)
          // A mark kept here while Redis was away is older: it must not shadow this one.
          local.delete(key)
          return
        } catch (err) {
          deps.logger.warn({ route, err: (err as Error).message }, 'read-your-writes mark not stored in Redis: kept in this process')
        }
      }
      local.delete(key)
      local.set(key, mark)
      if (local.size > options.maxLocal) local.delete(local.keys().next().value!)
    },
    async lookup(route, identity) {
      const key = keyOf(route, identity)
      const here = local.get(key)
      if (!deps.redis) return current(route, here)
      try {
        const shared = decode(await deps.redis.get(key))
        // The newer of the two: a mark kept here while Redis was away, or the shared one written since.
        return current(route, here && (!shared || here.at > shared.at) ? here : shared)
      } catch {
        return current(route, here) ?? 'unknown'
      }
    },
  }
}
