// What a store's parity endpoint (parity-routes.ts) asks of the store: the digest, one bucket's
// ids and hashes, documents by id. A real store answers them in SQL (sql-parity.ts); a store held
// in memory (test stubs) from its records, with the reference digest of digest.ts. Both follow
// the same rules, so a proxy may compare any two of them.
import { bucketItems, digest, type Digest, type ParityRecord } from './digest.ts'

export interface ParitySource {
  /** Count and per-bucket hashes, from one consistent view of the store. */
  summary(buckets: number): Promise<Digest>
  /** The ids and record hashes of one bucket. */
  bucket(bucket: number, buckets: number): Promise<Record<string, string>>
  /** The documents (as the API answers them) of the ids this store holds. */
  documents(ids: readonly string[]): Promise<Record<string, unknown>>
}

/** A source over records listed in full each time: for small in-memory stores (tests, stubs) only. */
export function recordsParitySource(records: () => Promise<ParityRecord[]>): ParitySource {
  return {
    summary: async (buckets) => digest(await records(), buckets),
    bucket: async (bucket, buckets) => bucketItems(await records(), bucket, buckets),
    async documents(ids) {
      const wanted = new Set(ids)
      return Object.fromEntries((await records()).filter((r) => wanted.has(r.id)).map((r) => [r.id, r.document]))
    },
  }
}
