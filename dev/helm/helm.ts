// Real Helm 3 for the deployment tests, built from its Go module (the Go module proxy is
// reachable everywhere this project runs; release tarballs are not). Built once per pinned
// version into .cache/helm/<version>/helm (gitignored); later calls only check it exists.
// Helm needs a newer Go than some machines have (Debian 12's golang-go is 1.19): then the Go
// toolchain itself comes from the Go module proxy (module golang.org/toolchain, as Go 1.21+
// fetches its own toolchains), downloaded by the local go into .cache/go/<version>.
//
//   const helm = ensureHelm()                 // path of the binary, builds it the first time
//   runHelm(['template', 'x', 'k8s/cinemaabyss'])
import { spawnSync } from 'node:child_process'
import { chmodSync, cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, renameSync, rmSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { REPO_ROOT } from '../paths.ts'

/** A released Helm 3 that builds with the Go toolchain installed here (Go 1.26). */
export const HELM_VERSION = 'v3.21.4'
/** Kubernetes version that Helm release's client-go (v0.36) speaks; `helm template` and
 *  `helm lint` check charts against it. Set the way Helm's own Makefile does. */
const KUBE_MINOR = '36'

const CACHE_DIR = join(REPO_ROOT, '.cache', 'helm')
export const HELM_BIN = join(CACHE_DIR, HELM_VERSION, 'helm')

/** The oldest Go that builds HELM_VERSION (its go.mod's `go` line)… */
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
 * The go command to build Helm with: the local one when recent enough, else GO_TOOLCHAIN from
 * the Go module proxy (`go mod download golang.org/toolchain@v0.0.1-<version>.<os>-<arch>`,
 * which any module-aware go can run), kept in .cache/go/<version>.
 */
export function goForHelm(): string {
  const local = spawnSync('go', ['version'], { encoding: 'utf8' })
  if (local.status !== 0) {
    throw new HelmBuildError('the Go toolchain is needed to build Helm (`go` was not found on PATH): apt-get install -y golang-go (any version: a newer one is fetched when it is too old)')
  }
  if (goIsRecentEnough(parseGoVersion(local.stdout))) return 'go'
  const goroot = join(GO_CACHE_DIR, GO_TOOLCHAIN)
  const fetched = join(goroot, 'bin', 'go')
  if (existsSync(fetched)) return fetched
  const goos = process.platform === 'win32' ? 'windows' : process.platform
  const goarch = ({ x64: 'amd64', arm64: 'arm64', ia32: '386' } as Record<string, string>)[process.arch] ?? process.arch
  const module = `golang.org/toolchain@v0.0.1-${GO_TOOLCHAIN}.${goos}-${goarch}`
  console.error(`helm: ${local.stdout.trim()} is older than go${GO_MINIMUM.join('.')}; fetching ${module} from the Go module proxy`)
  const download = spawnSync('go', ['mod', 'download', '-json', module], {
    env: { ...process.env, GOFLAGS: '-modcacherw', GOTOOLCHAIN: 'local', GO111MODULE: 'on' },
    encoding: 'utf8',
    timeout: BUILD_TIMEOUT_MS,
    maxBuffer: 16 * 1024 * 1024,
  })
  const dir = download.status === 0 ? (JSON.parse(download.stdout) as { Dir?: string }).Dir : undefined
  if (!dir) throw new HelmBuildError(`go mod download ${module} failed (${download.error?.message ?? `exit ${download.status}`}):\n${download.stderr}${download.stdout}`)
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

export class HelmBuildError extends Error {
  override readonly name = 'HelmBuildError'
}

const BUILD_TIMEOUT_MS = 20 * 60_000
const sleepSync = (ms: number) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms)

/** Returns the path of the pinned helm binary, building it with `go install` if needed. */
export function ensureHelm(): string {
  if (existsSync(HELM_BIN)) return HELM_BIN
  mkdirSync(join(CACHE_DIR, HELM_VERSION), { recursive: true })
  // One build at a time (test workers start together): mkdir is atomic. A lock older than
  // the build timeout was left by a killed process.
  const lock = join(CACHE_DIR, `${HELM_VERSION}.lock`)
  const deadline = Date.now() + BUILD_TIMEOUT_MS
  for (;;) {
    try {
      mkdirSync(lock)
      break
    } catch {
      if (existsSync(HELM_BIN)) return HELM_BIN
      const age = Date.now() - (statSync(lock, { throwIfNoEntry: false })?.mtimeMs ?? Date.now())
      if (age > BUILD_TIMEOUT_MS) rmSync(lock, { recursive: true, force: true })
      else if (Date.now() > deadline) throw new HelmBuildError(`timed out waiting for another build of Helm (lock ${lock})`)
      else sleepSync(1_000)
    }
  }
  try {
    if (!existsSync(HELM_BIN)) build(goForHelm())
  } finally {
    rmSync(lock, { recursive: true, force: true })
  }
  return HELM_BIN
}

function build(go: string): void {
  // Build into a private folder, then rename: nobody ever sees a half-written binary.
  const buildDir = mkdtempSync(join(CACHE_DIR, 'build-'))
  try {
    const ldflags = [
      '-s -w',
      `-X helm.sh/helm/v3/internal/version.version=${HELM_VERSION}`,
      ...['pkg/lint/rules', 'pkg/chartutil'].flatMap((pkg) => [
        `-X helm.sh/helm/v3/${pkg}.k8sVersionMajor=1`,
        `-X helm.sh/helm/v3/${pkg}.k8sVersionMinor=${KUBE_MINOR}`,
      ]),
    ].join(' ')
    const result = spawnSync(go, ['install', '-trimpath', `-ldflags=${ldflags}`, `helm.sh/helm/v3/cmd/helm@${HELM_VERSION}`], {
      env: { ...process.env, GOBIN: buildDir, CGO_ENABLED: '0', GOTOOLCHAIN: 'local' },
      encoding: 'utf8',
      timeout: BUILD_TIMEOUT_MS,
    })
    if (result.status !== 0) {
      throw new HelmBuildError(`go install helm.sh/helm/v3/cmd/helm@${HELM_VERSION} failed (${result.error?.message ?? `exit ${result.status}`}):\n${result.stderr}`)
    }
    chmodSync(join(buildDir, 'helm'), 0o755)
    renameSync(join(buildDir, 'helm'), HELM_BIN)
  } finally {
    rmSync(buildDir, { recursive: true, force: true })
  }
}

export interface HelmResult {
  status: number
  stdout: string
  stderr: string
}

/** Runs the pinned helm with its config, cache and data kept under .cache (never $HOME). */
export function runHelm(args: readonly string[], opts: { cwd?: string } = {}): HelmResult {
  const bin = ensureHelm()
  const home = join(CACHE_DIR, 'home')
  const result = spawnSync(bin, args, {
    cwd: opts.cwd ?? REPO_ROOT,
    encoding: 'utf8',
    timeout: 120_000,
    maxBuffer: 64 * 1024 * 1024,
    env: {
      ...process.env,
      HELM_CACHE_HOME: join(home, 'cache'),
      HELM_CONFIG_HOME: join(home, 'config'),
      HELM_DATA_HOME: join(home, 'data'),
    },
  })
  if (result.error) throw result.error
  return { status: result.status ?? -1, stdout: result.stdout, stderr: result.stderr }
}

// `npm run helm:warm`: build (or find) the pinned helm and say where it is.
if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const started = Date.now()
  try {
    const bin = ensureHelm()
    const version = spawnSync(bin, ['version', '--short'], { encoding: 'utf8' }).stdout.trim()
    console.log(`helm ${HELM_VERSION} (${version}) ready at ${bin} (${((Date.now() - started) / 1000).toFixed(1)}s)`)
  } catch (error) {
    console.error(error instanceof HelmBuildError ? `helm:warm: ${error.message}` : error)
    process.exit(1)
  }
}
