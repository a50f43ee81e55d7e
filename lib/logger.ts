import pino, { type Logger, type DestinationStream, type LoggerOptions } from 'pino'

export type { Logger }

/** Lines are written once this many bytes are pending (or at the next flush tick). */
const WRITE_AT_BYTES = 16_000
/** The longest a line waits in the buffer when traffic is low. */
const FLUSH_INTERVAL_MS = 100
/** Beyond this many pending bytes (stdout stuck), lines are dropped rather than piling up in memory. */
const MAX_PENDING_BYTES = 16 * 1024 * 1024

/**
 * The structured JSON logger every service uses; pass `destination` to capture it in tests.
 * By default it writes to stdout asynchronously and in batches of about 16 KB (sonic-boom writes at most 16 KiB at once), at most 100 ms
 * late: a write per access line cost the proxy a tenth of its throughput (proxy/README.md,
 * Performance). pino flushes what is pending on exit.
 */
export function createLogger(options: { level?: string; name?: string; mixin?: () => Record<string, unknown> }, destination?: DestinationStream): Logger {
  const settings: LoggerOptions = { level: options.level ?? 'info', name: options.name, base: { service: options.name } }
  // Tracing on (lib/tracing/): trace_id and span_id of the active span on every line.
  if (options.mixin) settings.mixin = options.mixin
  if (destination) return pino(settings, destination)
  const stdout = pino.destination({ dest: 1, sync: false, minLength: WRITE_AT_BYTES, maxLength: MAX_PENDING_BYTES })
  let pending = false
  // Unref'd: it never keeps a process alive. Only when lines wait: an idle service writes nothing.
  const timer = setInterval(() => {
    if (!pending) return
    pending = false
    try {
      stdout.flush()
    } catch {
      clearInterval(timer) // closed at exit
    }
  }, FLUSH_INTERVAL_MS).unref()
  const hooks = {
    streamWrite: (line: string) => {
      pending = true
      return line
    },
  }
  return pino({ ...settings, hooks }, stdout)
}
