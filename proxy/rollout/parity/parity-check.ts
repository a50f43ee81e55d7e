// The parity check of a split route: both sides' stores compared through their parity endpoint
// (lib/parity/parity-routes.ts, declared per route in the route map as `parity`), in a few
// calls: the two summaries (per-bucket hashes), then the ids and hashes of the buckets that
// differ, then the documents of a bounded sample of differing ids, compared by JSON path with the
// shadow comparison's rules (proxy/shadow/compare.ts).
import { compareAnswers } from '../shadow/compare.ts'

/** Ids listed per kind of difference; the counts are always complete. */
export const MAX_LISTED_IDS = 50
/** Differing ids whose documents are fetched to name the JSON paths. */
export const MAX_DIFF_SAMPLES = 20

export interface ParitySettings {
  path: string
  buckets: number
  timeoutMs: number
}

export interface SideSummary {
  count: number
  buckets: number
  hashes: string[]
  replication?: Record<string, unknown>
}

export interface SideReport {
  upstream: string
  count: number
  /** What the side says of its replication (lag, unreplicated changes), as it said it. */
  replication: Record<string, unknown> | null
}

export interface ParityReport {
  route: string
  available: true
  checkedAt: string
  durationMs: number
  legacy: SideReport
  target: SideReport
  /** Records missing on either side plus records that differ; 0 = the stores agree. */
  drift: number
  missing: { onLegacy: number; onTarget: number }
  differingCount: number
  missingOnLegacy: string[]
  missingOnTarget: string[]
  differing: Array<{ id: string; paths: string[] }>
  /** The larger of the two sides' replication lag, seconds; null when a side cannot say. */
  lagSeconds: number | null
}

export interface Side {
  name: string
  url: string
  /** Sent with every call (the X-Internal-Token of lib/http/internal-auth.ts). */
  headers?: Record<string, string>
}

/** A side that did not answer its parity endpoint as specified. */
export class ParityUnavailableError extends Error {
  override readonly name = 'ParityUnavailableError'
}

async function getJson<T>(side: Side, path: string, timeoutMs: number): Promise<T> {
  let res: Response
  try {
    res = await fetch(side.url + path, { signal: AbortSignal.timeout(timeoutMs), headers: { ...side.headers, accept: 'application/json' } })
  } catch (err) {
    throw new ParityUnavailableError(`${side.name}: ${path}: ${(err as Error).message}`)
  }
  const text = await res.text().catch(() => '')
  if (res.status !== 200) throw new ParityUnavailableError(`${side.name}: ${path} answered ${res.status} ${text.slice(0, 200)}`)
  try {
    return JSON.parse(text) as T
  } catch {
    throw new ParityUnavailableError(`${side.name}: ${path} did not answer JSON`)
  }
}

function checkSummary(side: Side, s: SideSummary, buckets: number): SideSummary {
  if (typeof s?.count !== 'number' || s.buckets !== buckets || !Array.isArray(s.hashes) || s.hashes.length !== buckets) {
    throw new ParityUnavailableError(`${side.name}: the parity summary is not {count, buckets: ${buckets}, hashes[${buckets}]}`)
  }
  return s
}

const lagOf = (s: SideSummary): number | null | undefined => {
  const lag = s.replication?.lag_seconds
  return typeof lag === 'number' && Number.isFinite(lag) ? lag : lag === undefined ? undefined : null
}

/** Runs `work` over `items`, `limit` at a time. */
async function inBatches<T, R>(items: T[], limit: number, work: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = []
  for (let i = 0; i < items.length; i += limit) out.push(...(await Promise.all(items.slice(i, i + limit).map(work))))
  return out
}

export async function checkParity(route: string, legacy: Side, target: Side, settings: ParitySettings): Promise<ParityReport> {
  const started = Date.now()
  const { path, buckets, timeoutMs } = settings
  const get = <T>(side: Side, query: string) => getJson<T>(side, `${path}?${query}`, timeoutMs)
  const [ls, ts] = await Promise.all([get<SideSummary>(legacy, `buckets=${buckets}`), get<SideSummary>(target, `buckets=${buckets}`)])
  checkSummary(legacy, ls, buckets)
  checkSummary(target, ts, buckets)

  const differentBuckets = ls.hashes.flatMap((h, i) => (h === ts.hashes[i] ? [] : [i]))
  const onlyLegacy: string[] = []
  const onlyTarget: string[] = []
  const changed: string[] = []
  await inBatches(differentBuckets, 4, async (bucket) => {
    type Items = { items: Record<string, string> }
    const [a, b] = await Promise.all([get<Items>(legacy, `buckets=${buckets}&bucket=${bucket}`), get<Items>(target, `buckets=${buckets}&bucket=${bucket}`)])
    for (const [id, hash] of Object.entries(a.items ?? {})) {
      const other = b.items?.[id]
      if (other === undefined) onlyLegacy.push(id)
      else if (other !== hash) changed.push(id)
    }
    for (const id of Object.keys(b.items ?? {})) if (a.items?.[id] === undefined) onlyTarget.push(id)
  })
  const byId = (x: string, y: string) => (x.length - y.length) || (x < y ? -1 : x > y ? 1 : 0)
  ;[onlyLegacy, onlyTarget, changed].forEach((ids) => ids.sort(byId))

  const sample = changed.slice(0, MAX_DIFF_SAMPLES)
  let differing = sample.map((id) => ({ id, paths: [] as string[] }))
  if (sample.length > 0) {
    type Docs = { documents: Record<string, unknown> }
    const ids = `ids=${sample.map(encodeURIComponent).join(',')}`
    const [a, b] = await Promise.all([get<Docs>(legacy, ids), get<Docs>(target, ids)])
    const answer = (doc: unknown) => ({ status: 200, headers: { 'content-type': 'application/json' }, body: Buffer.from(JSON.stringify(doc ?? null)) })
    differing = sample.map((id) => ({
      id,
      paths: compareAnswers(answer(a.documents?.[id]), answer(b.documents?.[id]), { ignore: [], ignoreHeaders: new Set() }).map((d) => d.path),
    }))
  }

  const lags = [lagOf(ls), lagOf(ts)]
  return {
    route,
    available: true,
    checkedAt: new Date(started).toISOString(),
    durationMs: Date.now() - started,
    legacy: { upstream: legacy.name, count: ls.count, replication: ls.replication ?? null },
    target: { upstream: target.name, count: ts.count, replication: ts.replication ?? null },
    drift: onlyLegacy.length + onlyTarget.length + changed.length,
    missing: { onLegacy: onlyTarget.length, onTarget: onlyLegacy.length },
    differingCount: changed.length,
    missingOnLegacy: onlyTarget.slice(0, MAX_LISTED_IDS),
    missingOnTarget: onlyLegacy.slice(0, MAX_LISTED_IDS),
    differing,
    lagSeconds: lags.some((l) => l === null) || lags.every((l) => l === undefined) ? null : Math.max(...lags.map((l) => l ?? 0)),
  }
}
