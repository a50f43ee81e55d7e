// The services' stdout logger (lib/logger.ts) writes in batches: a line still reaches stdout
// soon when traffic is low, and nothing pending is lost when the process exits.
import { spawn } from 'node:child_process'
import { describe, expect, it, vi } from 'vitest'
import { createHttpApp } from '../../lib/http/create-app.ts'
import { captureLogs } from '../helpers/logs.ts'
import { createLogger, preparedInfo } from '../../lib/logger.ts'

/** Runs `script` (with createLogger imported) in a process of its own; resolves with its stdout lines and their arrival times. */
function runLogging(script: string, stopWhen?: (line: string) => boolean): Promise<Array<{ line: string; at: number }>> {
  const code = `import { createLogger } from ${JSON.stringify(new URL('../../lib/logger.ts', import.meta.url).pathname)}\n${script}`
  const child = spawn(process.execPath, ['--input-type=module', '-e', code], { stdio: ['ignore', 'pipe', 'inherit'] })
  const lines: Array<{ line: string; at: number }> = []
  let rest = ''
  child.stdout.setEncoding('utf8').on('data', (text: string) => {
    const parts = (rest + text).split('\n')
    rest = parts.pop()!
    for (const line of parts) {
      lines.push({ line, at: Date.now() })
      if (stopWhen?.(line)) child.kill('SIGKILL')
    }
  })
  const killer = setTimeout(() => child.kill('SIGKILL'), 20_000) // a bound on a hang, not a timing
  return new Promise((resolve) => child.on('close', () => (clearTimeout(killer), resolve(lines))))
}

describe('createLogger on stdout', () => {
  it('writes a lone line while the process lives on (no traffic to fill the batch)', async () => {
    // The process logs one line and then idles for 10 s; the line must arrive long before that.
    const started = Date.now()
    const lines = await runLogging(`const log = createLogger({ name: 'alone' }); setTimeout(() => log.info('lonely line'), 200); setTimeout(() => {}, 10_000)`, (l) => l.includes('lonely line'))
    expect(lines.map((l) => JSON.parse(l.line).msg)).toEqual(['lonely line'])
    expect(lines[0]!.at - started).toBeLessThan(8_000)
  })

  it('loses no line on exit, however many are pending', async () => {
    const lines = await runLogging(`const log = createLogger({ name: 'many' }); for (let i = 0; i < 2000; i++) log.info({ i }, 'line'); process.exit(0)`)
    expect(lines.map((l) => JSON.parse(l.line).i)).toEqual(Array.from({ length: 2000 }, (_, i) => i))
  })
})

describe('preparedInfo', () => {
  /** A logger writing into an array, as createLogger is given a destination in tests. */
  const capturing = (options: Parameters<typeof createLogger>[0] = { name: 'proxy' }) => {
    const lines: string[] = []
    return { logger: createLogger(options, { write: (line: string) => void lines.push(line) }), lines }
  }
  const fieldsOf = (reqId: string, url: string) => ({ method: 'GET', url, status: 200, ms: 1.5, route: 'movies', upstream: null, reason: 'flag', absent: undefined, nan: Number.NaN, reqId })

  it("writes byte for byte the line pino writes for logger.child({ reqId }).info(fields, msg), whatever the strings hold", () => {
    const urls = ['/api/movies', '/api/~!*()', '/api/\u007f', 'x'.repeat(300) + '"', '/api/movies?q="quoted"&x=\\back', '/api/фильмы/ñ?😀', '/api/\u0001\u001f\ttab', `/api/${'long/'.repeat(40)}`]
    for (const url of urls) {
      const [viaPino, prepared] = [capturing(), capturing()]
      const write = preparedInfo(prepared.logger, 'request')!
      const { reqId, ...fields } = fieldsOf('3b882c1c-1d58-4d47-9a8c-5d19bd35cd20', url)
      viaPino.logger.child({ reqId }).info(fields, 'request')
      const { method, url: path, status, ms, ...more } = fields
      write({ reqId, method, url: path, status, ms }, more)
      // The time differs by when each was written; everything else is the same text.
      const withoutTime = (line: string) => line.replace(/"time":\d+/, '"time":0')
      expect(withoutTime(prepared.lines[0]!)).toBe(withoutTime(viaPino.lines[0]!))
      expect(JSON.parse(prepared.lines[0]!)).toMatchObject({ level: 30, service: 'proxy', reqId, url, upstream: null, nan: null, msg: 'request' })
    }
  })

  it("follows the logger's level as it is changed, and is not offered for a logger with a mixin (its fields come from pino)", () => {
    const { logger, lines } = capturing()
    const write = preparedInfo(logger, 'request')!
    logger.level = 'warn'
    write({ reqId: 'a' })
    logger.level = 'info'
    write({ reqId: 'b' })
    expect(lines.map((l) => JSON.parse(l).reqId)).toEqual(['b'])
    expect(preparedInfo(capturing({ name: 'proxy', mixin: () => ({ trace_id: 'x' }) }).logger, 'request')).toBeUndefined()
  })
})

describe("request.log (lib/http/create-app.ts's lazy child logger)", () => {
  it('is a child with the request id, made only for a request that logs something; the access line needs none', async () => {
    const { logger, lines } = captureLogs()
    const app = createHttpApp({ logger, bodyLimitBytes: 1024 })
    // Fastify makes each request's logger a child of app.log (itself a child of `logger`).
    const children = vi.spyOn(app.log, 'child')
    app.get('/quiet', async () => ({ ok: true }))
    app.get('/talks', async (request) => {
      request.log.warn({ detail: 1 }, 'something to say')
      expect(request.log.level).toBe('info')
      return { ok: true }
    })
    try {
      await app.inject({ url: '/quiet', headers: { 'x-request-id': 'quiet-1' } })
      expect(children).not.toHaveBeenCalled()
      await app.inject({ url: '/talks', headers: { 'x-request-id': 'talks-1' } })
      expect(children).toHaveBeenCalledTimes(1)
      expect(lines.filter((l) => l.msg === 'something to say')).toEqual([expect.objectContaining({ level: 40, reqId: 'talks-1', detail: 1 })])
      expect(lines.filter((l) => l.msg === 'request').map((l) => [l.reqId, l.url, l.status])).toEqual([
        ['quiet-1', '/quiet', 200],
        ['talks-1', '/talks', 200],
      ])
    } finally {
      await app.close()
    }
  })
})
