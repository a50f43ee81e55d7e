// Who may call the admin API, and how often. Every call needs Authorization: Bearer <a token of
// ADMIN_TOKEN / ADMIN_TOKENS>; the token's name becomes the request's actor. Two limits of their
// own, apart from the public per-address bucket, so that clients can never lock operators out:
// - a valid token: at most ADMIN_RATE_LIMIT_MAX calls per window, counted per token (five
//   console tabs behind one `kubectl port-forward` share an address, not a budget);
// - a missing or wrong token: ADMIN_AUTH_FAILURES_MAX per address, then the address waits
//   ADMIN_AUTH_BACKOFF_MS, twice as long after each further round (at most 15 min). The wait
//   refuses only calls without a valid token: an operator behind the same address still passes.
// Counted per process (no Redis): each replica limits alone, which bounds guessing all the same.
import { createHash, timingSafeEqual } from 'node:crypto'
import type { FastifyInstance } from 'fastify'
import { errors } from '../../lib/errors.ts'
import type { AdminToken } from '../config.ts'
import { clientKey } from '../edge/client-key.ts'
import { LocalRateLimitStore } from '../edge/rate-limit-store.ts'
import type { ProxyMetrics } from '../observability/metrics.ts'
import { roleAllows, roleNeeded, type AdminRole } from './admin-roles.ts'

export interface AdminAuthOptions {
  tokens: readonly AdminToken[]
  /** Calls per token per window; 0 = no limit. */
  rateLimitMax: number
  rateLimitWindowMs: number
  /** Failed logins from one address before it must wait. */
  failuresMax: number
  /** The first wait; doubled for each further round of failures. */
  backoffMs: number
  metrics: Pick<ProxyMetrics, 'adminAuthFailures' | 'adminRateLimited'>
}

const MAX_BACKOFF_MS = 15 * 60_000
const MAX_ADDRESSES = 10_000

const digest = (s: string) => createHash('sha256').update(s).digest()

/** One address's failed logins: the current round, the rounds so far, and its wait. */
interface Failures {
  count: number
  rounds: number
  waitUntil: number
  /** Forgotten after this (a quiet address starts again from the first wait). */
  forgetAt: number
}

/** Failed logins per address, with the back-off; bounded to MAX_ADDRESSES (the oldest go first). */
export class LoginBackoff {
  private readonly byAddress = new Map<string, Failures>()
  private readonly failuresMax: number
  private readonly backoffMs: number

  constructor(failuresMax: number, backoffMs: number) {
    this.failuresMax = failuresMax
    this.backoffMs = backoffMs
  }

  /** Ms the address must still wait before its next attempt without a valid token (0 = none). */
  waiting(address: string, now = Date.now()): number {
    const f = this.byAddress.get(address)
    return f && f.waitUntil > now ? f.waitUntil - now : 0
  }

  /** Counts one failed login; returns the wait it starts (0 = none yet). */
  failed(address: string, now = Date.now()): number {
    let f = this.byAddress.get(address)
    if (f && f.forgetAt <= now) f = undefined
    if (!f) {
      if (this.byAddress.size >= MAX_ADDRESSES) this.byAddress.delete(this.byAddress.keys().next().value!)
      f = { count: 0, rounds: 0, waitUntil: 0, forgetAt: 0 }
    }
    this.byAddress.delete(address)
    this.byAddress.set(address, f) // the most recent last: the oldest go first when full
    f.count++
    let wait = 0
    if (f.count >= this.failuresMax) {
      wait = Math.min(MAX_BACKOFF_MS, this.backoffMs * 2 ** f.rounds)
      f.rounds++
      f.count = 0
      f.waitUntil = now + wait
    }
    // Remembered for a while after the last failure, so the next round waits longer.
    f.forgetAt = now + Math.max(2 * MAX_BACKOFF_MS, this.backoffMs)
    return wait
  }
}

declare module 'fastify' {
  interface FastifyRequest {
    /** The name of the admin token the request carried (admin API only). */
    adminActor?: string
    /** That token's role (admin-roles.ts). */
    adminRole?: AdminRole
  }
}

/** The onRequest hook of the admin API: the actor, the per-token limit and the login back-off. */
export function adminAuth(app: FastifyInstance, opts: AdminAuthOptions): void {
  const expected = opts.tokens.map((t) => ({ name: t.name, role: t.role, digest: digest(`Bearer ${t.token}`) }))
  const backoff = new LoginBackoff(opts.failuresMax, opts.backoffMs)
  const perToken = new LocalRateLimitStore(Math.max(1, expected.length))
  const windowSeconds = Math.max(1, Math.round(opts.rateLimitWindowMs / 1000))
  for (const reason of ['missing', 'wrong', 'backoff']) opts.metrics.adminAuthFailures.labels(reason).inc(0)

  app.decorateRequest('adminActor', undefined)
  app.decorateRequest('adminRole', undefined)
  // After validation (a forcing body needs the owner): a call above the token's role is refused, nothing done.
  app.addHook('preHandler', (request, _reply, done) => {
    const role = request.adminRole
    if (!role) return done()
    const needed = roleNeeded(request.method, request.routeOptions.url, request.body)
    if (roleAllows(role, needed)) return done()
    request.log.warn({ actor: request.adminActor, role, needed }, 'admin API: call above the token\'s role refused')
    done(new errors.ADMIN_ROLE_INSUFFICIENT(request.adminActor!, role, needed))
  })
  app.addHook('onRequest', (request, reply, done) => {
    const given = request.headers.authorization
    // Every token is compared (in constant time), whichever matches: the time says nothing about which.
    let actor: string | undefined
    let role: AdminRole | undefined
    if (typeof given === 'string') {
      const d = digest(given)
      for (const t of expected) {
        if (timingSafeEqual(d, t.digest) && actor === undefined) [actor, role] = [t.name, t.role]
      }
    }
    if (!actor) {
      const address = clientKey(request.ip)
      const waiting = backoff.waiting(address)
      if (waiting > 0) {
        opts.metrics.adminAuthFailures.labels('backoff').inc()
        const seconds = Math.ceil(waiting / 1000)
        reply.header('retry-after', seconds)
        return done(new errors.ADMIN_AUTH_BACKOFF(seconds))
      }
      opts.metrics.adminAuthFailures.labels(typeof given === 'string' ? 'wrong' : 'missing').inc()
      const wait = backoff.failed(address)
      request.log.warn({ address, waitMs: wait || undefined }, 'admin API: call without a valid token refused')
      reply.header('www-authenticate', 'Bearer realm="proxy-admin"')
      return done(new errors.ADMIN_UNAUTHORIZED())
    }
    request.adminActor = actor
    request.adminRole = role
    if (opts.rateLimitMax === 0) return done()
    perToken.incr(
      actor,
      ({ current, ttl }) => {
        if (current <= opts.rateLimitMax) return done()
        opts.metrics.adminRateLimited.inc()
        const seconds = Math.max(1, Math.ceil(ttl / 1000))
        reply.header('retry-after', seconds)
        done(new errors.RATE_LIMITED(opts.rateLimitMax, windowSeconds, seconds))
      },
      opts.rateLimitWindowMs,
    )
  })
}
