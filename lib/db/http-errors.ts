// What a database failure means to an HTTP client, registered by the services that have a
// database (createHttpApp's errorMappers): unreachable is a 503 to retry; a constraint or data
// violation is the client's mistake that slipped past validation (e.g. a user_id that does not
// exist), answered 4xx naming the column rather than 500.
import { errors, type ErrorMapper } from '../errors.ts'
import { DatabaseUnavailableError, sqlState } from './database.ts'

export const databaseErrors: ErrorMapper = (error) => {
  if (error instanceof DatabaseUnavailableError) return new errors.DATABASE_UNAVAILABLE({ cause: error })
  const state = sqlState(error)
  if (!state) return undefined
  const detail = (error as { detail?: string }).detail ?? ''
  const column = /Key \(([^)]+)\)/.exec(detail)?.[1] ?? (error as { column?: string }).column
  if (state === '23505') return new errors.DUPLICATE_VALUE(column ?? 'the value')
  if (state === '23503') return new errors.MISSING_REFERENCE(column ?? 'a key')
  // Class 22 (data exception: bad encoding such as a NUL byte, overflow, bad date) and the other
  // integrity violations (23: check, not-null) come from values the client sent.
  if (state.startsWith('22') || state.startsWith('23')) return new errors.INVALID_VALUE((error as Error).message)
  return undefined
}
