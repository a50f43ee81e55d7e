// The one polling helper of the tests: for changes that take effect asynchronously (a file
// watcher, a consumer, a breaker's timer on real time). Bounded; the message says what was awaited.
import { setTimeout as sleep } from 'node:timers/promises'

/** Polls `check` every 50 ms until it holds; fails naming `what` after `timeoutMs`. */
export async function eventually(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for: ${what}`)
    await sleep(50)
  }
}
