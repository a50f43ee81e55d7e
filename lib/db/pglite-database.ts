// The embedded development database: PostgreSQL compiled to WebAssembly (PGlite), running in
// this Node process, behind the same Database interface as the real pool. PGlite has one
// connection and serialises every statement and transaction itself, so the monolith and the
// movies service can share one instance, as they share one real database.
// (Not behind pglite-socket: its pooled connections interleave statements of concurrent
// transactions and return wrong results.)
import { PGlite, type Results, type Transaction } from '@electric-sql/pglite'
import type { Database, Queryable, QueryResult } from './database.ts'
import { formatTimestamptz, TIMESTAMPTZ_OID } from './timestamptz.ts'

function toResult<Row>(result: Results<Row>): QueryResult<Row> {
  return { rows: result.rows, rowCount: Math.max(result.rows.length, result.affectedRows ?? 0) }
}

function queryable(target: PGlite | Transaction): Queryable {
  return {
    query: async <Row>(sql: string, params?: unknown[]) => toResult(await target.query<Row>(sql, params)),
    exec: async (sql: string) => void (await target.exec(sql)),
  }
}

/** `dataDir` keeps the data on disk between runs; without it the database lives in memory. */
export async function createPgliteDatabase(options: { dataDir?: string } = {}): Promise<Database> {
  // timestamptz as the legacy's RFC 3339 text (PGlite's own parser loses microseconds and years 0001-0099).
  const pglite = await PGlite.create({ dataDir: options.dataDir, parsers: { [TIMESTAMPTZ_OID]: formatTimestamptz } })
  return {
    ...queryable(pglite),
    transaction: (work) => pglite.transaction((tx) => work(queryable(tx))),
    async ping() {
      await pglite.query('SELECT 1')
    },
    close: () => pglite.close(),
  }
}
