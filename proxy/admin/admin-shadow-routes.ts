// The shadow comparison's admin endpoints, registered inside the admin plugin (admin-routes.ts)
// so they sit behind the same token check:
//   PUT /admin/routes/:name/shadow  {"percent": 0-100, "ignore"?, "ignoreHeaders"?, "compareHeaders"?, "detectNoise"?}
//   GET /admin/routes/:name/diffs   counts per outcome, learned noise, the latest mismatches and errors
// A run-time change lives in this process until the next start; the route map is the lasting setting.
import type { FastifyInstance } from 'fastify'
import { errors } from '../../lib/errors.ts'
import type { Route } from '../model/route-map.ts'
import { ShadowSettingsError, type ShadowComparisons } from '../rollout/shadow/shadow.ts'
import { ShadowEntry } from '../model/shadow-settings.ts'

export interface AdminShadowOptions {
  routes: readonly Route[]
  shadow: ShadowComparisons
}

// The route-map schema less `methods`: copying writes is decided in the route map, not at run time.
const { methods: _methods, ...changeable } = ShadowEntry.properties
const ShadowChange = { type: 'object', required: ['percent'], additionalProperties: false, properties: changeable }

export async function adminShadowRoutes(app: FastifyInstance, opts: AdminShadowOptions): Promise<void> {
  const { routes, shadow } = opts
  const shadowable = (name: string): string => {
    const route = routes.find((r) => r.name === name)
    if (!route) throw new errors.ROUTE_NOT_FOUND(name, routes.map((r) => r.name).join(', '))
    if (!shadow.has(route.name)) throw new errors.NOTHING_TO_COMPARE(route.name)
    return route.name
  }

  app.put<{ Params: { name: string }; Body: Omit<ShadowEntry, 'methods'> }>('/admin/routes/:name/shadow', { schema: { body: ShadowChange } }, async (request) => {
    const route = shadowable(request.params.name)
    try {
      return { route, shadow: shadow.configure(route, request.body) }
    } catch (error) {
      if (error instanceof ShadowSettingsError) throw new errors.ADMIN_BAD_SETTINGS(`body${error.message}`)
      throw error
    }
  })

  app.get<{ Params: { name: string } }>('/admin/routes/:name/diffs', async (request) => shadow.report(shadowable(request.params.name)))
}
