// Vegeta, the constant-rate HTTP load generator that bench/constant-rate.ts drives, built from
// its Go module as dev/helm builds Helm, once per pinned version into .cache/vegeta/<version>/vegeta.
// Its go.mod has no replace directives, so `go install module@version` builds it directly.
//
//   const vegeta = ensureVegeta()             // path of the binary, builds it the first time
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { ensureGoBinary, goInstall, warmGoBinary, type GoBinary } from '../go-binary.ts'
import { REPO_ROOT } from '../paths.ts'

export const VEGETA_VERSION = 'v12.13.0'
const MODULE = 'github.com/tsenart/vegeta/v12'

const vegeta: GoBinary = {
  name: 'vegeta',
  version: VEGETA_VERSION,
  cacheDir: join(REPO_ROOT, '.cache', 'vegeta'),
  build(outDir, timeoutMs, go) {
    // main.Version is what `vegeta -version` prints (its Makefile sets it the same way).
    goInstall(go, `${MODULE}@${VEGETA_VERSION}`, { outDir, ldflags: `-s -w -X main.Version=${VEGETA_VERSION}`, timeoutMs })
  },
}

/** Returns the path of the pinned vegeta binary, building it if needed (a minute or so, the first time). */
export const ensureVegeta = (): string => ensureGoBinary(vegeta)

// `npm run vegeta:warm`: build (or find) the pinned vegeta and say where it is.
if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) warmGoBinary('vegeta:warm', ensureVegeta, () => `vegeta ${VEGETA_VERSION}`)
