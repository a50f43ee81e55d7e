// The admin API (only registered when ADMIN_TOKEN or ADMIN_TOKENS is set; every call needs
// Authorization: Bearer <one of the tokens>, whose name becomes the request's actor): state,
// rollout changes, the ledger, explain. Without a token the namespace is still reserved (404).
import { createHash, timingSafeEqual } from 'node:crypto'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import { errors } from '../lib/errors.ts'
import { adminRampRoutes, type AdminRampRoutesOptions } from './admin-ramp-routes.ts'
import { FORWARDED_METHODS } from './edge-guards.ts'
import type { AdminToken } from './config.ts'
import type { FlagSource } from './flag-source.ts'
import { adminLedgerRoutes } from './admin-ledger-routes.ts'
import type { Ledger } from './ledger.ts'
import type { ChangeRollout } from './rollout-changes.ts'
import type { Upstreams } from './upstreams.ts'
import { adminShadowRoutes } from './admin-shadow-routes.ts'
import type { ShadowComparisons } from './shadow/shadow.ts'
import { matchRoute, type Route } from './route-map.ts'
import { decideRoute } from './routing.ts'
import { adminTrafficRoutes } from './admin-traffic-routes.ts'
import type { TrafficHistory } from './traffic-history.ts'
import { adminParityRoutes } from './parity/admin-parity-routes.ts'
import type { ParityMonitor } from './parity/parity-monitor.ts'

export interface AdminRoutesOptions {
  /** Each token's name is the actor of what its holder changes. */
  tokens: readonly AdminToken[]
  routes: Route[]
  upstreams: Upstreams
  flags: FlagSource
  changeRollout: ChangeRollout
  ledger: Ledger
  allowBackendOverride: boolean
  shadow: ShadowComparisons
  ramps: AdminRampRoutesOptions
  /** Serves GET /admin/traffic and /admin/history (the console's rates and charts). */
  history: TrafficHistory
  /** Serves GET /admin/routes/:name/parity. */
  parity: ParityMonitor
}

declare module 'fastify' {
  interface FastifyRequest {
    /** The name of the admin token the request carried (admin API only). */
    adminActor?: string
  }
}

/** Who is calling the admin API: the name of the token the request carried. */
export function adminActorOf(request: FastifyRequest): string {
  if (!request.adminActor) throw new Error('adminActorOf: not an authenticated admin API request')
  return request.adminActor
}

const digest = (s: string) => createHash('sha256').update(s).digest()

/**
 * /admin and everything below it belong to the proxy in every configuration: a path the admin
 * API does not serve (or every path, when it is off) is a 404 here, never forwarded upstream
 * (with the client's Authorization header).
 */
export function reserveAdminNamespace(app: FastifyInstance): void {
  for (const url of ['/admin', '/admin/*']) app.route({ method: [...FORWARDED_METHODS], url, handler: (_request, reply) => reply.callNotFound() })
}

export async function adminRoutes(app: FastifyInstance, opts: AdminRoutesOptions): Promise<void> {
  const { routes, upstreams, flags } = opts
  const expected = opts.tokens.map((t) => ({ name: t.name, digest: digest(`Bearer ${t.token}`) }))

  app.decorateRequest('adminActor', undefined)
  app.addHook('onRequest', async (request, reply) => {
    const given = request.headers.authorization
    // Every token is compared (in constant time), whichever matches: the time says nothing about which.
    let actor: string | undefined
    if (typeof given === 'string') {
      const d = digest(given)
      for (const t of expected) if (timingSafeEqual(d, t.digest)) actor ??= t.name
    }
    if (!actor) {
      reply.header('www-authenticate', 'Bearer realm="proxy-admin"')
      throw new errors.ADMIN_UNAUTHORIZED()
    }
    request.adminActor = actor
  })

  const upstreamState = (name: string) => {
    const rt = upstreams.get(name)!
    return { name, url: rt.upstream.url, breaker: rt.breaker.state() }
  }
  const routeState = (route: Route) => {
    const flag = route.flag ? flags.state(route.flag) : undefined
    return {
      name: route.name,
      prefix: route.prefix,
      legacy: upstreamState(route.legacy.name),
      ...(route.target ? { target: upstreamState(route.target.name) } : {}),
      ...(flag ? { flag: flag.flag, percent: flag.percent ?? null, source: flag.source, sticky: flag.sticky } : {}),
    }
  }

  reserveAdminNamespace(app)
  await app.register(adminShadowRoutes, { routes, shadow: opts.shadow })
  await app.register(adminRampRoutes, opts.ramps)
  await app.register(adminTrafficRoutes, { routes, history: opts.history })
  await app.register(adminParityRoutes, { routes, parity: opts.parity })

  app.get('/admin/state', async () => ({
    routes: routes.map(routeState),
    breakers: Object.fromEntries([...upstreams.values()].map((rt) => [rt.upstream.name, { state: rt.breaker.state(), stats: rt.breaker.stats() }])),
    flags: flags.status(),
    backendOverride: opts.allowBackendOverride,
  }))

  await app.register(adminLedgerRoutes, { ledger: opts.ledger })

  app.put<{ Params: { name: string }; Body: { percent: number; reason?: string } }>(
    '/admin/routes/:name/rollout',
    {
      schema: {
        body: {
          type: 'object',
          required: ['percent'],
          additionalProperties: false,
          properties: { percent: { type: 'integer', minimum: 0, maximum: 100 }, reason: { type: 'string', minLength: 1, maxLength: 500 } },
        },
      },
    },
    async (request) => {
      const route = routes.find((r) => r.name === request.params.name)
      if (!route) throw new errors.ROUTE_NOT_FOUND(request.params.name, routes.map((r) => r.name).join(', '))
      if (!route.flag) throw new errors.ROUTE_HAS_NO_TARGET(route.name)
      // A flag managed elsewhere rejects with a 409 of the catalogue, an unreachable Unleash with a 502.
      await opts.changeRollout(route, request.body.percent, { actor: adminActorOf(request), reason: request.body.reason ?? 'admin API', source: 'admin' })
      return routeState(route)
    },
  )

  app.get<{ Querystring: { path?: string; user_id?: string; method?: string } }>('/admin/explain', async (request) => {
    const { path, user_id: userId, method = 'GET' } = request.query
    if (typeof path !== 'string' || !path.startsWith('/')) throw new errors.EXPLAIN_PATH_REQUIRED()
    const route = matchRoute(routes, path.split('?')[0])
    const flag = route.flag ? flags.state(route.flag) : undefined
    const rollout = flag ? { rollout: { flag: flag.flag, percent: flag.percent ?? null, source: flag.source } } : {}
    if (route.target && (typeof userId !== 'string' || userId === '')) {
      return { route: route.name, upstream: null, ...rollout, why: 'no user_id: an anonymous client gets a random id in a cookie and keeps its side; give user_id to see one identity' }
    }
    const breakers = { legacy: upstreams.get(route.legacy.name)!.breaker.state(), target: route.target ? upstreams.get(route.target.name)!.breaker.state() : undefined }
    const decision = decideRoute(route, { method: method.toUpperCase(), identity: userId }, flags, breakers)
    const { expected } = decision
    const chose = !route.target ? `route "${route.name}" always goes to ${route.legacy.name}` : `${route.flag} sends this identity to ${decision.side === 'target' ? 'the target' : 'legacy'}`
    const targetOpen = decision.side === 'target' && breakers.target === 'open'
    const needsLegacy = decision.side === 'legacy' || (targetOpen && decision.fallback === 'legacy')
    const why =
      needsLegacy && breakers.legacy === 'open'
        ? `${route.legacy.name} circuit is open: 503 with Retry-After`
        : !targetOpen
          ? chose
          : decision.fallback === 'legacy'
            ? `${route.target!.name} circuit is open: ${method} falls back to ${route.legacy.name}`
            : `${route.target!.name} circuit is open: ${method} is not replayed on legacy`
    return { route: route.name, upstream: expected.upstream, ...(expected.status ? { status: expected.status } : {}), reason: expected.reason, fallback: decision.fallback, ...rollout, why }
  })
}
