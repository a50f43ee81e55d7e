// GET /admin/routes/:name/parity: compares the route's two stores now (proxy/rollout/parity/), or with
// ?cached=true answers the last periodic check. Registered inside the admin plugin (behind its
// token). A route without a parity endpoint answers available: false with the reason, never a
// drift of 0.
import type { FastifyInstance } from 'fastify'
import { errors } from '../../lib/errors.ts'
import type { Route } from '../model/route-map.ts'
import type { ParityMonitor } from '../rollout/parity/parity-monitor.ts'

export interface AdminParityOptions {
  routes: readonly Route[]
  parity: ParityMonitor
}

export async function adminParityRoutes(app: FastifyInstance, opts: AdminParityOptions): Promise<void> {
  app.get<{ Params: { name: string }; Querystring: { cached?: 'true' | 'false' } }>(
    '/admin/routes/:name/parity',
    // As text: the admin API's query strings are not coerced.
    { schema: { querystring: { type: 'object', additionalProperties: false, properties: { cached: { type: 'string', enum: ['true', 'false'] } } } } },
    async (request) => {
      const route = opts.routes.find((r) => r.name === request.params.name)
      if (!route) throw new errors.ROUTE_NOT_FOUND(request.params.name, opts.routes.map((r) => r.name).join(', '))
      if (request.query.cached === 'true') return opts.parity.last(route.name) ?? (await opts.parity.check(route))
      return opts.parity.check(route)
    },
  )
}
