// Real Helm 3 for the deployment tests, built from its Go module (the Go module proxy is
// reachable everywhere this project runs; release tarballs are not). Built once per pinned
// version into .cache/helm/<version>/helm (gitignored); later calls only check it exists.
// Helm needs a newer Go than some machines have: dev/go-binary.ts then fetches one.
//
//   const helm = ensureHelm()                 // path of the binary, builds it the first time
//   runHelm(['template', 'x', 'k8s/cinemaabyss'])
import { spawnSync } from 'node:child_process'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { ensureGoBinary, goBinaryPath, GoBuildError, goInstall, warmGoBinary, type GoBinary } from '../go-binary.ts'
import { REPO_ROOT } from '../paths.ts'

/** A released Helm 3 that builds with the Go toolchain installed here (Go 1.26). */
export const HELM_VERSION = 'v3.21.4'
/** Kubernetes version that Helm release's client-go (v0.36) speaks; `helm template` and
 *  `helm lint` check charts against it. Set the way Helm's own Makefile does. */
const KUBE_MINOR = '36'

const CACHE_DIR = join(REPO_ROOT, '.cache', 'helm')

const helm: GoBinary = {
  name: 'helm',
  version: HELM_VERSION,
  cacheDir: CACHE_DIR,
  build(outDir, timeoutMs, go) {
    const ldflags = [
      '-s -w',
      `-X helm.sh/helm/v3/internal/version.version=${HELM_VERSION}`,
      ...['pkg/lint/rules', 'pkg/chartutil'].flatMap((pkg) => [
        `-X helm.sh/helm/v3/${pkg}.k8sVersionMajor=1`,
        `-X helm.sh/helm/v3/${pkg}.k8sVersionMinor=${KUBE_MINOR}`,
      ]),
    ].join(' ')
    goInstall(go, `helm.sh/helm/v3/cmd/helm@${HELM_VERSION}`, { outDir, ldflags, timeoutMs })
  },
}
export const HELM_BIN = goBinaryPath(helm)

export class HelmBuildError extends GoBuildError {
  override readonly name = 'HelmBuildError'
}

/** Returns the path of the pinned helm binary, building it with `go install` if needed. */
export function ensureHelm(): string {
  try {
    return ensureGoBinary(helm)
  } catch (error) {
    if (error instanceof GoBuildError && !(error instanceof HelmBuildError)) throw new HelmBuildError(error.message)
    throw error
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
  warmGoBinary('helm:warm', ensureHelm, (bin) => `helm ${HELM_VERSION} (${spawnSync(bin, ['version', '--short'], { encoding: 'utf8' }).stdout.trim()})`)
}
