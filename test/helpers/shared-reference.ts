// The original system's reference files (../shared/reference/ beside the clone, as CI lays it
// out): where the tests find the legacy OpenAPI contract.
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { REPO_ROOT } from './processes.ts'

/** Folders that may hold reference/: SHARED_DIR, beside the clone, or beside a worktree's parent. */
const CANDIDATES = [process.env.SHARED_DIR, join(REPO_ROOT, '..', 'shared'), join(REPO_ROOT, '..', '..', 'shared')].filter((dir): dir is string => !!dir)

/** The legacy contract, api-specification.yaml; throws naming where it looked. */
export function legacySpecFile(): string {
  const files = CANDIDATES.map((dir) => join(dir, 'reference', 'api-specification.yaml'))
  const found = files.find((file) => existsSync(file))
  if (!found) throw new Error(`the legacy contract is not at any of ${files.join(', ')} (set SHARED_DIR to the folder holding reference/)`)
  return found
}
