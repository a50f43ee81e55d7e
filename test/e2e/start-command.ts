// Runs the command of package.json's start script (without npm itself: npm re-raises a SIGINT
// it receives on itself, hiding the script's exit code) in its own process group, as a
// terminal's foreground job, and waits for its banner.
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { REPO_ROOT } from '../helpers/processes.ts'

export interface StartedSystem {
  child: ChildProcess
  output(): string
  /** SIGINT to the whole process group, as Ctrl-C; resolves with the exit code. */
  interrupt(): Promise<number | null>
  /** Last resort in afterAll: SIGKILL the group if it is still running. */
  kill(): Promise<void>
}

export async function runStartCommand(env: Record<string, string | undefined>, timeoutMs: number): Promise<StartedSystem> {
  const [bin, ...args] = (JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')).scripts.start as string).split(' ')
  // `node dev/start/main.ts`: this Node (npm would run the one first on PATH); a package's bin otherwise.
  const command = bin === 'node' ? process.execPath : join(REPO_ROOT, 'node_modules', '.bin', bin!)
  const child = spawn(command, args, {
    cwd: REPO_ROOT,
    // Only what a shell has, plus what the test sets.
    env: { PATH: process.env.PATH, HOME: process.env.HOME, JAVA_HOME: process.env.JAVA_HOME, ...env },
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let output = ''
  child.stdout!.on('data', (d) => (output += d))
  child.stderr!.on('data', (d) => (output += d))
  const exited = once(child, 'exit')
  const running = () => child.exitCode === null && child.signalCode === null
  const system: StartedSystem = {
    child,
    output: () => output,
    async interrupt() {
      if (running()) process.kill(-child.pid!, 'SIGINT')
      const [code] = (await exited) as [number | null]
      return code
    },
    async kill() {
      if (running()) process.kill(-child.pid!, 'SIGKILL')
      await exited
    },
  }
  const deadline = Date.now() + timeoutMs
  while (!/CinemaAbyss edge is running/.test(output)) {
    if (!running()) throw new Error(`npm start exited with ${child.exitCode}:\n${output}`)
    if (Date.now() > deadline) {
      await system.kill()
      throw new Error(`npm start not ready after ${timeoutMs / 1000} s:\n${output}`)
    }
    await new Promise((r) => setTimeout(r, 250))
  }
  return system
}
