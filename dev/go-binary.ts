// A pinned tool built from its Go module (the Go module proxy is reachable everywhere this
// project runs; release tarballs are not), once per version into .cache/<tool>/<version>/
// (gitignored); later calls only check it exists. Used by dev/helm and dev/jaeger.
import { spawnSync } from 'node:child_process'
import { chmodSync, existsSync, mkdirSync, mkdtempSync, renameSync, rmSync, statSync } from 'node:fs'
import { join } from 'node:path'

export class GoBuildError extends Error {
  override readonly name: string = 'GoBuildError'
}

export interface GoBinary {
  /** Name of the binary, e.g. "helm". */
  name: string
  version: string
  /** Folder holding <version>/<name>, e.g. .cache/helm. */
  cacheDir: string
  /** Writes the binary `name` into `outDir`; throws GoBuildError when the build fails. */
  build(outDir: string, timeoutMs: number): void
}

export const GO_BUILD_TIMEOUT_MS = 20 * 60_000
const sleepSync = (ms: number) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms)

export const goBinaryPath = (tool: GoBinary) => join(tool.cacheDir, tool.version, tool.name)

/** Returns the path of the pinned binary, building it the first time. */
export function ensureGoBinary(tool: GoBinary): string {
  const bin = goBinaryPath(tool)
  if (existsSync(bin)) return bin
  const go = spawnSync('go', ['version'], { encoding: 'utf8' })
  if (go.status !== 0) throw new GoBuildError(`the Go toolchain is needed to build ${tool.name} (\`go\` was not found on PATH)`)
  mkdirSync(join(tool.cacheDir, tool.version), { recursive: true })
  // One build at a time (test workers start together): mkdir is atomic. A lock older than
  // the build timeout was left by a killed process.
  const lock = join(tool.cacheDir, `${tool.version}.lock`)
  const deadline = Date.now() + GO_BUILD_TIMEOUT_MS
  for (;;) {
    try {
      mkdirSync(lock)
      break
    } catch {
      if (existsSync(bin)) return bin
      const age = Date.now() - (statSync(lock, { throwIfNoEntry: false })?.mtimeMs ?? Date.now())
      if (age > GO_BUILD_TIMEOUT_MS) rmSync(lock, { recursive: true, force: true })
      else if (Date.now() > deadline) throw new GoBuildError(`timed out waiting for another build of ${tool.name} (lock ${lock})`)
      else sleepSync(1_000)
    }
  }
  try {
    if (!existsSync(bin)) {
      // Built into a private folder, then renamed: nobody ever sees a half-written binary.
      const buildDir = mkdtempSync(join(tool.cacheDir, 'build-'))
      try {
        tool.build(buildDir, GO_BUILD_TIMEOUT_MS)
        chmodSync(join(buildDir, tool.name), 0o755)
        renameSync(join(buildDir, tool.name), bin)
      } finally {
        rmSync(buildDir, { recursive: true, force: true })
      }
    }
  } finally {
    rmSync(lock, { recursive: true, force: true })
  }
  return bin
}
