// `npm start` with a bad variable stops before it starts anything (no database, no Kafka, no
// service), with a message naming the variable — the proxy's own variables included.
import { execFile } from 'node:child_process'
import { describe, expect, it } from 'vitest'
import { REPO_ROOT } from '../helpers/processes.ts'

function start(env: Record<string, string>): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, ['dev/start/main.ts'], { cwd: REPO_ROOT, env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...env }, timeout: 60_000 }, (error, stdout, stderr) => {
      resolve({ code: error ? ((error as { code?: number }).code ?? null) : 0, output: stdout + stderr })
    })
  })
}

describe('npm start with a bad variable', () => {
  it.each([
    ['START_BASE_PORT', { START_BASE_PORT: '70000' }],
    ['ADMIN_TOKEN', { ADMIN_TOKEN: 'short' }],
    ['BREAKER_SLOW_CALL_MS', { BREAKER_SLOW_CALL_MS: 'soon' }],
  ])('stops at once, naming %s, before anything starts', async (name, env) => {
    const { code, output } = await start({ START_BASE_PORT: '19500', ...env })
    expect(code).toBe(1)
    expect(output).toMatch(new RegExp(`^npm start: .*${name}`, 'm'))
    expect(output).not.toMatch(/PostgreSQL|Kafka|listening/)
  })
})
