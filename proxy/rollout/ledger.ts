// The rollout ledger: who moved which route from what to what, when and why. Entries go to a
// capped Redis stream (XADD MAXLEN ~) when the proxy has Redis — shared by every replica — else
// to a JSON-lines file beside the flags file that rotates once it holds `maxEntries`. Every
// entry is also one structured log line, and an entry the store refused is kept in memory
// (bounded) and stored once the store answers again: append never throws, it logs and counts the
// failure.
import { randomUUID } from 'node:crypto'
import { appendFile, readFile, rename } from 'node:fs/promises'
import type { Logger } from '../../lib/logger.ts'
import type { Redis } from '../../lib/redis.ts'

/** Who changed a rollout: the proxy itself (admin API, ramp, guard) or someone it saw change the flag. */
export type LedgerSource = 'admin' | 'ramp' | 'guard' | 'flags-file' | 'unleash' | 'shadow'

export interface LedgerEntry {
  /** ISO time the proxy made or noticed the change. */
  at: string
  route: string
  flag: string
  /** Rollout percent before and after; null = not a plain rollout (several strategies, constraints). For stage `shadow`: the shadow percent. */
  from: number | null
  to: number | null
  /** An admin token's name, "ramp", "guard", "flags-file", "unleash" or "shadow" (the noise detector). */
  actor: string
  reason: string
  source: LedgerSource
  /** What moved (proxy/rollout/stages.ts): the read percentage (absent = reads), the writer side, the freeze of a ramp, the retirement of legacy. */
  stage?: 'reads' | 'writes' | 'freeze' | 'retire' | 'conflict' | 'shadow'
  /** For a change of the writer side: the sides (null = writes followed the read flag). */
  fromSide?: 'legacy' | 'target' | null
  toSide?: 'legacy' | 'target'
  /** The guard values at the moment of the change (parity drift, lag, unreplicated changes, …). */
  guard?: Record<string, number | string | boolean | null>
  /** The step was forced past a refusing guard. */
  forced?: boolean
  /** Differing ids and paths of the parity check behind an automatic action. */
  sample?: unknown
  /** Stage `shadow`: what changed in the shadow comparison (settings set, noise learned, expired or reset). */
  shadow?: ShadowLedgerDetail
  /** Tracing on: the trace of the request (or ramp step) that made the change. */
  traceId?: string
}

export interface ShadowLedgerDetail {
  change: 'settings' | 'noise-learned' | 'noise-expired' | 'noise-reset'
  /** The settings in force after the change (change `settings`). */
  settings?: Record<string, unknown>
  /** The learned noise rules concerned (with when learned, confirmations, expiry). */
  rules?: Array<{ rule: string; learnedAt: string; expiresAt: string; confirmations: number }>
}

export interface LedgerQuery {
  route?: string
  limit: number
}

export interface Ledger {
  readonly kind: 'redis' | 'file'
  /** Where entries are kept (stream key or file path), for the admin API and logs. */
  readonly location: string
  /** Records one entry; never throws (a failing store is logged with the entry and counted). */
  append(entry: Omit<LedgerEntry, 'at'> & { at?: string }): Promise<void>
  /** Newest first. Throws when the store cannot be read. */
  list(query: LedgerQuery): Promise<LedgerEntry[]>
  /**
   * True for the first replica to claim `id` within `claimTtlMs` (Redis SET NX), so a change
   * every replica notices — or one replica made — is recorded once. Always true without Redis
   * (one process per file) and when Redis fails (a duplicate beats a lost entry).
   */
  claim(id: string): Promise<boolean>
  /** Gives a claim back (the change it was for failed). */
  unclaim(id: string): Promise<void>
}

export interface LedgerOptions {
  maxEntries: number
  /** The stream key, with Redis. */
  redisKey: string
  /** The JSON-lines file, without Redis. */
  file: string
  /** How long a claimed change stays claimed: longer than every replica takes to notice it. */
  claimTtlMs: number
}

export interface LedgerDeps {
  logger: Logger
  redis?: Redis
  /** Called once per entry the store did not take. */
  onStoreError(): void
  /** Tracing on (proxy/forward/tracing.ts): the active trace's id, kept with the entry. */
  traceId?: () => string | undefined
}

interface Store {
  kind: Ledger['kind']
  location: string
  /** `id`: the entry's own, so that one stored twice (a retry after a write that timed out but landed) is read once. */
  add(entry: LedgerEntry, id: string): Promise<void>
  read(query: LedgerQuery): Promise<LedgerEntry[]>
  claim(id: string): Promise<boolean>
  unclaim(id: string): Promise<void>
}

/** Entries kept in memory while the store fails (Redis away), stored again once it answers. */
const MAX_UNSTORED = 1_000
const RETRY_UNSTORED_MS = 2_000

export function createLedger(opts: LedgerOptions, deps: LedgerDeps): Ledger {
  const store = deps.redis ? redisStore(deps.redis, opts) : fileStore(opts)
  // An entry the store refused waits here (bounded, oldest dropped first, each drop logged) and
  // is stored before the next one, or by the retry timer: a Redis pause loses no switch.
  const unstored: Array<{ entry: LedgerEntry; id: string }> = []
  const claimedHere = new Map<string, number>()
  let retry: NodeJS.Timeout | undefined
  function keep(entry: LedgerEntry, id: string, error: Error): void {
    if (unstored.length >= MAX_UNSTORED) deps.logger.error({ ledger: unstored.shift()!.entry }, 'ledger entry dropped: too many waiting for the store (kept in this log line only)')
    unstored.push({ entry, id })
    deps.logger.error({ ledger: entry, store: store.kind, err: error.message, waiting: unstored.length }, 'ledger entry not stored yet: kept in memory and stored again once the store answers')
    retry ??= setTimeout(() => {
      retry = undefined
      void flushUnstored()
    }, RETRY_UNSTORED_MS).unref()
  }
  let flushing: Promise<void> | undefined
  function flushUnstored(): Promise<void> {
    if (unstored.length === 0) return Promise.resolve()
    flushing ??= (async () => {
      while (unstored.length > 0) {
        try {
          await store.add(unstored[0]!.entry, unstored[0]!.id)
          unstored.shift()
        } catch {
          retry ??= setTimeout(() => {
            retry = undefined
            void flushUnstored()
          }, RETRY_UNSTORED_MS).unref()
          return
        }
      }
    })().finally(() => (flushing = undefined))
    return flushing
  }
  return {
    kind: store.kind,
    location: store.location,
    async append(given) {
      const { stage, fromSide, toSide, guard, forced, sample, shadow } = given
      const entry: LedgerEntry = {
        at: given.at ?? new Date().toISOString(),
        route: given.route,
        flag: given.flag,
        from: given.from,
        to: given.to,
        actor: given.actor,
        reason: given.reason,
        source: given.source,
        ...(stage ? { stage } : {}),
        ...(fromSide !== undefined ? { fromSide } : {}),
        ...(toSide ? { toSide } : {}),
        ...(guard ? { guard } : {}),
        ...(forced ? { forced } : {}),
        ...(sample !== undefined ? { sample } : {}),
        ...(shadow ? { shadow } : {}),
      }
      const traceId = deps.traceId?.() // TRACING
      if (traceId) entry.traceId = traceId
      const what = entry.shadow ? `shadow comparison of ${entry.route}: ${entry.shadow.change}` : `rollout of ${entry.route}: ${entry.from ?? 'custom'} → ${entry.to ?? 'custom'}`
      deps.logger.info({ ledger: entry }, `${what} by ${entry.actor} (${entry.source})`)
      await flushUnstored()
      const id = randomUUID()
      try {
        await store.add(entry, id)
      } catch (error) {
        deps.onStoreError()
        keep(entry, id, error as Error)
      }
    },
    list: (query) => store.read(query),
    async claim(id) {
      // This process's own claims first: with the store away, a change it claimed is still not recorded twice by it.
      const now = Date.now()
      for (const [claimed, until] of claimedHere) if (until < now) claimedHere.delete(claimed)
      if (claimedHere.has(id)) return false
      claimedHere.set(id, now + opts.claimTtlMs)
      try {
        return await store.claim(id)
      } catch (error) {
        deps.logger.warn({ id, err: (error as Error).message }, 'ledger claim failed; the change may be recorded by several replicas')
        return true
      }
    },
    async unclaim(id) {
      claimedHere.delete(id)
      await store.unclaim(id).catch(() => {}) // expires by itself
    },
  }
}

const matches = (query: LedgerQuery) => (e: LedgerEntry) => query.route === undefined || e.route === query.route

/** Stream entries read per call while looking for one route's entries. */
const ROUTE_PAGE = 100

function redisStore(redis: Redis, opts: LedgerOptions): Store {
  const key = opts.redisKey
  return {
    kind: 'redis',
    location: key,
    async add(entry, id) {
      await redis.xadd(key, 'MAXLEN', '~', opts.maxEntries, '*', 'entry', JSON.stringify(entry), 'id', id)
    },
    async read(query) {
      // Newest first, in pages, until enough entries of the route are found or the stream ends.
      const out: LedgerEntry[] = []
      const seen = new Set<string>()
      let end = '+'
      for (;;) {
        const page = await redis.xrevrange(key, end, '-', 'COUNT', query.route === undefined ? query.limit : ROUTE_PAGE)
        for (const [, fields] of page) {
          const entry = parseEntry(fields[fields.indexOf('entry') + 1])
          const at = fields.indexOf('id')
          const id = at >= 0 ? fields[at + 1] : undefined
          if (id !== undefined && seen.has(id)) continue // stored twice: once by a write that timed out, once by its retry
          if (id !== undefined) seen.add(id)
          if (entry && matches(query)(entry)) out.push(entry)
          if (out.length === query.limit) return out
        }
        if (page.length === 0 || query.route === undefined) return out
        end = `(${page[page.length - 1]![0]}`
      }
    },
    async claim(id) {
      return (await redis.set(`${key}:claim:${id}`, '1', 'PX', opts.claimTtlMs, 'NX')) === 'OK'
    },
    async unclaim(id) {
      await redis.del(`${key}:claim:${id}`)
    },
  }
}

function fileStore(opts: LedgerOptions): Store {
  const file = opts.file
  const previous = `${file}.1`
  let lines: number | undefined
  // Appends are serialised, so the line count and the rotation stay exact.
  let queue: Promise<unknown> = Promise.resolve()
  const serial = <T>(work: () => Promise<T>): Promise<T> => {
    const run = queue.then(work, work)
    queue = run.catch(() => {})
    return run
  }
  const readLines = async (path: string) => {
    try {
      return (await readFile(path, 'utf8')).split('\n').filter(Boolean)
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return []
      throw error
    }
  }
  return {
    kind: 'file',
    location: file,
    add: (entry) =>
      serial(async () => {
        lines ??= (await readLines(file)).length
        if (lines >= opts.maxEntries) {
          await rename(file, previous)
          lines = 0
        }
        await appendFile(file, `${JSON.stringify(entry)}\n`)
        lines++
      }),
    read: (query) =>
      serial(async () => {
        const all = [...(await readLines(previous)), ...(await readLines(file))]
        const out: LedgerEntry[] = []
        for (let i = all.length - 1; i >= 0 && out.length < query.limit; i--) {
          const entry = parseEntry(all[i])
          if (entry && matches(query)(entry)) out.push(entry)
        }
        return out
      }),
    claim: async () => true,
    unclaim: async () => {},
  }
}

function parseEntry(text: string | undefined): LedgerEntry | undefined {
  if (!text) return undefined
  try {
    const entry = JSON.parse(text) as LedgerEntry
    return typeof entry === 'object' && entry !== null && typeof entry.route === 'string' ? entry : undefined
  } catch {
    return undefined // a torn last line (crash mid-append) is skipped, not fatal
  }
}
