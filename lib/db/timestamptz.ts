// timestamptz values as the legacy Go program wrote them: RFC 3339 in UTC ("Z"), microseconds
// kept, the fraction's trailing zeros trimmed and no fraction when it is zero — what Go's
// time.Time JSON encoding prints for a value lib/pq read from PostgreSQL.
//
// Both drivers (pg and PGlite) hand timestamptz columns to formatTimestamptz as PostgreSQL's text
// (e.g. `2026-01-01 03:00:00.1234+03`, `0001-12-31 23:00:00+00 BC`), never as a JS Date: a Date
// keeps milliseconds only, and PGlite's own parser reads years 0001-0099 wrongly.

/** OID of timestamptz, for the drivers' type-parser tables. */
export const TIMESTAMPTZ_OID = 1184

// DateStyle ISO output: date, time, optional fraction, offset [+-]HH[:MM[:SS]], optional " BC".
const PG_TIMESTAMPTZ = /^(\d{4,})-(\d\d)-(\d\d) (\d\d):(\d\d):(\d\d)(?:\.(\d+))?([+-])(\d\d)(?::(\d\d))?(?::(\d\d))?( BC)?$/

const pad = (n: number, width = 2) => String(n).padStart(width, '0')

/** PostgreSQL's text of a timestamptz → RFC 3339 UTC as Go prints it; `infinity` passes through unchanged. */
export function formatTimestamptz(text: string): string {
  const m = PG_TIMESTAMPTZ.exec(text)
  if (!m) {
    if (text === 'infinity' || text === '-infinity') return text
    throw new Error(`unexpected timestamptz text from the database: ${JSON.stringify(text)} (DateStyle must be ISO)`)
  }
  const [, y, mo, d, h, mi, s, fraction = '', sign, oh, om = '0', os = '0', bc] = m
  // Astronomical year: 1 BC is year 0 (Go's year 0 too).
  const year = bc ? 1 - Number(y) : Number(y)
  const offsetSeconds = (sign === '-' ? -1 : 1) * (Number(oh) * 3600 + Number(om) * 60 + Number(os))
  // setUTCFullYear, not Date.UTC: Date.UTC maps years 0-99 to 1900-1999.
  const utc = new Date(0)
  utc.setUTCFullYear(year, Number(mo) - 1, Number(d))
  utc.setUTCHours(Number(h), Number(mi), Number(s) - offsetSeconds, 0)
  const digits = fraction.replace(/0+$/, '')
  const y4 = utc.getUTCFullYear()
  const yearText = y4 < 0 ? `-${pad(-y4, 4)}` : pad(y4, 4)
  return (
    `${yearText}-${pad(utc.getUTCMonth() + 1)}-${pad(utc.getUTCDate())}` +
    `T${pad(utc.getUTCHours())}:${pad(utc.getUTCMinutes())}:${pad(utc.getUTCSeconds())}` +
    `${digits ? `.${digits}` : ''}Z`
  )
}
