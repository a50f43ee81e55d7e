// A bounded run of a real OpenAPI fuzzer (schemathesis, from PyPI, in a virtualenv under
// .cache that .ci/run installs) against the legacy specification
// (../shared/reference/api-specification.yaml), through the proxy process in front of the real
// monolith and movies-service on a test database (a stub in place of the events service, which
// needs Kafka). Fails on any 5xx (check not_a_server_error) or if a service process dies.
import { spawn } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { SCHEMATHESIS } from '../helpers/prerequisites.ts'
import { legacySpecFile } from '../helpers/shared-reference.ts'
import { flagsFileAt } from './proxy-harness.ts'
import { startRealStack, type RealStack } from './real-stack.ts'

const MAX_EXAMPLES = process.env.FUZZ_MAX_EXAMPLES ?? '25'

let stack: RealStack

beforeAll(async () => {
  stack = await startRealStack({ FLAGS_FILE: flagsFileAt(50), RATE_LIMIT_MAX: '0' })
})
afterAll(() => stack?.stop())

/** The signature of python/cpython#106905 in a Python traceback. */
const CPYTHON_AST_BUG = /SystemError: AST constructor recursion depth mismatch/

function run(args: string[], cwd: string, timeoutMs: number): Promise<{ code: number | null; output: string }> {
  return new Promise((done) => {
    const child = spawn(SCHEMATHESIS, args, { cwd, env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', NO_COLOR: '1', SCHEMATHESIS_TELEMETRY: 'false' } })
    let output = ''
    child.stdout.on('data', (d) => (output += d))
    child.stderr.on('data', (d) => (output += d))
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs)
    // Not started at all (e.g. a virtualenv whose Python has moved): fail now, not at the timeout.
    child.on('error', (error) => {
      clearTimeout(timer)
      done({ code: null, output: `schemathesis did not start: ${error.message} (bash .ci/run rebuilds the virtualenv)` })
    })
    child.on('exit', (code) => {
      clearTimeout(timer)
      done({ code, output })
    })
  })
}

describe('schemathesis through the proxy', () => {
  it('finds no 5xx and no crash in a bounded run over the whole specification', async () => {
    const spec = legacySpecFile()
    expect(existsSync(SCHEMATHESIS), 'schemathesis in .cache/schemathesis-venv (bash .ci/run installs it)').toBe(true)
    // Run in a scratch folder: schemathesis keeps its cache (.schemathesis/) in the working directory.
    const scratch = mkdtempSync(join(tmpdir(), 'schemathesis-'))
    const report = join(scratch, 'junit.xml')
    const fuzz = () =>
      run(
        [
          'run', spec, '--url', stack.proxy.url,
          '--checks', 'not_a_server_error',
          '--max-examples', MAX_EXAMPLES, '--seed', '10', '--workers', '2',
          '--request-timeout', '10', '--report', 'junit', '--report-junit-path', report,
        ],
        scratch,
        240_000,
      )
    let { code, output } = await fuzz()
    // CPython 3.11's AST constructor can raise a spurious SystemError inside the fuzzer's own
    // process (python/cpython#106905, seen from hypothesis describing a filter): that is no
    // finding about the proxy, so that crash alone, with every case passed, earns one more run.
    if (code !== 0 && CPYTHON_AST_BUG.test(output) && /\b(\d+) generated, \1 passed\b/.test(output)) {
      console.log('schemathesis: its Python hit python/cpython#106905 (no finding); running it once more')
      ;({ code, output } = await fuzz())
    }
    const cases = /(\d+) generated/.exec(output)?.[1]
    // One line in the log; the report's tail only when the run failed (the assertion's message).
    console.log(`schemathesis: ${cases ?? '?'} test cases generated; exit ${code}`)
    expect(code, output.slice(-4_000)).toBe(0)
    expect(Number(cases)).toBeGreaterThan(50)
    expect(readFileSync(report, 'utf8')).toMatch(/<testsuite/)
    // Every process is still up and the proxy still serves.
    for (const p of [stack.monolith, stack.movies, stack.proxy]) expect(p.child.exitCode).toBeNull()
    expect((await fetch(`${stack.proxy.url}/api/users`)).status).toBe(200)
  }, 300_000)
})
