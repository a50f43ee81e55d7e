// A pino logger whose JSON lines the test can read back.
import { Writable } from 'node:stream'
import { createLogger, type Logger } from '../../lib/logger.ts'

export interface CapturedLogs {
  logger: Logger
  lines: Array<Record<string, unknown>>
}

export function captureLogs(level = 'info'): CapturedLogs {
  const lines: Array<Record<string, unknown>> = []
  const sink = new Writable({
    write(chunk, _enc, done) {
      for (const line of String(chunk).split('\n')) if (line) lines.push(JSON.parse(line))
      done()
    },
  })
  return { logger: createLogger({ level, name: 'test' }, sink), lines }
}
