// dev/helm on a machine whose Go is too old for Helm (Debian 12's golang-go is 1.19): the
// decision to fetch Go's toolchain from the Go module proxy instead of failing the build.
import { describe, expect, it } from 'vitest'
import { GO_MINIMUM, GO_TOOLCHAIN, goIsRecentEnough, parseGoVersion } from '../../dev/go-binary.ts'
import { readRepoFile } from './support.ts'

describe('the Go that builds Helm', () => {
  it('reads `go version` as Debian 12, backports and upstream print it', () => {
    expect(parseGoVersion('go version go1.19.8 linux/amd64')).toEqual([1, 19])
    expect(parseGoVersion('go version go1.26.8 linux/amd64')).toEqual([1, 26])
    expect(parseGoVersion('go version go1.26rc1 linux/arm64')).toEqual([1, 26])
    expect(parseGoVersion('go version devel +abc linux/amd64')).toBeUndefined()
  })

  it('fetches a toolchain when the local go is older than the go line of Helm\'s go.mod', () => {
    expect(goIsRecentEnough([1, 19])).toBe(false) // Debian 12
    expect(goIsRecentEnough([1, 25])).toBe(false)
    expect(goIsRecentEnough([1, 26])).toBe(true)
    expect(goIsRecentEnough([2, 0])).toBe(true)
    expect(goIsRecentEnough(undefined)).toBe(false)
  })

  it('the fetched toolchain is itself recent enough, and CI caches it with the Helm build', () => {
    expect(goIsRecentEnough(parseGoVersion(GO_TOOLCHAIN))).toBe(true)
    expect(GO_TOOLCHAIN.startsWith(`go${GO_MINIMUM.join('.')}`)).toBe(true)
    expect(readRepoFile('.github/workflows/ci.yml')).toContain("hashFiles('dev/kafka/pom.xml', 'dev/helm/helm.ts'")
  })
})
