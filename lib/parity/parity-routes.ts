// GET /internal/parity: this store's parity digest for the proxy's comparison
// (proxy/rollout/parity/), in three forms:
//   ?buckets=N              {count, buckets, hashes[N], replication?}  (default 64 buckets)
//   ?buckets=N&bucket=k     {bucket, buckets, items: {id: hash}}
//   ?ids=1,2,3              {documents: {id: the API's answer}}        (at most 100 ids)
// Only what the public API answers anyway, read-only. A real store answers from SQL
// (sql-parity.ts: no table in memory), a test stub from its records (parity-source.ts).
import type { FastifyInstance } from 'fastify'
import { errors } from '../errors.ts'
import { DEFAULT_BUCKETS, MAX_BUCKETS, type ParityRecord } from './digest.ts'
import { recordsParitySource, type ParitySource } from './parity-source.ts'

export const PARITY_PATH = '/internal/parity'
const MAX_IDS = 100

export type ParityRoutesOptions = (
  | { /** The store's parity in SQL (sql-parity.ts). */ source: ParitySource }
  | { /** Every record of a small in-memory store, as the API answers it (test stubs). */ records(): Promise<ParityRecord[]> }
) & {
  /** Replication facts answered with the summary (lag, unreplicated changes). */
  replication?(): Promise<Record<string, unknown>>
}

export async function parityRoutes(app: FastifyInstance, opts: ParityRoutesOptions): Promise<void> {
  const source = 'source' in opts ? opts.source : recordsParitySource(opts.records)
  // Numbers as digits (the services' query strings are not coerced), checked below.
  app.get<{ Querystring: { buckets?: string; bucket?: string; ids?: string } }>(
    PARITY_PATH,
    {
      schema: {
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: {
            buckets: { type: 'string', pattern: '^[1-9][0-9]{0,3}$' },
            bucket: { type: 'string', pattern: '^(0|[1-9][0-9]{0,3})$' },
            ids: { type: 'string', pattern: '^[A-Za-z0-9._:-]{1,64}(,[A-Za-z0-9._:-]{1,64})*$', maxLength: 6600 },
          },
        },
      },
    },
    async (request) => {
      const { ids } = request.query
      const buckets = request.query.buckets === undefined ? DEFAULT_BUCKETS : Number(request.query.buckets)
      const bucket = request.query.bucket === undefined ? undefined : Number(request.query.bucket)
      if (buckets > MAX_BUCKETS) throw new errors.INVALID_VALUE(`buckets must be at most ${MAX_BUCKETS}`)
      if (bucket !== undefined && bucket >= buckets) throw new errors.INVALID_VALUE(`bucket must be below buckets (${buckets})`)
      if (ids !== undefined) {
        const wanted = new Set(ids.split(','))
        if (wanted.size > MAX_IDS) throw new errors.INVALID_VALUE(`at most ${MAX_IDS} ids`)
        return { documents: await source.documents([...wanted]) }
      }
      if (bucket !== undefined) return { bucket, buckets, items: await source.bucket(bucket, buckets) }
      const [summary, replication] = await Promise.all([source.summary(buckets), opts.replication?.()])
      return { ...summary, ...(replication ? { replication } : {}) }
    },
  )
}
