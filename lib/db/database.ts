// The one interface services use to reach their database. The real PostgreSQL pool
// (pg-database.ts) and the embedded PGlite of the development stack both implement it,
// so no service code knows which one it talks to.

export interface QueryResult<Row> {
  rows: Row[]
  rowCount: number
}

export interface QueryOptions {
  /** This statement's own bound, ms, instead of the pool's (a long read-only scan such as the parity digest's); set with SET LOCAL statement_timeout inside a transaction too. */
  timeoutMs?: number
}

export interface Queryable {
  query<Row = Record<string, unknown>>(sql: string, params?: unknown[], options?: QueryOptions): Promise<QueryResult<Row>>
  /** Runs a script of several statements without parameters (migrations). */
  exec(sql: string): Promise<void>
}

export interface Database extends Queryable {
  /** Runs `work` inside BEGIN/COMMIT; any throw rolls back and is rethrown. */
  transaction<T>(work: (tx: Queryable) => Promise<T>): Promise<T>
  /** Cheap round trip used by readiness checks. */
  ping(): Promise<void>
  close(): Promise<void>
}

/** The database cannot be reached (refused, timed out, shutting down): callers answer 503. */
export class DatabaseUnavailableError extends Error {
  override readonly name = 'DatabaseUnavailableError'
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options)
  }
}

/** PostgreSQL SQLSTATE of a failed statement, when there is one. */
export function sqlState(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code
  return typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code) ? code : undefined
}
