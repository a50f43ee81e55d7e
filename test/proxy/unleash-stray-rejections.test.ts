// The one kind of unhandled rejection the proxy ignores (proxy/flags/unleash-stray-rejections.ts).
import { describe, expect, it } from 'vitest'
import { isStrayUnleashFetchRejection } from '../../proxy/flags/unleash-stray-rejections.ts'

const fetchError = (message: string) => Object.assign(new Error(message), { name: 'FetchError' })

describe('isStrayUnleashFetchRejection', () => {
  it("matches unleash-client's FetchErrors for the Unleash client API", () => {
    expect(isStrayUnleashFetchRejection(fetchError('request to http://127.0.0.1:28342/api/client/features failed, reason: connect ECONNREFUSED 127.0.0.1:28342'))).toBe(true)
    expect(isStrayUnleashFetchRejection(fetchError('request to https://unleash.internal/api/client/register failed, reason: socket hang up'))).toBe(true)
  })

  it('matches nothing else', () => {
    expect(isStrayUnleashFetchRejection(fetchError('request to http://127.0.0.1:8080/api/users failed, reason: connect ECONNREFUSED'))).toBe(false)
    expect(isStrayUnleashFetchRejection(new Error('request to http://x/api/client/features failed'))).toBe(false)
    expect(isStrayUnleashFetchRejection(new TypeError('Cannot read properties of undefined'))).toBe(false)
    expect(isStrayUnleashFetchRejection(undefined)).toBe(false)
    expect(isStrayUnleashFetchRejection('request to http://x/api/client/features failed')).toBe(false)
  })
})
