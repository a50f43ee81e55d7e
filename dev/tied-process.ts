// Child processes that never outlive this Node process (the dev Kafka, the test suite's private
// PostgreSQL and Redis), and the PATH lookup their launchers share.
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process'
import { accessSync, constants } from 'node:fs'
import { delimiter, join } from 'node:path'

/** Absolute path of an executable on PATH, or undefined. */
export function which(cmd: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (!dir) continue
    const file = join(dir, cmd)
    try {
      accessSync(file, constants.X_OK)
      return file
    } catch {}
  }
  return undefined
}

/**
 * Spawns `cmd` so that it dies with this Node process, even if Node is SIGKILLed (no 'exit'
 * handler runs then). On Linux, util-linux's `setpriv --pdeathsig KILL` sets the kernel's
 * parent-death signal (prctl PR_SET_PDEATHSIG) and then execs the command: the kernel itself
 * SIGKILLs it the moment its parent goes away, no polling, no process in between (so the pid
 * we signal is the command's own). Elsewhere (macOS has no setpriv) a small `sh` watchdog polls
 * both pids every second and kills the command once we are gone.
 * `options.uid`/`gid` (root only) switch user before setpriv runs, so the death signal, set
 * after the switch, is kept.
 */
export function spawnTied(cmd: string, args: string[], options: SpawnOptions = {}): ChildProcess {
  const setpriv = which('setpriv')
  if (setpriv) return spawn(setpriv, ['--pdeathsig', 'KILL', '--', cmd, ...args], options)
  const child = spawn(cmd, args, options)
  const watchdog = spawn('sh', ['-c',
    'while kill -0 "$1" 2>/dev/null && kill -0 "$2" 2>/dev/null; do sleep 1; done; kill -0 "$2" 2>/dev/null && kill -9 "$2"',
    'tied-process-watchdog', String(process.pid), String(child.pid)], { stdio: 'ignore' })
  watchdog.unref()
  return child
}
