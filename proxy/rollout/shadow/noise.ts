// The noise detector of the shadow comparison (detectNoise), built so it cannot be taught to look
// away. On a mismatch legacy is asked a second time; what differs between legacy's two answers
// may be noise (a timestamp, a counter). It becomes an ignore rule only when:
//   - every difference between the two legacy answers is a scalar leaf named by a key (never a
//     list index, a whole list or object, a key present on one side only, a change of kind);
//     a list whose length differs, a record whose identity (`id`, `*_id`, `uuid`) differs or a list
//     element whose fields mostly differ (another record moved into its place) means the data
//     changed between the calls, and such a comparison teaches nothing at all;
//   - the same leaf differed in `confirmations` comparisons of different requests within `windowMs`
//     (one comparison, however often repeated, never teaches anything);
// and a learned rule lasts `ttlMs`, then expires. Rules are listed and can be reset (admin API).
import { compareAnswers, type Answer } from './compare.ts'
import { coveredByAny, generalise, parsePathRule, type PathRule, type Step } from '../../model/json-path.ts'

export interface NoiseSettings {
  /** Different requests in which the same leaf must differ before it is noise (at least 2). */
  confirmations: number
  /** Confirmations older than this no longer count. */
  windowMs: number
  /** How long a learned rule lasts. */
  ttlMs: number
}

export const NOISE_DEFAULTS = { confirmations: 3, windowSeconds: 600, ttlSeconds: 3_600 } as const

/** A learned rule as the admin API shows it: `$.a.b` / `$.items[*].updated_at`, or `header:<name>`. */
export interface LearnedNoise {
  rule: string
  learnedAt: string
  expiresAt: string
  /** The different requests that confirmed it. */
  confirmations: number
}

/** A leaf seen differing, not (yet) confirmed enough. */
export interface PendingNoise {
  rule: string
  confirmations: number
  needed: number
  firstSeenAt: string
}

/** Leaves differing in one comparison beyond this: not noise, a different answer. */
export const MAX_NOISY_LEAVES = 20
/** Rules kept per route (learned), and leaves followed while unconfirmed. */
export const MAX_LEARNED = 100
const MAX_PENDING = 1_000

/** Keys that name a record (`id`, `_id`, `UUID`, `movie_id`, `movieId`): a record whose identity differs is another record, never noise. */
const isIdentityKey = (key: string) => /^_?(id|uuid|guid)$/i.test(key) || /_(id|uuid)$/i.test(key) || /[a-z0-9](Id|ID|Uuid|UUID)$/.test(key)

type Json = null | boolean | number | string | Json[] | { [key: string]: Json }
const isScalar = (v: Json) => v === null || typeof v !== 'object'
const isObject = (v: Json): v is { [key: string]: Json } => v !== null && typeof v === 'object' && !Array.isArray(v)

/**
 * What two legacy answers to the same request allow to be learned: the generalised rules of the
 * differing leaves and headers, or [] when the comparison teaches nothing (a difference that is
 * not a learnable leaf, too many differences, a status or non-JSON body that differs).
 * `known` (the route's rules and those already learned) are skipped: they are noise already.
 */
export function noiseCandidates(first: Answer, second: Answer, rules: { known: readonly PathRule[]; ignoreHeaders: ReadonlySet<string>; compareHeaders: ReadonlySet<string> }): string[] {
  if (first.status !== second.status) return []
  const out = new Set<string>()
  // Headers: compared as the comparison compares them (the body part of this call is not used).
  const noBody = { ...first, body: Buffer.alloc(0) }
  for (const d of compareAnswers(noBody, { ...second, body: Buffer.alloc(0) }, { ignore: [], ignoreHeaders: rules.ignoreHeaders, compareHeaders: rules.compareHeaders })) {
    if (!d.path.startsWith('header:')) return []
    out.add(d.path)
  }
  if (!first.body.equals(second.body)) {
    const [a, b] = [parse(first.body), parse(second.body)]
    if (a === undefined || b === undefined) return []
    const leaves: Step[][] = []
    if (!walk(a.value, b.value, [], rules.known, leaves, false)) return []
    for (const steps of leaves) out.add(generalise(steps))
  }
  return out.size > MAX_NOISY_LEAVES ? [] : [...out]
}

function parse(body: Buffer): { value: Json } | undefined {
  try {
    return { value: JSON.parse(body.toString('utf8')) as Json }
  } catch {
    return undefined
  }
}

/** Collects the differing learnable leaves; false = something differs that is not one (nothing is learned). */
function walk(a: Json, b: Json, path: Step[], known: readonly PathRule[], leaves: Step[][], inList: boolean): boolean {
  if (path.length > 0 && coveredByAny(known, path)) return true
  if (leaves.length > MAX_NOISY_LEAVES) return false
  if (Array.isArray(a) && Array.isArray(b)) {
    if (a.length !== b.length) return false // a record added or removed between the two calls
    for (let i = 0; i < a.length; i++) if (!walk(a[i]!, b[i]!, [...path, i], known, leaves, true)) return false
    return true
  }
  if (isObject(a) && isObject(b)) {
    const keys = Object.keys(a)
    if (keys.length !== Object.keys(b).length || !keys.every((k) => Object.hasOwn(b, k))) return false
    if (inList) {
      // Another record in this place (the list shifted) rather than the same record with a noisy field.
      const scalars = keys.filter((k) => isScalar(a[k]!) && isScalar(b[k]!))
      const differing = scalars.filter((k) => a[k] !== b[k])
      if (differing.length * 2 > scalars.length) return false
    }
    for (const key of keys.sort()) if (!walk(a[key]!, b[key]!, [...path, key], known, leaves, false)) return false
    return true
  }
  if (isScalar(a) && isScalar(b)) {
    if (a === b) return true
    const last = path[path.length - 1]
    // A leaf under a key only: an index would make a rule ending in `[*]` (a whole list of values).
    if (typeof last !== 'string' || isIdentityKey(last)) return false
    leaves.push(path)
    return true
  }
  return false // a change of kind (a value became a list or an object)
}

interface Learned {
  rule: string
  path: PathRule | undefined
  learnedAt: number
  expiresAt: number
  confirmations: number
}

/** One route's confirmations and learned rules. `now` is the clock (ms). */
export class NoiseLearner {
  private settings: NoiseSettings
  private readonly now: () => number
  /** rule → request id → when it confirmed the rule. */
  private readonly pending = new Map<string, Map<string, number>>()
  private readonly learned = new Map<string, Learned>()

  constructor(settings: NoiseSettings, now: () => number = Date.now) {
    this.settings = settings
    this.now = now
  }

  configure(settings: NoiseSettings): void {
    this.settings = settings
  }

  /**
   * One comparison's candidates, from request `requestId`: each counts once per request; a rule
   * confirmed by `confirmations` different requests within the window is learned (and returned).
   */
  observe(requestId: string, candidates: readonly string[]): LearnedNoise[] {
    const now = this.now()
    const { confirmations, windowMs, ttlMs } = this.settings
    const learned: LearnedNoise[] = []
    for (const rule of candidates) {
      if (this.learned.has(rule)) continue
      let seen = this.pending.get(rule)
      if (!seen) {
        if (this.pending.size >= MAX_PENDING) this.dropOldestPending()
        seen = new Map()
        this.pending.set(rule, seen)
      }
      seen.set(requestId, now)
      for (const [id, at] of seen) if (now - at > windowMs) seen.delete(id)
      // The oldest confirmations beyond those needed are not kept (a rule that cannot be learned, the route being full, stays bounded).
      for (const [id] of seen) if (seen.size > confirmations) seen.delete(id)
      if (seen.size < confirmations || this.learned.size >= MAX_LEARNED) continue
      this.pending.delete(rule)
      const entry: Learned = { rule, path: rule.startsWith('header:') ? undefined : parsePathRule(rule), learnedAt: now, expiresAt: now + ttlMs, confirmations: seen.size }
      this.learned.set(rule, entry)
      learned.push(shown(entry))
    }
    return learned
  }

  /** Drops the rules whose time is up; returns them. */
  expire(): LearnedNoise[] {
    const now = this.now()
    const out: LearnedNoise[] = []
    for (const [rule, entry] of this.learned) {
      if (entry.expiresAt > now) continue
      this.learned.delete(rule)
      out.push(shown(entry))
    }
    return out
  }

  /** Forgets every learned rule and confirmation; returns the rules dropped. */
  reset(): LearnedNoise[] {
    const out = this.list()
    this.learned.clear()
    this.pending.clear()
    return out
  }

  /** The learned JSON path rules (in force until they expire). */
  paths(): PathRule[] {
    const out: PathRule[] = []
    for (const entry of this.learned.values()) if (entry.path) out.push(entry.path)
    return out
  }

  /** The learned header names (lower case). */
  headers(): string[] {
    const out: string[] = []
    for (const entry of this.learned.values()) if (!entry.path) out.push(entry.rule.slice('header:'.length))
    return out
  }

  get size(): number {
    return this.learned.size
  }

  list(): LearnedNoise[] {
    return [...this.learned.values()].map(shown)
  }

  /** Leaves seen differing, with their confirmations within the window. */
  pendingList(): PendingNoise[] {
    const now = this.now()
    const out: PendingNoise[] = []
    for (const [rule, seen] of this.pending) {
      const times = [...seen.values()].filter((at) => now - at <= this.settings.windowMs)
      if (times.length) out.push({ rule, confirmations: times.length, needed: this.settings.confirmations, firstSeenAt: new Date(Math.min(...times)).toISOString() })
    }
    return out
  }

  private dropOldestPending(): void {
    const [oldest] = this.pending.keys()
    if (oldest !== undefined) this.pending.delete(oldest)
  }
}

const shown = (e: Learned): LearnedNoise => ({ rule: e.rule, learnedAt: new Date(e.learnedAt).toISOString(), expiresAt: new Date(e.expiresAt).toISOString(), confirmations: e.confirmations })
