// The admin API, on the operators' listener only (proxy/ops-app.ts; registered when ADMIN_TOKEN
// or ADMIN_TOKENS is set; every call needs Authorization: Bearer <one of the tokens>, whose name
// becomes the request's actor, admin-auth.ts): state, rollout changes, the ledger, explain.
// Without a token the namespace is still reserved (404).
import type { FastifyInstance, FastifyRequest } from 'fastify'
import { errors } from '../../lib/errors.ts'
import { adminRampRoutes, type AdminRampRoutesOptions } from './admin-ramp-routes.ts'
import { FORWARDED_METHODS } from '../edge/edge-guards.ts'
import { adminAuth, type AdminAuthOptions } from './admin-auth.ts'
import { capabilitiesOf } from './admin-roles.ts'
import { refusedTarget } from '../edge/edge-guards.ts'
import type { FlagSource } from '../flags/flag-source.ts'
import { adminLedgerRoutes } from './admin-ledger-routes.ts'
import type { Ledger } from '../rollout/ledger.ts'
import type { ChangeRollout } from '../rollout/rollout-changes.ts'
import type { Upstreams } from '../forward/upstreams.ts'
import { adminShadowRoutes } from './admin-shadow-routes.ts'
import type { ShadowComparisons } from '../rollout/shadow/shadow.ts'
import type { Route } from '../model/route-map.ts'
import { EXPLAIN_HEADER, type ExplainedDecision } from '../routing/explain.ts'
import { adminTrafficRoutes } from './admin-traffic-routes.ts'
import type { TrafficHistory } from './traffic-history.ts'
import { adminParityRoutes } from './admin-parity-routes.ts'
import { adminStageRoutes } from './admin-stage-routes.ts'
import type { Stages } from '../rollout/stages.ts'
import type { StoreWriters } from '../rollout/store-writers.ts'
import type { ProxyMetrics } from '../observability/metrics.ts'
import type { ParityMonitor } from '../rollout/parity/parity-monitor.ts'

export interface AdminRoutesOptions {
  /** The tokens (each one's name is the actor of what its holder changes) and the admin limits. */
  auth: AdminAuthOptions
  /** The public listener's app: /admin/explain sends its path through it, as a client's request goes. */
  publicApp: FastifyInstance
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
  /** Serves the writer side, retirement and GET /admin/routes/:name/stage. */
  stages: Stages
  storeWriters: StoreWriters
  /** The read-your-writes counter (proxy_read_your_writes_total), shown per route. */
  readYourWrites: Pick<ProxyMetrics['readYourWrites'], 'get'>
  /** The proxy routes' explain secret (proxy-routes.ts, EXPLAIN_HEADER). */
  explainToken: string
}

/** Who is calling the admin API: the name of the token the request carried. */
export function adminActorOf(request: FastifyRequest): string {
  if (!request.adminActor) throw new Error('adminActorOf: not an authenticated admin API request')
  return request.adminActor
}

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
  adminAuth(app, opts.auth)

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
      ...(route.target ? { stage: opts.stages.stage(route) } : {}),
    }
  }

  /** Each split route's read-your-writes hits on this proxy (the console's stage column). */
  async function withReadYourWritesHits(states: Array<ReturnType<typeof routeState>>) {
    const { values } = await opts.readYourWrites.get()
    const hits = new Map(values.map((v) => [v.labels.route, v.value]))
    return states.map((s) => (s.stage ? { ...s, stage: { ...s.stage, readYourWritesHits: hits.get(s.name) ?? 0 } } : s))
  }

  reserveAdminNamespace(app)
  await app.register(adminShadowRoutes, { routes, shadow: opts.shadow, actorOf: adminActorOf })
  await app.register(adminRampRoutes, opts.ramps)
  await app.register(adminTrafficRoutes, { routes, history: opts.history })
  await app.register(adminParityRoutes, { routes, parity: opts.parity })
  await app.register(adminStageRoutes, { routes, stages: opts.stages, writers: opts.storeWriters, ledger: opts.ledger, actorOf: adminActorOf })

  // Who the caller is and what the console may offer them.
  app.get('/admin/whoami', async (request) => ({ actor: adminActorOf(request), role: request.adminRole, may: capabilitiesOf(request.adminRole!) }))

  app.get('/admin/state', async () => ({
    routes: await withReadYourWritesHits(routes.map(routeState)),
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

  // The path goes through the public app, as a request would: the router (path decoding, the
  // proxy's own paths), the edge guards and the proxied route's decision are the request path's.
  // The edge's target check runs first on the path exactly as given: the injector parses it as a
  // WHATWG URL (dot segments resolved, "#..." cut, "\\" made "/"), which a socket request never is.
  app.get<{ Querystring: { path?: string; user_id?: string; method?: string } }>('/admin/explain', async (request) => {
    const { path, user_id: userId, method = 'GET' } = request.query
    if (typeof path !== 'string' || !path.startsWith('/')) throw new errors.EXPLAIN_PATH_REQUIRED()
    const refused = refusedTarget(method.toUpperCase(), path)
    if (refused) return { route: null, upstream: 'proxy', why: `the proxy answers ${method.toUpperCase()} ${path.split('?')[0]} itself (${refused.statusCode}): ${refused.message}`, status: refused.statusCode }
    const headers: Record<string, string> = { [EXPLAIN_HEADER]: opts.explainToken }
    if (typeof userId === 'string' && userId !== '') headers['x-user-id'] = userId
    const answer = await opts.publicApp.inject({ method: method.toUpperCase() as 'GET', url: path, headers })
    const decided = answer.headers[EXPLAIN_HEADER] === 'decision'
    const explained: ExplainedDecision = decided
      ? answer.json()
      : { route: null, upstream: 'proxy', why: `the proxy answers ${method.toUpperCase()} ${path.split('?')[0]} itself (${answer.statusCode})` }
    const route = routes.find((r) => r.name === explained.route)
    const flag = route?.flag ? flags.state(route.flag) : undefined
    const rollout = flag ? { rollout: { flag: flag.flag, percent: flag.percent ?? null, source: flag.source } } : {}
    return { ...explained, ...(decided ? {} : { status: answer.statusCode }), ...rollout }
  })
}
