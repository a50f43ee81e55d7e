// The two places the legacy's formats live: PostgreSQL's timestamptz text → Go's RFC 3339
// (lib/db/timestamptz.ts), and the contract's input formats (lib/contract/formats.ts).
import { describe, expect, it } from 'vitest'
import { compareRfc3339, isEmailAddress, parseRfc3339 } from '../../lib/contract/formats.ts'
import { formatTimestamptz } from '../../lib/db/timestamptz.ts'

describe('formatTimestamptz', () => {
  it.each([
    ['2026-01-01 00:00:00.123456+00', '2026-01-01T00:00:00.123456Z'],
    ['2026-01-01 00:00:00.12+00', '2026-01-01T00:00:00.12Z'],
    ['2026-01-01 00:00:00+00', '2026-01-01T00:00:00Z'],
    ['2026-01-01 03:00:00.5+03', '2026-01-01T00:00:00.5Z'],
    ['2025-12-31 18:30:00-05:30', '2026-01-01T00:00:00Z'],
    ['0017-03-04 07:36:24.5+02:30:17', '0017-03-04T05:06:07.5Z'],
    ['0037-01-01 00:00:00+00', '0037-01-01T00:00:00Z'],
    ['9999-12-31 23:59:59.999999+00', '9999-12-31T23:59:59.999999Z'],
    ['0001-12-31 23:00:00+00 BC', '0000-12-31T23:00:00Z'],
    ['infinity', 'infinity'],
  ])('%s -> %s', (text, rfc3339) => {
    expect(formatTimestamptz(text)).toBe(rfc3339)
  })

  it('refuses text it does not understand rather than guessing', () => {
    expect(() => formatTimestamptz('01/02/2026 00:00:00 UTC')).toThrow(/DateStyle/)
  })
})

describe('date-time as Go parses RFC 3339', () => {
  it.each(['2026-01-01T00:00:00Z', '2026-01-01T00:00:00.123456789Z', '2024-02-29T23:59:59+14:00', '0000-01-01T00:00:00-00:00', '9999-12-31T23:59:59.9Z'])('accepts %s', (v) => {
    expect(parseRfc3339(v)).toBeDefined()
  })
  it.each(['2026-01-01', '2026-01-01 00:00:00Z', '2026-01-01t00:00:00z', '2026-01-01T00:00:00', '2026-1-01T00:00:00Z', '2025-02-29T00:00:00Z', '2026-04-31T00:00:00Z', '2026-01-01T24:00:00Z', '2026-01-01T00:60:00Z', '2026-01-01T00:00:60Z', '2026-01-01T00:00:00+24:00', '2026-01-01T00:00:00.Z', '12026-01-01T00:00:00Z', 'now'])(
    'refuses %s',
    (v) => {
      expect(parseRfc3339(v)).toBeUndefined()
    },
  )
  it('orders instants to the nanosecond across offsets and years 0-99', () => {
    expect(compareRfc3339('2026-01-01T00:00:00.000000001Z', '2026-01-01T00:00:00Z')).toBeGreaterThan(0)
    expect(compareRfc3339('2026-01-01T03:00:00+03:00', '2026-01-01T00:00:00.000Z')).toBe(0)
    expect(compareRfc3339('0017-01-01T00:00:00Z', '1917-01-01T00:00:00Z')).toBeLessThan(0)
  })
})

describe('email', () => {
  it.each(['user1@example.com', 'ю@пример.рф', 'пользователь@mail.ru', 'test@例え.テスト', 'a@b.c', 'first.last+tag@sub.example.org', 'a@xn--e1afmkfd.xn--p1ai'])('accepts %s', (v) => {
    expect(isEmailAddress(v)).toBe(true)
  })
  it.each(['', 'not-an-email', 'user@', '@example.com', 'a b@example.com', 'a@b..c', 'a@-b.c', 'a.@b.c', 'user@localhost', 'a@b.c\u0000', ' a@b.c'])('refuses %j', (v) => {
    expect(isEmailAddress(v)).toBe(false)
  })
})
