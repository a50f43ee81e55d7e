import pg from 'pg'
import { DatabaseUnavailableError, sqlState, type Database, type Queryable, type QueryOptions, type QueryResult } from './database.ts'
import { formatTimestamptz, TIMESTAMPTZ_OID } from './timestamptz.ts'

export interface PgDatabaseOptions {
  connectionString: string
  /** Pool size. */
  max?: number
  connectTimeoutMs?: number
  /** Server-side statement_timeout and client-side query timeout. */
  statementTimeoutMs?: number
}

// SQLSTATE classes that mean "the server is not usable right now", not "your statement is wrong":
// 08 connection exception, 53 insufficient resources, 57P0x admin/crash shutdown, cannot connect now.
const UNAVAILABLE_STATES = /^(08|53|57P0)/
const UNAVAILABLE_ERRNO = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENOTFOUND', 'EPIPE', 'EAI_AGAIN'])

function isUnavailable(error: unknown): boolean {
  const state = sqlState(error)
  if (state) return UNAVAILABLE_STATES.test(state)
  const code = (error as { code?: unknown } | null)?.code
  if (typeof code === 'string' && UNAVAILABLE_ERRNO.has(code)) return true
  const message = error instanceof Error ? error.message : ''
  return /timeout|terminated|Connection terminated|not queryable|closed|ended/i.test(message)
}

// This pool's own type parsers (not pg's global table, shared by every pool in the process):
// timestamptz as the legacy's RFC 3339 text, microseconds kept.
const types = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
    oid === TIMESTAMPTZ_OID && format !== 'binary' ? formatTimestamptz : pg.types.getTypeParser(oid, format)) as typeof pg.types.getTypeParser,
}

function translate(error: unknown): unknown {
  if (error instanceof DatabaseUnavailableError) return error
  if (isUnavailable(error)) {
    const reason = error instanceof Error ? error.message : String(error)
    return new DatabaseUnavailableError(`database unavailable: ${reason}`, { cause: error })
  }
  return error
}

async function run<Row>(target: pg.Pool | pg.PoolClient, sql: string, params?: unknown[], options?: QueryOptions): Promise<QueryResult<Row>> {
  try {
    // pg reads query_timeout from the query's config before the client's (not in @types/pg's QueryConfig).
    const result = options?.timeoutMs
      ? await target.query({ text: sql, values: params as unknown[], query_timeout: options.timeoutMs + 1_000 } as pg.QueryConfig)
      : await target.query(sql, params as unknown[])
    return { rows: result.rows as Row[], rowCount: result.rowCount ?? 0 }
  } catch (error) {
    throw translate(error)
  }
}

export function createPgDatabase(options: PgDatabaseOptions): Database {
  const statementTimeout = options.statementTimeoutMs ?? 5_000
  const pool = new pg.Pool({
    connectionString: options.connectionString,
    max: options.max ?? 10,
    connectionTimeoutMillis: options.connectTimeoutMs ?? 2_000,
    statement_timeout: statementTimeout,
    // Client-side bound too: a server that stops answering (network gone) must not hang a request.
    query_timeout: statementTimeout + 1_000,
    idleTimeoutMillis: 30_000,
    keepAlive: true,
    types,
  })
  // An idle client losing its connection emits on the pool; without a listener that is a crash.
  pool.on('error', () => {})

  return {
    query: (sql, params, options) => run(pool, sql, params, options),
    exec: async (sql) => void (await run(pool, sql)),

    async transaction(work) {
      let client: pg.PoolClient
      try {
        client = await pool.connect()
      } catch (error) {
        throw translate(error)
      }
      const tx: Queryable = {
        query: (sql, params, options) => run(client, sql, params, options),
        exec: async (sql) => void (await run(client, sql)),
      }
      let broken = false
      try {
        await tx.query('BEGIN')
        const result = await work(tx)
        await tx.query('COMMIT')
        return result
      } catch (error) {
        try {
          await client.query('ROLLBACK')
        } catch {
          broken = true
        }
        throw translate(error)
      } finally {
        client.release(broken ? true : undefined)
      }
    },

    async ping() {
      await run(pool, 'SELECT 1')
    },

    async close() {
      await pool.end()
    },
  }
}

/** The pool a service builds from its databaseEnv settings (lib/config.ts). */
export function createPgDatabaseFromConfig(config: {
  databaseUrl: string
  dbPoolMax: number
  dbConnectTimeoutMs: number
  dbStatementTimeoutMs: number
}): Database {
  return createPgDatabase({
    connectionString: config.databaseUrl,
    max: config.dbPoolMax,
    connectTimeoutMs: config.dbConnectTimeoutMs,
    statementTimeoutMs: config.dbStatementTimeoutMs,
  })
}
