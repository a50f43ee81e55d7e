// The parity digest of a store (docs/architecture.md, "Parity"): every record's hash is the
// SHA-256 of the canonical JSON the API answers for it (JSON.stringify of the answer, field order
// included), records are spread over buckets by id, and a bucket's hash covers its records'
// ids and hashes. Two stores agree on a bucket exactly when its hash is equal, so a proxy
// compares a large table in a few calls: the summary, then only the buckets that differ.
import { createHash } from 'node:crypto'

export const DEFAULT_BUCKETS = 64
export const MAX_BUCKETS = 4096

export interface ParityRecord {
  id: string
  document: unknown
}

const sha256 = (text: string) => createHash('sha256').update(text).digest('hex')

export const recordHash = (document: unknown): string => sha256(JSON.stringify(document)).slice(0, 32)

/** Integer ids by value (neighbours spread evenly), other ids by a hash of their text. */
export function bucketOf(id: string, buckets: number): number {
  if (/^(0|[1-9]\d{0,14})$/.test(id)) return Number(id) % buckets
  return parseInt(sha256(id).slice(0, 8), 16) % buckets
}

export interface Digest {
  count: number
  buckets: number
  /** One hash per bucket, in bucket order. */
  hashes: string[]
}

export function digest(records: readonly ParityRecord[], buckets: number): Digest {
  const lines: string[][] = Array.from({ length: buckets }, () => [])
  for (const r of records) lines[bucketOf(r.id, buckets)].push(`${r.id}=${recordHash(r.document)}`)
  return { count: records.length, buckets, hashes: lines.map((l) => sha256(l.sort().join('\n')).slice(0, 32)) }
}

/** The ids and hashes of one bucket. */
export function bucketItems(records: readonly ParityRecord[], bucket: number, buckets: number): Record<string, string> {
  const items: Record<string, string> = {}
  for (const r of records) if (bucketOf(r.id, buckets) === bucket) items[r.id] = recordHash(r.document)
  return items
}
