// Shadow comparison per route. For a share of a route's requests (GET/HEAD unless the route lists
// more methods), the side the flag did not pick gets a copy of the request once the client's
// answer has been streamed; the two answers are compared (compare.ts) and the outcome counted
// (match, mismatch, error, dropped) with the latest mismatches kept for GET /admin/routes/:name/diffs.
// The copy never delays the client: it starts after the answer, is bounded in number (maxInFlight,
// beyond which it is dropped and counted) and in time (timeoutMs), and bypasses the breakers (a
// shadow call must not open a circuit real traffic depends on; an open circuit skips the copy).
// The copy carries the client's credentials (the other side must see the same identity to
// answer the same); they are held only while the copy is in flight and never reported.
// The noise detector (detectNoise) learns only what noise.ts allows; every change of a route's
// shadow settings (set through the admin API, noise learned, expired or reset) is a ledger entry.
import type { IncomingHttpHeaders } from 'node:http'
import type { FastifyRequest } from 'fastify'
import { Type, type Static } from '@sinclair/typebox'
import type { Logger } from '../../../lib/logger.ts'
import type { ProxyMetrics } from '../../observability/metrics.ts'
import { checkOptions } from '../../model/options.ts'
import type { Route } from '../../model/route-map.ts'
import { SAFE_METHODS, type RouteDecision, type Side } from '../../routing/decision.ts'
import { clientOf, type TrustFn } from '../../edge/trust-proxy.ts'
import { upstreamRequestHeaders } from '../../forward/upstream-client.ts'
import type { ClientSignal, UpstreamRuntime, Upstreams } from '../../forward/upstreams.ts'
import { compareAnswers, headersOnly, type Answer, type Difference } from './compare.ts'
import { parsePathRule, type PathRule } from '../../model/json-path.ts'
import { Ring, credentialsOf, redactedUrl, reportDifferences, type ReportedDifference } from './report.ts'
import { shadowProblems, type ShadowEntry } from '../../model/shadow-settings.ts'
import type { Link } from '@opentelemetry/api'
import type { ProxyTracing } from '../../forward/tracing.ts'
import type { Ledger, LedgerEntry, ShadowLedgerDetail } from '../ledger.ts'
import { NOISE_DEFAULTS, NoiseLearner, noiseCandidates, type LearnedNoise, type NoiseSettings } from './noise.ts'

export const ShadowOptions = Type.Object({
  /** Copies in flight at once (all routes); a copy beyond it is dropped and counted. */
  maxInFlight: Type.Integer({ minimum: 1 }),
  /** Bound on each copy (and on the noise detector's second legacy call). */
  timeoutMs: Type.Integer({ minimum: 1 }),
  /** Largest body compared (primary or shadow); a larger answer is not compared (counted as not compared). */
  maxBodyBytes: Type.Integer({ minimum: 0 }),
})
export type ShadowOptions = Static<typeof ShadowOptions>

export type ShadowOutcome = 'match' | 'mismatch' | 'error' | 'dropped'
/** Copies that were started but could not be compared, and why (not an outcome: neither side is to blame). */
export type NotCompared = 'too_large' | 'primary_failed' | 'client_gone' | 'event_stream'

const RING_SIZE = 50
const ERROR_RING_SIZE = 10

export interface ShadowDeps {
  routes: readonly Route[]
  upstreams: Upstreams
  metrics: ProxyMetrics
  trust: TrustFn | undefined
  logger: Logger
  /** Tracing on (proxy/forward/tracing.ts): each copy is a span linked to its request's trace. */
  tracing?: ProxyTracing
  /** Every change of the settings — set through the admin API, noise learned, expired or reset — is recorded here. */
  ledger?: Pick<Ledger, 'append'>
}

/** Who changes the settings (the admin token's name) and why. */
export interface ShadowActor {
  actor: string
  reason: string
}

/** The settings in force for one route. */
interface Settings {
  percent: number
  ignore: PathRule[]
  ignoreHeaders: Set<string>
  compareHeaders: Set<string>
  methods: Set<string>
  detectNoise: boolean
  noise: NoiseSettings
}

export interface Mismatch {
  at: string
  method: string
  /** Path and query (secret-looking query values redacted). */
  path: string
  /** The side that answered the client. */
  primary: Side
  legacy: { upstream: string; status: number }
  target: { upstream: string; status: number }
  /** `headers`: the status and body agree, only compared headers differ (reported apart). */
  kind: 'body' | 'headers'
  differences: ReportedDifference[]
  /** Tracing on: the trace of the request that was copied. */
  traceId?: string
}

interface RouteShadow {
  route: Route
  settings: Settings
  counts: Record<ShadowOutcome, number>
  /** Of the mismatches, those where only compared headers differed. */
  headerOnly: number
  notCompared: Record<NotCompared, number>
  mismatches: Ring<Mismatch>
  errors: Ring<{ at: string; method: string; path: string; upstream: string; error: string; traceId?: string }>
  /** The noise detector's confirmations and learned rules (leaf JSON paths, header names). */
  noise: NoiseLearner
}

function compile(entry: ShadowEntry): Settings {
  return {
    percent: entry.percent,
    ignore: (entry.ignore ?? []).map(parsePathRule),
    ignoreHeaders: new Set((entry.ignoreHeaders ?? []).map((h) => h.toLowerCase())),
    compareHeaders: new Set((entry.compareHeaders ?? []).map((h) => h.toLowerCase())),
    methods: new Set(entry.methods ?? SAFE_METHODS),
    detectNoise: entry.detectNoise ?? false,
    noise: {
      confirmations: entry.noiseConfirmations ?? NOISE_DEFAULTS.confirmations,
      windowMs: (entry.noiseWindowSeconds ?? NOISE_DEFAULTS.windowSeconds) * 1000,
      ttlMs: (entry.noiseTtlSeconds ?? NOISE_DEFAULTS.ttlSeconds) * 1000,
    },
  }
}

function describeSettings(s: Settings) {
  return {
    percent: s.percent,
    ignore: s.ignore.map((r) => r.source),
    ignoreHeaders: [...s.ignoreHeaders],
    compareHeaders: [...s.compareHeaders],
    methods: [...s.methods],
    detectNoise: s.detectNoise,
    noiseConfirmations: s.noise.confirmations,
    noiseWindowSeconds: s.noise.windowMs / 1000,
    noiseTtlSeconds: s.noise.ttlMs / 1000,
  }
}

/** What the forwarding code (proxy-routes.ts, send) reports about the answer the client gets. */
export interface ShadowTap {
  /** The answer's head; `upstream` is who answered (a fallback to the shadow side ends the comparison). */
  primaryResponse(upstream: string, status: number, headers: IncomingHttpHeaders): void
  primaryChunk(chunk: Buffer): void
  /** The whole body was passed on: the copy starts now. */
  primaryEnd(): void
  /** The answer did not complete (client gone, upstream broke off). */
  primaryFailed(): void
}

/** A run-time change that is not valid (the message names the field). */
export class ShadowSettingsError extends Error {}

/** A copy that could not be made (reported in the errors list). */
class ShadowError extends Error {}

export class ShadowComparisons {
  private readonly options: ShadowOptions
  private readonly byRoute = new Map<string, RouteShadow>()
  private closed = false
  /** One per call in flight, so close() can abort them. */
  private readonly calls = new Set<AbortController>()
  private inFlight = 0
  /** Bytes of primary answers held by taps (capture while streaming, then until compared). */
  private captured = 0

  /** @internal */ readonly deps: ShadowDeps

  constructor(options: ShadowOptions, deps: ShadowDeps) {
    this.deps = deps
    this.options = checkOptions(ShadowOptions, options, 'shadow comparison')
    for (const route of deps.routes) {
      if (!route.target) continue
      const settings = compile(route.shadow ?? { percent: 0 })
      this.byRoute.set(route.name, {
        route,
        settings,
        counts: { match: 0, mismatch: 0, error: 0, dropped: 0 },
        headerOnly: 0,
        notCompared: { too_large: 0, primary_failed: 0, client_gone: 0, event_stream: 0 },
        mismatches: new Ring(RING_SIZE),
        errors: new Ring(ERROR_RING_SIZE),
        noise: new NoiseLearner(settings.noise),
      })
    }
  }

  /** Cumulative counts since start (comparisons = match + mismatch), for the ramp guard. */
  totals(route: string): { comparisons: number; mismatches: number } {
    const state = this.byRoute.get(route)
    if (!state) return { comparisons: 0, mismatches: 0 }
    return { comparisons: state.counts.match + state.counts.mismatch, mismatches: state.counts.mismatch }
  }

  /** Hot path: a tap when this request is to be copied, else undefined (one map lookup and a random draw). */
  select(route: Route, decision: RouteDecision, request: FastifyRequest): ShadowTap | undefined {
    const state = this.byRoute.get(route.name)
    if (!state || state.settings.percent <= 0 || !state.settings.methods.has(request.method)) return undefined
    if (state.settings.percent < 100 && Math.random() * 100 >= state.settings.percent) return undefined
    if (this.inFlight >= this.options.maxInFlight) {
      this.count(state, 'dropped')
      return undefined
    }
    return new Tap(this, state, decision.side, request)
  }

  /** Whether a route can be shadowed (it has a target). */
  has(route: string): boolean {
    return this.byRoute.has(route)
  }

  /**
   * Run-time change (PUT /admin/routes/:name/shadow); fields left out keep their value. Throws with
   * the bad field named. Recorded in the ledger with its actor; turning detectNoise off forgets
   * what was learned (recorded in the same entry).
   */
  async configure(route: string, change: Partial<Omit<ShadowEntry, 'methods'>> & { percent: number }, by: ShadowActor) {
    const state = this.byRoute.get(route)!
    const current = describeSettings(state.settings)
    const entry: ShadowEntry = { ...current, ...change, methods: current.methods as ShadowEntry['methods'] }
    const problems = shadowProblems(entry, '')
    if (problems.length) throw new ShadowSettingsError(problems.join('; '))
    const before = state.settings.percent
    state.settings = compile(entry)
    state.noise.configure(state.settings.noise)
    const dropped = state.settings.detectNoise ? [] : state.noise.reset()
    const described = describeSettings(state.settings)
    this.deps.logger.info({ route, shadow: described }, 'shadow settings changed')
    await this.record(state, { actor: by.actor, reason: by.reason, source: 'admin', from: before }, { change: 'settings', settings: described, ...(dropped.length ? { rules: dropped } : {}) })
    return described
  }

  /** GET /admin/routes/:name/shadow: the settings in force, the learned noise and the leaves still being confirmed. */
  settings(route: string) {
    const state = this.byRoute.get(route)!
    this.expire(state)
    return { route, shadow: describeSettings(state.settings), learnedNoise: state.noise.list(), pendingNoise: state.noise.pendingList() }
  }

  /** DELETE /admin/routes/:name/shadow/noise: forgets the learned rules and the confirmations; recorded in the ledger. */
  async resetNoise(route: string, by: ShadowActor): Promise<LearnedNoise[]> {
    const state = this.byRoute.get(route)!
    const dropped = state.noise.reset()
    await this.record(state, { actor: by.actor, reason: by.reason, source: 'admin' }, { change: 'noise-reset', rules: dropped })
    return dropped
  }

  /** One ledger entry of stage `shadow` (the shadow percent as from → to). */
  private async record(state: RouteShadow, who: { actor: string; reason: string; source: LedgerEntry['source']; from?: number }, detail: ShadowLedgerDetail): Promise<void> {
    const percent = state.settings.percent
    await this.deps.ledger?.append({ route: state.route.name, flag: state.route.flag ?? '', from: who.from ?? percent, to: percent, actor: who.actor, reason: who.reason, source: who.source, stage: 'shadow', shadow: detail })
  }

  /** Drops the learned rules whose time is up, with a ledger entry (written in the background: append never throws). */
  private expire(state: RouteShadow): void {
    if (!state.noise.size) return
    const expired = state.noise.expire()
    if (!expired.length) return
    this.deps.logger.info({ route: state.route.name, rules: expired.map((r) => r.rule) }, 'shadow noise expired')
    void this.record(state, { actor: 'shadow', reason: `learned noise expired: ${expired.map((r) => r.rule).join(', ')}`, source: 'shadow' }, { change: 'noise-expired', rules: expired })
  }

  /** GET /admin/routes/:name/diffs. */
  report(route: string) {
    const state = this.byRoute.get(route)!
    this.expire(state)
    return {
      route,
      legacy: state.route.legacy.name,
      target: state.route.target!.name,
      shadow: describeSettings(state.settings),
      counts: { ...state.counts },
      headerOnlyMismatches: state.headerOnly,
      notCompared: { ...state.notCompared },
      inFlight: this.inFlight,
      capturedBytes: this.captured,
      learnedNoise: { paths: state.noise.paths().map((r) => r.source), headers: state.noise.headers() },
      mismatches: state.mismatches.latest(),
      errors: state.errors.latest(),
    }
  }

  /** Aborts the copies in flight (before the pools close). */
  close(): void {
    this.closed = true
    for (const call of this.calls) call.abort()
  }

  /** @internal */ count(state: RouteShadow, outcome: ShadowOutcome): void {
    state.counts[outcome]++
    this.deps.metrics.shadowComparison(state.route.name, outcome)
  }

  /** @internal */ notCompared(state: RouteShadow, why: NotCompared): void {
    state.notCompared[why]++
  }

  /** @internal The copy and the comparison, after the client's answer. */
  async run(state: RouteShadow, tap: Tap, primary: Answer): Promise<void> {
    if (this.closed || this.inFlight >= this.options.maxInFlight) {
      if (!this.closed) this.count(state, 'dropped')
      return tap.release()
    }
    const { route } = state
    const shadowSide: Side = tap.primarySide === 'target' ? 'legacy' : 'target'
    const legacyRt = this.deps.upstreams.get(route.legacy.name)!
    const targetRt = this.deps.upstreams.get(route.target!.name)!
    const shadowRt = shadowSide === 'target' ? targetRt : legacyRt
    const path = redactedUrl(tap.url)
    this.inFlight++
    try {
      if (shadowRt.breaker.state() === 'open') throw new ShadowError('circuit open: not called')
      // TRACING: the copy in a span of its own, linked to the request's trace.
      const tracing = this.deps.tracing
      const copy = tracing ? await tracing.shadowCopy(tap.link, route.name, shadowRt, () => this.fetch(shadowRt, tap)) : await this.fetch(shadowRt, tap)
      const [legacy, target] = shadowSide === 'target' ? [primary, copy] : [copy, primary]
      this.expire(state)
      let differences = this.differences(state, legacy, target)
      if (differences.length && state.settings.detectNoise) {
        // A failed second call teaches nothing: the comparison stands as it is.
        const again = await this.fetch(legacyRt, tap).catch(() => undefined)
        if (again && (await this.learnNoise(state, tap.requestId, legacy, again))) differences = this.differences(state, legacy, target)
      }
      if (!differences.length) return this.count(state, 'match')
      this.count(state, 'mismatch')
      const kind = headersOnly(differences) ? 'headers' : 'body'
      if (kind === 'headers') state.headerOnly++
      state.mismatches.push({
        kind,
        at: new Date().toISOString(),
        method: tap.method,
        path,
        primary: tap.primarySide,
        legacy: { upstream: route.legacy.name, status: legacy.status },
        target: { upstream: route.target!.name, status: target.status },
        differences: reportDifferences(differences, tap.credentials),
        ...(tap.link && { traceId: tap.link.context.traceId }),
      })
    } catch (error) {
      if (error instanceof TooLarge) return this.notCompared(state, 'too_large')
      if (this.closed) return
      this.count(state, 'error')
      const message = error instanceof ShadowError ? error.message : `${(error as { code?: string }).code ?? 'error'}: ${(error as Error).message}`
      state.errors.push({ at: new Date().toISOString(), method: tap.method, path, upstream: shadowRt.upstream.name, error: message.slice(0, 200), ...(tap.link && { traceId: tap.link.context.traceId }) })
      this.deps.logger.debug({ route: route.name, upstream: shadowRt.upstream.name, err: message }, 'shadow call failed')
    } finally {
      this.inFlight--
      tap.release()
    }
  }

  private differences(state: RouteShadow, legacy: Answer, target: Answer): Difference[] {
    const { settings, noise } = state
    const ignore = noise.size ? [...settings.ignore, ...noise.paths()] : settings.ignore
    const ignoreHeaders = noise.size ? new Set([...settings.ignoreHeaders, ...noise.headers()]) : settings.ignoreHeaders
    return compareAnswers(legacy, target, { ignore, ignoreHeaders, compareHeaders: settings.compareHeaders })
  }

  /**
   * Legacy's two answers to one request: the leaves on which it disagrees with itself count as one
   * confirmation each (noise.ts); true when a rule was learned by it (recorded in the ledger).
   */
  private async learnNoise(state: RouteShadow, requestId: string, first: Answer, second: Answer): Promise<boolean> {
    const { settings, noise } = state
    const known = noise.size ? [...settings.ignore, ...noise.paths()] : settings.ignore
    const ignoreHeaders = noise.size ? new Set([...settings.ignoreHeaders, ...noise.headers()]) : settings.ignoreHeaders
    const candidates = noiseCandidates(first, second, { known, ignoreHeaders, compareHeaders: settings.compareHeaders })
    if (!candidates.length) return false
    const learned = noise.observe(requestId, candidates)
    if (!learned.length) return false
    const rules = learned.map((r) => r.rule)
    this.deps.logger.info({ route: state.route.name, rules }, 'shadow noise learned: legacy answers differ on these leaves in several requests')
    await this.record(state, { actor: 'shadow', reason: `noise learned: ${rules.join(', ')} (legacy differed with itself in ${learned[0]!.confirmations} requests)`, source: 'shadow' }, { change: 'noise-learned', rules: learned })
    return true
  }

  private async fetch(rt: UpstreamRuntime, tap: Tap): Promise<Answer> {
    const ms = this.options.timeoutMs
    // A timer and a controller of its own (not AbortSignal.any over a long-lived signal: one per copy, at full rate).
    const call = new AbortController()
    const timer = setTimeout(() => call.abort(new ShadowError(`no complete answer within ${ms} ms`)), ms)
    this.calls.add(call)
    try {
      // The one upstream call, uncounted: a copy never moves the breakers.
      const result = await rt.call({ method: tap.method, url: tap.url, headers: tap.headers ?? {}, body: tap.body, client: abortedBy(call.signal), uncountedTimeoutMs: ms, log: this.deps.logger })
      if (result.kind === 'client-gone') throw call.signal.reason instanceof ShadowError ? call.signal.reason : new ShadowError('shadow comparisons closed')
      if (result.kind === 'failure' && !result.answer) throw new ShadowError(result.cause ?? result.message)
      const response = result.kind === 'answer' ? result.answer : result.answer!
      const chunks: Buffer[] = []
      let size = 0
      for await (const chunk of response.body as AsyncIterable<Buffer>) {
        size += chunk.length
        if (size > this.options.maxBodyBytes) {
          response.body.destroy()
          throw new TooLarge()
        }
        chunks.push(chunk)
      }
      return { status: response.statusCode, headers: response.headers, body: Buffer.concat(chunks, size) }
    } finally {
      clearTimeout(timer)
      this.calls.delete(call)
    }
  }

  /** @internal */ get maxBodyBytes(): number {
    return this.options.maxBodyBytes
  }

  /**
   * @internal Memory for captured primary bodies, bounded for the whole proxy by
   * maxInFlight × maxBodyBytes whatever the number of answers streaming at once; false = full.
   */
  reserve(bytes: number): boolean {
    if (this.captured + bytes > this.options.maxInFlight * this.options.maxBodyBytes) return false
    this.captured += bytes
    return true
  }

  /** @internal */ unreserve(bytes: number): void {
    this.captured -= bytes
  }
}

class TooLarge extends Error {}

/** One copied request: what it needs to be replayed, and the primary answer as it streams. */
class Tap implements ShadowTap {
  readonly method: string
  readonly url: string
  /** Confirmations of noise count once per request. */
  readonly requestId: string
  headers: Record<string, string | string[]> | undefined
  body: Buffer | undefined
  credentials: string[]
  /** Tracing on: the request's span, which the copy's span links to. */
  readonly link: Link | undefined
  private head: { status: number; headers: IncomingHttpHeaders } | undefined
  private chunks: Buffer[] | undefined = []
  private size = 0
  private reserved = 0
  private done = false

  private readonly owner: ShadowComparisons
  private readonly state: RouteShadow
  readonly primarySide: Side

  constructor(owner: ShadowComparisons, state: RouteShadow, primarySide: Side, request: FastifyRequest) {
    this.owner = owner
    this.state = state
    this.primarySide = primarySide
    this.method = request.method
    this.url = request.url
    this.requestId = String(request.id)
    this.headers = { ...upstreamRequestHeaders(request.headers, clientOf(request.raw, owner.deps.trust), request.id), 'x-shadow': 'true' }
    this.body = request.body as Buffer | undefined
    this.credentials = credentialsOf(request.headers)
    this.link = owner.deps.tracing?.linkOf(request)
    if (owner.deps.tracing) owner.deps.tracing.dropIncomingContext(this.headers)
  }

  primaryResponse(upstream: string, status: number, headers: IncomingHttpHeaders): void {
    const expected = this.primarySide === 'target' ? this.state.route.target!.name : this.state.route.legacy.name
    if (upstream !== expected) return this.end('primary_failed') // a fallback: both answers would come from legacy
    // A stream of events never ends as one answer: holding its capture would only take budget.
    if (String(headers['content-type'] ?? '').startsWith('text/event-stream')) return this.end('event_stream')
    this.head = { status, headers }
  }

  primaryChunk(chunk: Buffer): void {
    if (!this.chunks) return
    this.size += chunk.length
    if (this.size > this.owner.maxBodyBytes) return this.end('too_large')
    if (!this.owner.reserve(chunk.length)) return this.end('dropped')
    this.reserved += chunk.length
    this.chunks.push(chunk)
  }

  primaryEnd(): void {
    if (this.done || !this.chunks) return
    if (!this.head) return this.end('primary_failed')
    this.done = true
    const primary: Answer = { ...this.head, body: Buffer.concat(this.chunks, this.size) }
    this.chunks = undefined
    // After the current I/O callbacks: the last bytes reach the client before the copy is issued.
    setImmediate(() => void this.owner.run(this.state, this, primary))
  }

  primaryFailed(): void {
    this.end('client_gone')
  }

  private end(why: NotCompared | 'dropped'): void {
    if (this.done) return
    this.done = true
    if (why === 'dropped') this.owner.count(this.state, 'dropped')
    else this.owner.notCompared(this.state, why)
    this.release()
  }

  /** Drops what the copy held (the credentials among the headers). */
  release(): void {
    this.owner.unreserve(this.reserved)
    this.reserved = 0
    this.chunks = undefined
    this.headers = undefined
    this.body = undefined
    this.credentials = []
  }
}


/** An AbortSignal as the upstream call's client signal. */
function abortedBy(signal: AbortSignal): ClientSignal {
  return {
    get aborted() {
      return signal.aborted
    },
    once: (_event, listener) => signal.addEventListener('abort', listener, { once: true }),
    off: (_event, listener) => signal.removeEventListener('abort', listener),
  }
}
