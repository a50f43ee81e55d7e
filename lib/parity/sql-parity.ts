// The parity digest of a store computed by PostgreSQL itself (docs/architecture.md, "Parity"):
// per record the SHA-256 of its canonical JSON, built in SQL byte for byte as JSON.stringify
// builds the API's answer; per bucket the SHA-256 of the bucket's sorted "id=hash" lines — the
// same digest as digest.ts computes in memory, so stores of either kind compare equal. Nothing
// but the per-bucket results (or one bucket's ids, or up to 100 documents) reaches this process:
// memory here is bounded whatever the table's size, and the server's by work_mem (the sort
// spills to disk). The summary is one statement, so one snapshot.
//
// A domain declares its table once (ParityDeclaration); lib/movies/movie-parity.ts is one.
import type { Database, Queryable } from '../db/database.ts'
import type { ParitySource } from './parity-source.ts'
import type { Digest } from './digest.ts'

export interface ParityDeclaration {
  /** The table, as written in FROM (trusted SQL of the code, never input). */
  table: string
  /** Its alias in `key` and `document`. */
  alias: string
  /** The record's id column (qualified by the alias). */
  key: string
  /** `integer` ids use the id's value for the bucket (neighbours spread evenly), `text` ids a hash of the text. */
  keyType: 'integer' | 'text'
  /**
   * SQL text expression producing the record's canonical JSON: exactly JSON.stringify of the API's
   * answer (field order, no spaces; build it with `'{"f":' || to_json(x)::text || ...`, arrays with
   * array_to_json, numbers as to_json(x::float8) where the API answers a JSON number). May use
   * correlated subqueries on the alias.
   */
  document: string
  /**
   * Optional, for speed: the same document over a join, for the statement that builds every
   * record's document (the summary). Children looked up per record (a correlated subquery) cost an
   * index probe each; joined once, aggregated per key, they cost one pass. `joins` is appended to
   * the FROM clause; `document` must produce exactly the text of the declaration's own.
   */
  scan?: { joins: string; document: string }
}

export interface SqlParityOptions {
  /** statement_timeout of the parity statements (they scan the whole table), ms. */
  statementTimeoutMs?: number
}

const hash32 = (text: string) => `left(encode(sha256(convert_to(${text}, 'UTF8')), 'hex'), 32)`

/** digest.ts's bucketOf in SQL: integers 0..10^15-1 by value, anything else by the first 32 bits of its text's SHA-256. */
function bucketExpression(d: ParityDeclaration, buckets: string): string {
  const hashed = (text: string) => `(('x' || left(encode(sha256(convert_to(${text}, 'UTF8')), 'hex'), 8))::bit(32)::bigint % ${buckets})`
  if (d.keyType === 'integer') return `(CASE WHEN ${d.key} BETWEEN 0 AND 999999999999999 THEN ${d.key}::bigint % ${buckets} ELSE ${hashed(`${d.key}::text`)} END)`
  return `(CASE WHEN ${d.key} ~ '^(0|[1-9][0-9]{0,14})$' THEN ${d.key}::bigint % ${buckets} ELSE ${hashed(d.key)} END)`
}

/** The hash of a bucket holding no record: SHA-256 of the empty text, as digest.ts has it. */
const EMPTY_BUCKET = 'e3b0c44298fc1c149afbf4c8996fb924'

/** The three statements of a declaration: $1 the bucket count; $2 the bucket; $1 the ids. */
export function paritySql(d: ParityDeclaration): { summary: string; bucket: string; documents: string } {
  const one = `${d.table} ${d.alias}`
  const from = d.scan ? `${one} ${d.scan.joins}` : one
  const doc = d.scan?.document ?? d.document
  return {
    // Ordered exactly as JS sorts the lines (ids and hex hashes are ASCII: byte order is UTF-16 order).
    // OFFSET 0 keeps the inner query as it is: pulled up, `line` (the document) would be computed twice.
    summary: `
    SELECT b::int AS bucket, count(*)::int AS n,
           ${hash32(`string_agg(line, E'\\n' ORDER BY line COLLATE "C")`)} AS hash
      FROM (SELECT ${bucketExpression(d, '$1::int')} AS b, ${d.key}::text || '=' || ${hash32(doc)} AS line FROM ${from} OFFSET 0) r
     GROUP BY b`,
    // One bucket: the filter runs first, so only its records' documents are built (record by record).
    bucket: `SELECT ${d.key}::text AS id, ${hash32(d.document)} AS hash FROM ${one} WHERE ${bucketExpression(d, '$1::int')} = $2::int`,
    documents: `SELECT ${d.key}::text AS id, ${d.document} AS doc FROM ${one} WHERE ${d.key} = ANY($1::${d.keyType === 'integer' ? 'bigint' : 'text'}[])`,
  }
}

export function sqlParitySource(db: Database, d: ParityDeclaration, options: SqlParityOptions = {}): ParitySource {
  const timeoutMs = Math.trunc(options.statementTimeoutMs ?? 60_000)
  const sql = paritySql(d)

  /** One read-only snapshot with the parity's own statement timeout. */
  const readOnly = <T>(work: (tx: Queryable) => Promise<T>) =>
    db.transaction(async (tx) => {
      await tx.query('SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY')
      await tx.query(`SET LOCAL statement_timeout = ${timeoutMs}`)
      return work(tx)
    })

  return {
    async summary(buckets): Promise<Digest> {
      const { rows } = await readOnly((tx) => tx.query<{ bucket: number; n: number; hash: string }>(sql.summary, [buckets], { timeoutMs }))
      const hashes = Array.from({ length: buckets }, () => EMPTY_BUCKET)
      let count = 0
      for (const r of rows) {
        hashes[r.bucket] = r.hash
        count += r.n
      }
      return { count, buckets, hashes }
    },
    async bucket(bucket, buckets) {
      const { rows } = await readOnly((tx) => tx.query<{ id: string; hash: string }>(sql.bucket, [buckets, bucket], { timeoutMs }))
      return Object.fromEntries(rows.map((r) => [r.id, r.hash]))
    },
    async documents(ids) {
      const wanted = d.keyType === 'integer' ? ids.filter((id) => /^-?[0-9]{1,18}$/.test(id)) : [...ids]
      if (wanted.length === 0) return {}
      const { rows } = await readOnly((tx) => tx.query<{ id: string; doc: string }>(sql.documents, [wanted], { timeoutMs }))
      return Object.fromEntries(rows.map((r) => [r.id, JSON.parse(r.doc) as unknown]))
    },
  }
}
