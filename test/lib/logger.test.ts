// The services' stdout logger (lib/logger.ts) writes in batches: a line still reaches stdout
// soon when traffic is low, and nothing pending is lost when the process exits.
import { spawn } from 'node:child_process'
import { describe, expect, it } from 'vitest'

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
