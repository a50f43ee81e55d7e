import { badRequest } from './errors.ts'

/**
 * Reads an optional positive integer query parameter (`?id=42`). The legacy Go code answered
 * 500 for `?id=abc`; here anything but one positive integer is a 400 naming the parameter.
 */
export function optionalIdParam(query: unknown, name: string): number | undefined {
  const raw = (query as Record<string, unknown> | undefined)?.[name]
  if (raw === undefined) return undefined
  if (typeof raw !== 'string' || !/^\d{1,10}$/.test(raw)) throw badRequest(`${name} must be a positive integer`)
  const value = Number(raw)
  if (value < 1 || value > 2_147_483_647) throw badRequest(`${name} must be a positive integer`)
  return value
}
