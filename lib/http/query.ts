import { errors } from '../errors.ts'

const INT4_MIN = -2_147_483_648
const INT4_MAX = 2_147_483_647

/**
 * Reads an optional integer query parameter (`?id=42`, `?user_id=7`) as the legacy Go handler did
 * with `r.URL.Query().Get(name)` and `strconv.Atoi`: absent or empty means not given, a repeated
 * parameter counts by its first value, a sign is allowed (`-1` and `0` simply match no row).
 * Where the legacy answered 500 — not an integer (`abc`, `1.5`) or outside the column's integer
 * range — this answers 400 naming the parameter.
 */
export function optionalIntParam(query: unknown, name: string): number | undefined {
  const given = (query as Record<string, unknown> | undefined)?.[name]
  const raw = Array.isArray(given) ? given[0] : given
  if (raw === undefined || raw === '') return undefined
  if (typeof raw !== 'string' || !/^[+-]?\d+$/.test(raw)) throw new errors.QUERY_NOT_INTEGER(name)
  const value = Number(raw)
  if (value < INT4_MIN || value > INT4_MAX) throw new errors.QUERY_OUT_OF_RANGE(name, INT4_MIN, INT4_MAX)
  return value === 0 ? 0 : value // no -0
}
