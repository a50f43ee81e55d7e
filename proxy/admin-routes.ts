// The admin API (only registered when ADMIN_TOKEN is set; every call needs
// Authorization: Bearer <ADMIN_TOKEN>): state, rollout changes in file mode, explain. Without
// it the namespace is still reserved (404).
import { createHash, timingSafeEqual } from 'node:crypto'
import type { FastifyInstance } from 'fastify'
import { HttpError, notFound } from '../lib/http/errors.ts'
import { FORWARDED_METHODS } from './edge-guards.ts'
import { FlagConflictError, type FlagSource } from './flag-source.ts'
import type { Upstreams } from './upstreams.ts'
import { matchRoute, type Route } from './route-map.ts'
import { decideRoute } from './routing.ts'
import { adminTrafficRoutes } from './admin-traffic-routes.ts'
import type { TrafficHistory } from './traffic-history.ts'

export interface AdminRoutesOptions {
  token: string
  routes: Route[]
  upstreams: Upstreams
  flags: FlagSource
  allowBackendOverride: boolean
  /** Serves GET /admin/traffic and /admin/history (the console's rates and charts). */
  history: TrafficHistory
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
  const expected = digest(`Bearer ${opts.token}`)

  app.addHook('onRequest', async (request, reply) => {
    const given = request.headers.authorization
    if (typeof given !== 'string' || !timingSafeEqual(digest(given), expected)) {
      reply.header('www-authenticate', 'Bearer realm="proxy-admin"')
      throw new HttpError(401, 'admin API needs Authorization: Bearer <ADMIN_TOKEN>')
    }
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
  await app.register(adminTrafficRoutes, { routes, history: opts.history })

  app.get('/admin/state', async () => ({
    routes: routes.map(routeState),
    breakers: Object.fromEntries([...upstreams.values()].map((rt) => [rt.upstream.name, { state: rt.breaker.state(), stats: rt.breaker.stats() }])),
    flags: flags.status(),
    backendOverride: opts.allowBackendOverride,
  }))

  app.put<{ Params: { name: string }; Body: { percent: number; reason?: string } }>(
    '/admin/routes/:name/rollout',
    {
      schema: {
        body: {
          type: 'object',
          required: ['percent'],
          additionalProperties: false,
          properties: { percent: { type: 'integer', minimum: 0, maximum: 100 }, reason: { type: 'string', maxLength: 500 } },
        },
      },
    },
    async (request) => {
      const route = routes.find((r) => r.name === request.params.name)
      if (!route) throw notFound(`no route named "${request.params.name}" (routes: ${routes.map((r) => r.name).join(', ')})`)
      if (!route.flag) throw new HttpError(409, `route "${route.name}" has no target: there is nothing to roll out`)
      if (!flags.setRollout) throw new HttpError(409, 'flags cannot be changed through the proxy in this mode')
      try {
        const state = await flags.setRollout(route.flag, request.body.percent)
        request.log.info({ route: route.name, flag: route.flag, percent: state.percent, reason: request.body.reason }, 'rollout changed through the admin API')
        return routeState(route)
      } catch (error) {
        if (error instanceof FlagConflictError) throw new HttpError(409, error.message)
        throw error
      }
    },
  )

  app.get<{ Querystring: { path?: string; user_id?: string; method?: string } }>('/admin/explain', async (request) => {
    const { path, user_id: userId, method = 'GET' } = request.query
    if (typeof path !== 'string' || !path.startsWith('/')) throw new HttpError(400, 'path is required and must start with "/"')
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
