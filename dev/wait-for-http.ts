// Waiting for a started process to answer over HTTP: used by the tests and the benchmarks.

/** Polls `url` until it answers `status` (default 200), bounded by `timeoutMs`. */
export async function waitForHttp(url: string, opts: { timeoutMs?: number; status?: number; isAlive?: () => boolean } = {}): Promise<void> {
  const deadline = Date.now() + (opts.timeoutMs ?? 30_000)
  let last = ''
  while (Date.now() < deadline) {
    if (opts.isAlive && !opts.isAlive()) throw new Error(`process exited while waiting for ${url}`)
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(1_000) })
      if (res.status === (opts.status ?? 200)) return
      last = `status ${res.status}`
    } catch (error) {
      last = (error as Error).message
    }
    await new Promise((r) => setTimeout(r, 100))
  }
  throw new Error(`${url} not ready after ${opts.timeoutMs ?? 30_000} ms (${last})`)
}
