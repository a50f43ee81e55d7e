import pino, { type Bindings, type ChildLoggerOptions, type Level, type LevelWithSilentOrString, type Logger, type DestinationStream, type LoggerOptions } from 'pino'

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
 * `logger.info({ ...fields, ...more }, msg)` writes, the same JSON line to the same destination,
 * from a template prepared once (level, bindings, message and each field's name serialised once),
 * at the logger's level of the moment. pino serialises the bindings, and the object field by
 * field with its generic checks, on every call: 2.4 µs a line against 1.2 µs here, measured.
 * Undefined for a logger whose lines carry a mixin's fields (tracing) or that createLogger did
 * not make: use pino then.
 */
export function preparedInfo(logger: Logger, msg: string): ((fields: LineFields, more?: LineFields) => void) | undefined {
  const destination = destinations.get(logger)
  if (!destination) return undefined
  const info = logger.levels.values.info!
  const bindings = JSON.stringify(logger.bindings()).slice(1, -1)
  const head = `{"level":${info},"time":`
  const middle = bindings ? `,${bindings}` : ''
  const tail = `,"msg":${jsonString(msg)}}\n`
  /** `,"name":` per field name, made once. */
  const keys = new Map<string, string>()
  const append = (line: string, fields: LineFields) => {
    for (const name in fields) {
      const value = fields[name]
      if (value === undefined) continue
      let key = keys.get(name)
      if (key === undefined) keys.set(name, (key = `,${jsonString(name)}:`))
      line += key + (typeof value === 'string' ? jsonString(value) : value === null || !Number.isFinite(value) ? 'null' : value)
    }
    return line
  }
  return (fields, more) => {
    if (logger.levelVal > info) return
    const line = append(head + Date.now() + middle, fields)
    destination.write((more ? append(line, more) : line) + tail)
  }
}

/**
 * A string as JSON: quoted as it is when no character needs escaping (ids, paths, names: nearly
 * always), else JSON.stringify's escapes. JSON.stringify costs ~130 ns even on a short plain
 * string here, the scan a fraction of that.
 */
function jsonString(value: string): string {
  if (value.length > 256) return JSON.stringify(value)
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i)
    if (c < 0x20 || c === 0x22 || c === 0x5c || c > 0x7e) return JSON.stringify(value)
  }
  return `"${value}"`
}

/**
 * Fastify's `childLoggerFactory`: request.log is made on first use. Fastify makes a pino child
 * per request, its bindings serialised each time (1.4 % of the proxy's CPU), though most requests
 * log nothing but their access line, which is written from a prepared template (preparedInfo).
 */
export function lazyChildLogger(logger: Logger, bindings: Bindings, options: ChildLoggerOptions): Logger {
  return new LazyChild(logger, bindings, options) as unknown as Logger
}

/** The methods Fastify and the services call on request.log, each making the child first. */
class LazyChild {
  readonly #parent: Logger
  readonly #bindings: Bindings
  readonly #options: ChildLoggerOptions
  #made: Logger | undefined
  constructor(parent: Logger, bindings: Bindings, options: ChildLoggerOptions) {
    this.#parent = parent
    this.#bindings = bindings
    this.#options = options
  }
  get #child(): Logger {
    return (this.#made ??= this.#parent.child(this.#bindings, this.#options))
  }
  get level(): LevelWithSilentOrString {
    return this.#made?.level ?? this.#options.level ?? this.#parent.level
  }
  set level(level: LevelWithSilentOrString) {
    this.#child.level = level
  }
  isLevelEnabled(level: Level): boolean {
    return this.#child.isLevelEnabled(level)
  }
  bindings(): Bindings {
    return this.#child.bindings()
  }
  child(bindings: Bindings, options?: ChildLoggerOptions): Logger {
    return this.#child.child(bindings, options)
  }
  fatal(...args: Parameters<Logger['fatal']>): void {
    this.#child.fatal(...args)
  }
  error(...args: Parameters<Logger['error']>): void {
    this.#child.error(...args)
  }
  warn(...args: Parameters<Logger['warn']>): void {
    this.#child.warn(...args)
  }
  info(...args: Parameters<Logger['info']>): void {
    this.#child.info(...args)
  }
  debug(...args: Parameters<Logger['debug']>): void {
    this.#child.debug(...args)
  }
  trace(...args: Parameters<Logger['trace']>): void {
    this.#child.trace(...args)
  }
  silent(): void {}
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
