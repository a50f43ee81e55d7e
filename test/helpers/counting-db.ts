import type { Database, Queryable } from '../../lib/db/database.ts'

/** Wraps a Database and records every SQL statement sent through it (transactions included). */
export function countingDb(inner: Database): Database & { statements: string[] } {
  const statements: string[] = []
  const wrap = (q: Queryable): Queryable => ({
    query: (sql, params) => (statements.push(sql), q.query(sql, params)),
    exec: (sql) => (statements.push(sql), q.exec(sql)),
  })
  return {
    ...wrap(inner),
    statements,
    transaction: (work) => inner.transaction((tx) => work(wrap(tx))),
    ping: () => inner.ping(),
    close: () => inner.close(),
  }
}
