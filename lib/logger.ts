import pino, { type Logger, type DestinationStream } from 'pino'

export type { Logger }

/** The structured JSON logger every service uses; pass `destination` to capture it in tests. */
export function createLogger(options: { level?: string; name?: string }, destination?: DestinationStream): Logger {
  return pino({ level: options.level ?? 'info', name: options.name, base: { service: options.name } }, destination)
}
