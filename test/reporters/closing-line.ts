import type { Reporter, TestModule } from 'vitest/node'

/**
 * Ends the run with one plain line, `tests: N passed, N failed` (`, N skipped` when there are
 * any), after vitest's own summary. CI logs are read by tools that know the closing lines of
 * common runners but not vitest's "Tests  N passed (N)"; this line is the form they all read.
 */
export default class ClosingLineReporter implements Reporter {
  onTestRunEnd(testModules: ReadonlyArray<TestModule>): void {
    let passed = 0
    let failed = 0
    let skipped = 0
    for (const module of testModules) {
      const failedBefore = failed
      for (const test of module.children.allTests()) {
        const state = test.result().state
        if (state === 'passed') passed++
        else if (state === 'failed') failed++
        else skipped++
      }
      // A file that failed without a failed test (it did not load, a hook threw): the run did not pass.
      if (module.state() === 'failed' && failed === failedBefore) failed++
    }
    process.stdout.write(`\ntests: ${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}\n`)
  }
}
