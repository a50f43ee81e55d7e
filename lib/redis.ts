import { Redis } from 'ioredis'
import type { Logger } from './logger.ts'

export type { Redis }

/**
 * A Redis client for optional helpers (cache, shared rate-limit counters): it never queues
 * commands while disconnected and bounds every command, so a dead or slow Redis costs a
 * request at most `commandTimeoutMs`, never an error or a hang. It reconnects by itself.
 */
export function createRedis(url: string, logger: Logger, opts: { commandTimeoutMs?: number; keyPrefix?: string; autoPipelining?: boolean } = {}): Redis {
  const redis = new Redis(url, {
    lazyConnect: false,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    connectTimeout: 1_000,
    commandTimeout: opts.commandTimeoutMs ?? 200,
    keyPrefix: opts.keyPrefix,
    // Commands issued in the same tick go out in one write (a hot path with a command per request).
    enableAutoPipelining: opts.autoPipelining ?? false,
    retryStrategy: (attempt) => Math.min(attempt * 200, 2_000),
  })
  let down = false
  redis.on('error', (err) => {
    if (!down) logger.warn({ err: err.message }, 'redis unavailable')
    down = true
  })
  redis.on('ready', () => {
    if (down) logger.info('redis available again')
    down = false
  })
  return redis
}
