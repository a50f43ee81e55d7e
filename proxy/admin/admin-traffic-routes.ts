// GET /admin/traffic (current rates per route and upstream) and GET /admin/history?route= (the
// last hour per route) from the traffic history (traffic-history.ts). Registered inside the
// admin API, behind its token check.
import type { FastifyInstance } from 'fastify'
import { errors } from '../../lib/errors.ts'
import type { Route } from '../model/route-map.ts'
import type { TrafficHistory } from './traffic-history.ts'

export interface AdminTrafficRoutesOptions {
  routes: readonly Route[]
  history: TrafficHistory
}

export async function adminTrafficRoutes(app: FastifyInstance, opts: AdminTrafficRoutesOptions): Promise<void> {
  const { routes, history } = opts

  app.get('/admin/traffic', async () => history.traffic())

  app.get<{ Querystring: { route?: string } }>('/admin/history', async (request) => {
    const name = request.query.route
    if (typeof name !== 'string' || name === '') throw new errors.ROUTE_NAME_REQUIRED()
    if (!routes.some((r) => r.name === name)) throw new errors.ROUTE_NOT_FOUND(name, routes.map((r) => r.name).join(', '))
    return {
      route: name,
      intervalSeconds: history.options.intervalMs / 1000,
      retentionSeconds: history.options.retentionMs / 1000,
      points: history.history(name),
    }
  })
}
