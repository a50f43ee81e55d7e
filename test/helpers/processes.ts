// Starts a service as a real child process (`node <entry>`, Node runs the TypeScript itself), for end-to-end tests that go
// through the network like a client. Every process started here is stopped by its handle;
// the test keeps the handle (never kill by name).
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'

export { freePort } from '../../dev/free-port.ts'
import { freePort } from '../../dev/free-port.ts'

export { REPO_ROOT } from '../../dev/paths.ts'
import { REPO_ROOT } from '../../dev/paths.ts'

export interface ServiceProcess {
  child: ChildProcess
  url: string
  port: number
  /** The proxy's operators' listener (admin API, console, /metrics): ADMIN_PORT, a free port unless given. */
  opsUrl: string | undefined
  /** Everything the process printed so far (stdout + stderr). */
  output(): string
  /** SIGTERM, then SIGKILL after `graceMs`; resolves with the exit code (null if killed by signal). */
  stop(graceMs?: number): Promise<number | null>
}

export { waitForHttp } from '../../dev/wait-for-http.ts'
import { waitForHttp } from '../../dev/wait-for-http.ts'

/**
 * Starts `entry` (a path relative to the repository, e.g. 'monolith/server.ts') with `env`
 * added to a minimal environment, on `env.PORT` (a free port when absent), and waits until
 * `readyPath` answers 200.
 */
export async function startService(
  entry: string,
  env: Record<string, string>,
  opts: { readyPath?: string; timeoutMs?: number } = {},
): Promise<ServiceProcess> {
  const port = env.PORT ? Number(env.PORT) : await freePort()
  // The proxy listens twice: its operators' listener on a port of its own (never the default 9000: tests run side by side).
  const opsPort = entry === 'proxy/server.ts' && !env.ADMIN_SOCKET ? (env.ADMIN_PORT ? Number(env.ADMIN_PORT) : await freePort()) : undefined
  let output = ''
  const child = spawn(process.execPath, [entry], {
    cwd: REPO_ROOT,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', LOG_LEVEL: 'warn', ...env, PORT: String(port), HOST: '127.0.0.1', ...(opsPort === undefined ? {} : { ADMIN_PORT: String(opsPort) }) },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  child.stdout!.on('data', (d) => (output += d))
  child.stderr!.on('data', (d) => (output += d))
  const exited = once(child, 'exit')
  const url = `http://127.0.0.1:${port}`
  const opsUrl = opsPort === undefined ? undefined : `http://127.0.0.1:${opsPort}`

  const stop = async (graceMs = 10_000): Promise<number | null> => {
    if (child.exitCode !== null || child.signalCode !== null) return child.exitCode
    child.kill('SIGTERM')
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs)
    const [code] = (await exited) as [number | null]
    clearTimeout(timer)
    return code
  }

  try {
    await waitForHttp(url + (opts.readyPath ?? '/health'), {
      timeoutMs: opts.timeoutMs ?? 30_000,
      isAlive: () => child.exitCode === null && child.signalCode === null,
    })
  } catch (error) {
    await stop(2_000)
    throw new Error(`${entry} did not start: ${(error as Error).message}\n${output}`, { cause: error })
  }
  return { child, url, port, opsUrl, output: () => output, stop }
}

/**
 * Waits until a store's service knows it has applied the movie stream up to its end
 * (GET /internal/writer: catchingUp false; lib/replication/write-authority.ts): before that it
 * refuses writes (421) and, for the movies service, reads (503). A few hundred ms after a start.
 */
export async function untilCaughtUp(service: ServiceProcess, timeoutMs = 60_000): Promise<void> {
  const until = Date.now() + timeoutMs
  for (;;) {
    const state = await fetch(`${service.url}/internal/writer`, { signal: AbortSignal.timeout(5_000) })
      .then((r) => r.json() as Promise<{ catchingUp?: boolean; caughtUpSinceStart?: boolean }>)
      .catch(() => undefined)
    // This process, not an earlier one: the row in the store says what the last check found.
    if (state?.caughtUpSinceStart === true && state.catchingUp === false) return
    if (Date.now() > until) throw new Error(`${service.url} still catching up with the movie stream after ${timeoutMs} ms`)
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
}
