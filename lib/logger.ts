import pino, { type Logger, type DestinationStream } from 'pino'

export type { Logger }

/**
 * The structured JSON logger every service uses; pass `destination` to capture it in tests.
 * By default it writes to stdout asynchronously (lines logged while a write is in flight go out
 * together): a synchronous write per access line costs the proxy a measurable share of its
 * throughput. pino flushes what is pending on exit.
 */
export function createLogger(options: { level?: string; name?: string }, destination?: DestinationStream): Logger {
  return pino(
    { level: options.level ?? 'info', name: options.name, base: { service: options.name } },
    destination ?? pino.destination({ dest: 1, sync: false }),
  )
}
