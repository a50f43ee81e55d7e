import pino, { type Logger, type DestinationStream, type LoggerOptions } from 'pino'

export type { Logger }

/** Lines are written once this many characters are pending (or at the next flush tick). */
const WRITE_AT_CHARS = 32_768
/** The longest a line waits when traffic is low. */
const FLUSH_INTERVAL_MS = 100

/**
 * The structured JSON logger every service uses; pass `destination` to capture it in tests.
 * By default it writes to stdout in batches of about 32 KB, at most 100 ms late, and whatever
 * is pending when the process exits. The batch is one synchronous write through sonic-boom
 * (pino's own destination: partial writes, EAGAIN): a write per access line cost the proxy a
 * tenth of its throughput, and sonic-boom's own batching (minLength) measures the whole pending
 * buffer again on every line (proxy/README.md, "What each feature costs"). Like pino's default
 * destination, a stdout that does not drain blocks the process rather than losing lines.
 */
export function createLogger(options: { level?: string; name?: string; mixin?: () => Record<string, unknown> }, destination?: DestinationStream): Logger {
  const settings: LoggerOptions = { level: options.level ?? 'info', name: options.name, base: { service: options.name } }
  // Tracing on (lib/tracing/): trace_id and span_id of the active span on every line.
  if (options.mixin) settings.mixin = options.mixin
  const stream = destination ?? batchedStdout()
  const logger = pino(settings, stream)
  if (!options.mixin) destinations.set(logger, stream)
  return logger
}

/** The destination of each logger createLogger made without a mixin (preparedInfo's loggers). */
const destinations = new WeakMap<Logger, DestinationStream>()

/** A prepared line's fields: strings, finite numbers or null; undefined ones are left out, as pino does. */
export type LineFields = Record<string, string | number | null | undefined>

/**
 * For the line written once per request (lib/http/create-app.ts's access line): writes what
 * `logger.info(fields, msg)` writes, the same JSON line to the same destination, from a template
 * prepared once (level, bindings and message serialised here), at the logger's level of the
 * moment. pino serialises the bindings, and the object field by field with its generic checks,
 * on every call: ~1.1 µs more per line, measured. Undefined for a logger whose lines carry a
 * mixin's fields (tracing) or that createLogger did not make: use pino then.
 */
export function preparedInfo(logger: Logger, msg: string): ((fields: LineFields) => void) | undefined {
  const destination = destinations.get(logger)
  if (!destination) return undefined
  const info = logger.levels.values.info!
  const bindings = JSON.stringify(logger.bindings()).slice(1, -1)
  const head = `{"level":${info},"time":`
  const middle = bindings ? `,${bindings}` : ''
  const tail = `,"msg":${JSON.stringify(msg)}}\n`
  return (fields) => {
    if (logger.levelVal > info) return
    let line = head + Date.now() + middle
    for (const name in fields) {
      const value = fields[name]
      if (value === undefined) continue
      line += `,${JSON.stringify(name)}:${typeof value === 'string' ? JSON.stringify(value) : value === null || !Number.isFinite(value) ? 'null' : value}`
    }
    destination.write(line + tail)
  }
}

/** Lines gathered in memory and written to stdout a batch at a time. */
function batchedStdout(): DestinationStream {
  const stdout = pino.destination({ dest: 1, sync: true })
  let lines: string[] = []
  let pending = 0
  const flush = () => {
    if (pending === 0) return
    const batch = lines.join('')
    lines = []
    pending = 0
    stdout.write(batch)
  }
  // Unref'd: it never keeps a process alive; an idle service writes nothing.
  const timer = setInterval(flush, FLUSH_INTERVAL_MS).unref()
  process.once('exit', () => {
    clearInterval(timer)
    flush()
  })
  return {
    write(line: string) {
      lines.push(line)
      pending += line.length
      if (pending >= WRITE_AT_CHARS) flush()
    },
  }
}
