// A pinned tool built from its Go module (the Go module proxy is reachable everywhere this
// project runs; release tarballs are not), once per version into .cache/<tool>/<version>/
// (gitignored); later calls only check it exists. Used by dev/helm and dev/jaeger.
// The tools need a newer Go than some machines have (Debian 12's golang-go is 1.19): then the
// Go toolchain itself comes from the Go module proxy (module golang.org/toolchain, as Go 1.21+
// fetches its own toolchains), downloaded by the local go into .cache/go/<version>.
import { spawnSync } from 'node:child_process'
import { chmodSync, cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, renameSync, rmSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { REPO_ROOT } from './paths.ts'

export class GoBuildError extends Error {
  override readonly name: string = 'GoBuildError'
}

export interface GoBinary {
  /** Name of the binary, e.g. "helm". */
  name: string
  version: string
  /** Folder holding <version>/<name>, e.g. .cache/helm. */
  cacheDir: string
  /**
   * Writes the binary `name` into `outDir` with the go command `go` (run it with
   * GOTOOLCHAIN=local); throws GoBuildError when the build fails.
   */
  build(outDir: string, timeoutMs: number, go: string): void
}

export const GO_BUILD_TIMEOUT_MS = 20 * 60_000
const sleepSync = (ms: number) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms)

/** The oldest Go that builds the pinned tools (Helm's go.mod `go` line is the highest)… */
export const GO_MINIMUM = [1, 26] as const
/** …and the toolchain fetched from the Go module proxy when the local go is older. */
export const GO_TOOLCHAIN = 'go1.26.8'
const GO_CACHE_DIR = join(REPO_ROOT, '.cache', 'go')

/** [major, minor] of `go version` output ("go version go1.19.8 linux/amd64"), or undefined. */
export function parseGoVersion(output: string): [number, number] | undefined {
  const m = /\bgo(\d+)\.(\d+)/.exec(output.replace(/^go version /, ''))
  return m ? [Number(m[1]), Number(m[2])] : undefined
}

export function goIsRecentEnough(version: readonly [number, number] | undefined): boolean {
  return !!version && (version[0] > GO_MINIMUM[0] || (version[0] === GO_MINIMUM[0] && version[1] >= GO_MINIMUM[1]))
}

/**
 * The go command to build with: the local one when recent enough, else GO_TOOLCHAIN from
 * the Go module proxy (`go mod download golang.org/toolchain@v0.0.1-<version>.<os>-<arch>`,
 * which any module-aware go can run), kept in .cache/go/<version>.
 */
export function goToolchain(forTool: string): string {
  const local = spawnSync('go', ['version'], { encoding: 'utf8' })
  if (local.status !== 0) {
    throw new GoBuildError(`the Go toolchain is needed to build ${forTool} (\`go\` was not found on PATH): apt-get install -y golang-go (any version: a newer one is fetched when it is too old)`)
  }
  if (goIsRecentEnough(parseGoVersion(local.stdout))) return 'go'
  const goroot = join(GO_CACHE_DIR, GO_TOOLCHAIN)
  const fetched = join(goroot, 'bin', 'go')
  if (existsSync(fetched)) return fetched
  const goos = process.platform === 'win32' ? 'windows' : process.platform
  const goarch = ({ x64: 'amd64', arm64: 'arm64', ia32: '386' } as Record<string, string>)[process.arch] ?? process.arch
  const module = `golang.org/toolchain@v0.0.1-${GO_TOOLCHAIN}.${goos}-${goarch}`
  console.error(`${forTool}: ${local.stdout.trim()} is older than go${GO_MINIMUM.join('.')}; fetching ${module} from the Go module proxy`)
  const download = spawnSync('go', ['mod', 'download', '-json', module], {
    env: { ...process.env, GOFLAGS: '-modcacherw', GOTOOLCHAIN: 'local', GO111MODULE: 'on' },
    encoding: 'utf8',
    timeout: GO_BUILD_TIMEOUT_MS,
    maxBuffer: 16 * 1024 * 1024,
  })
  const dir = download.status === 0 ? (JSON.parse(download.stdout) as { Dir?: string }).Dir : undefined
  if (!dir) throw new GoBuildError(`go mod download ${module} failed (${download.error?.message ?? `exit ${download.status}`}):\n${download.stderr}${download.stdout}`)
  // A module zip keeps no file modes: the commands get their execute bit back, as Go does.
  mkdirSync(GO_CACHE_DIR, { recursive: true })
  const staging = mkdtempSync(join(GO_CACHE_DIR, 'fetch-'))
  try {
    cpSync(dir, staging, { recursive: true })
    const tools = readdirSync(join(staging, 'pkg', 'tool')).map((platform) => join(staging, 'pkg', 'tool', platform))
    for (const folder of [join(staging, 'bin'), ...tools]) for (const file of readdirSync(folder)) chmodSync(join(folder, file), 0o755)
    renameSync(staging, goroot)
  } catch (error) {
    rmSync(staging, { recursive: true, force: true })
    throw error
  }
  return fetched
}

export const goBinaryPath = (tool: GoBinary) => join(tool.cacheDir, tool.version, tool.name)

/** Returns the path of the pinned binary, building it the first time. */
export function ensureGoBinary(tool: GoBinary): string {
  const bin = goBinaryPath(tool)
  if (existsSync(bin)) return bin
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
      const go = goToolchain(tool.name)
      // Built into a private folder, then renamed: nobody ever sees a half-written binary.
      const buildDir = mkdtempSync(join(tool.cacheDir, 'build-'))
      try {
        tool.build(buildDir, GO_BUILD_TIMEOUT_MS, go)
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

/** `go install <packageAtVersion>` into `outDir` (GOBIN), statically linked: a GoBinary's build for a module without replace directives. */
export function goInstall(go: string, packageAtVersion: string, options: { outDir: string; ldflags: string; timeoutMs: number }): void {
  const result = spawnSync(go, ['install', '-trimpath', `-ldflags=${options.ldflags}`, packageAtVersion], {
    env: { ...process.env, GOBIN: options.outDir, CGO_ENABLED: '0', GOTOOLCHAIN: 'local' },
    encoding: 'utf8',
    timeout: options.timeoutMs,
  })
  if (result.status !== 0) throw new GoBuildError(`go install ${packageAtVersion} failed (${result.error?.message ?? `exit ${result.status}`}):\n${result.stderr}`)
}

/**
 * `npm run <tool>:warm`: builds (or finds) the pinned binary and says where it is, in how long;
 * a failed build is one line on stderr and exit 1. `describe` names the binary in that line.
 */
export function warmGoBinary(script: string, ensure: () => string, describe: (bin: string) => string): void {
  const started = Date.now()
  try {
    const bin = ensure()
    console.log(`${describe(bin)} ready at ${bin} (${((Date.now() - started) / 1000).toFixed(1)}s)`)
  } catch (error) {
    console.error(error instanceof GoBuildError ? `${script}: ${error.message}` : error)
    process.exit(1)
  }
}
