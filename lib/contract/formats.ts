// The string formats of the OpenAPI contract, checked as the legacy accepted them: what the Go
// program parsed (RFC 3339 timestamps) or what the specification means (an e-mail address,
// internationalised ones included). Registered on the ajv of the services that port the legacy
// API (createHttpApp's `formats`), replacing ajv-formats' ASCII-only email and lenient date-time.
import { isEmailValid } from '@hapi/address'

/** A date-time split into what comparisons need: whole seconds since the epoch and the fraction's digits. */
export interface Rfc3339Instant {
  epochSeconds: number
  /** Fraction of a second, 9 digits (nanoseconds), as Go keeps it. */
  nanos: string
}

// Go's time.RFC3339 as encoding/json parses it: four-digit year, upper-case T and Z, optional
// fraction of any length after a dot, numeric offset ±HH:MM.
const RFC3339 = /^(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:\.(\d+))?(?:Z|([+-])(\d\d):(\d\d))$/

const DAYS_IN_MONTH = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]
const isLeap = (y: number) => (y % 4 === 0 && y % 100 !== 0) || y % 400 === 0
const daysIn = (year: number, month: number) => (month === 2 && isLeap(year) ? 29 : DAYS_IN_MONTH[month - 1])

/** Parses an RFC 3339 date-time the way Go does (ranges checked: no 30 February, no second 60); undefined if it is not one. */
export function parseRfc3339(value: string): Rfc3339Instant | undefined {
  const m = RFC3339.exec(value)
  if (!m) return undefined
  const [year, month, day, hour, minute, second] = m.slice(1, 7).map(Number)
  const [sign, offsetHours = 0, offsetMinutes = 0] = [m[8], Number(m[9] ?? 0), Number(m[10] ?? 0)]
  if (month < 1 || month > 12 || day < 1 || day > daysIn(year, month)) return undefined
  if (hour > 23 || minute > 59 || second > 59 || offsetHours > 23 || offsetMinutes > 59) return undefined
  const local = new Date(0)
  local.setUTCFullYear(year, month - 1, day) // not Date.UTC, which maps years 0-99 to 1900-1999
  local.setUTCHours(hour, minute, second, 0)
  const offset = (sign === '-' ? -1 : 1) * (offsetHours * 3600 + offsetMinutes * 60)
  return { epochSeconds: local.getTime() / 1000 - offset, nanos: (m[7] ?? '').slice(0, 9).padEnd(9, '0') }
}

/** Negative, zero or positive as `a` is before, at or after `b` (both valid RFC 3339). */
export function compareRfc3339(a: string, b: string): number {
  const x = parseRfc3339(a)
  const y = parseRfc3339(b)
  if (!x || !y) throw new TypeError('compareRfc3339: not RFC 3339 date-times')
  return x.epochSeconds - y.epochSeconds || (x.nanos < y.nanos ? -1 : x.nanos > y.nanos ? 1 : 0)
}

/**
 * An e-mail address, internationalised ones included (RFC 6531: `ю@пример.рф`): a local part
 * and a domain of at least two labels. No top-level-domain list: the legacy stored any address.
 */
export function isEmailAddress(value: string): boolean {
  return isEmailValid(value)
}

/** ajv formats for createHttpApp: the contract's `email` and `date-time`. */
export const contractFormats = {
  email: isEmailAddress,
  'date-time': (value: string) => parseRfc3339(value) !== undefined,
}
