// The shadow comparison's admin endpoints, registered inside the admin plugin (admin-routes.ts)
// so they sit behind the same token check:
//   PUT    /admin/routes/:name/shadow        {"percent": 0-100, "ignore"?, "ignoreHeaders"?, "compareHeaders"?, "detectNoise"?, "noise…"?, "reason"?}
//   GET    /admin/routes/:name/shadow        the settings in force, the learned noise (when learned, confirmations, expiry) and the leaves being confirmed
//   DELETE /admin/routes/:name/shadow/noise  forgets the learned noise and the confirmations
//   GET    /admin/routes/:name/diffs         counts per outcome, learned noise, the latest mismatches and errors
// Each change is a ledger entry (stage "shadow") with the token's name as its actor. A run-time
// change lives in this process until the next start; the route map is the lasting setting.
import type { FastifyInstance, FastifyRequest } from 'fastify'
import { errors } from '../../lib/errors.ts'
import type { Route } from '../model/route-map.ts'
import { ShadowSettingsError, type ShadowComparisons } from '../rollout/shadow/shadow.ts'
import { ShadowEntry } from '../model/shadow-settings.ts'

export interface AdminShadowOptions {
  routes: readonly Route[]
  shadow: ShadowComparisons
  /** The admin token's name behind a request (admin-routes.ts). */
  actorOf(request: FastifyRequest): string
}

const Reason = { type: 'string', minLength: 1, maxLength: 500 }
// The route-map schema less `methods` (copying writes is decided in the route map, not at run time), plus a reason for the ledger.
const { methods: _methods, ...changeable } = ShadowEntry.properties
const ShadowChange = { type: 'object', required: ['percent'], additionalProperties: false, properties: { ...changeable, reason: Reason } }

export async function adminShadowRoutes(app: FastifyInstance, opts: AdminShadowOptions): Promise<void> {
  const { routes, shadow, actorOf } = opts
  const shadowable = (name: string): string => {
    const route = routes.find((r) => r.name === name)
    if (!route) throw new errors.ROUTE_NOT_FOUND(name, routes.map((r) => r.name).join(', '))
    if (!shadow.has(route.name)) throw new errors.NOTHING_TO_COMPARE(route.name)
    return route.name
  }

  app.put<{ Params: { name: string }; Body: Omit<ShadowEntry, 'methods'> & { reason?: string } }>('/admin/routes/:name/shadow', { schema: { body: ShadowChange } }, async (request) => {
    const route = shadowable(request.params.name)
    const { reason = 'admin API', ...change } = request.body
    try {
      return { route, shadow: await shadow.configure(route, change, { actor: actorOf(request), reason }) }
    } catch (error) {
      if (error instanceof ShadowSettingsError) throw new errors.ADMIN_BAD_SETTINGS(`body${error.message}`)
      throw error
    }
  })

  app.get<{ Params: { name: string } }>('/admin/routes/:name/shadow', async (request) => shadow.settings(shadowable(request.params.name)))

  app.delete<{ Params: { name: string }; Querystring: { reason?: string } }>(
    '/admin/routes/:name/shadow/noise',
    { schema: { querystring: { type: 'object', additionalProperties: false, properties: { reason: Reason } } } },
    async (request) => {
      const route = shadowable(request.params.name)
      const dropped = await shadow.resetNoise(route, { actor: actorOf(request), reason: request.query.reason ?? 'admin API: learned noise reset' })
      return { route, dropped }
    },
  )

  app.get<{ Params: { name: string } }>('/admin/routes/:name/diffs', async (request) => shadow.report(shadowable(request.params.name)))
}
