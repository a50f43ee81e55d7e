// The stages of a route's migration beyond the read percentage (proxy/rollout/stages.ts):
// GET /admin/routes/:name/stage, PUT /admin/routes/:name/writes {"side","reason","force"} and
// POST /admin/routes/:name/retire {"reason","force"}. A guard that does not hold answers 409
// STAGE_GUARD_REFUSED naming the guard and its value. Registered inside the admin plugin.
import type { FastifyInstance, FastifyRequest } from 'fastify'
import { errors } from '../../lib/errors.ts'
import type { Route } from '../model/route-map.ts'
import type { Stages } from '../rollout/stages.ts'

export interface AdminStageOptions {
  routes: readonly Route[]
  stages: Stages
  actorOf(request: FastifyRequest): string
}

const reason = { type: 'string', minLength: 1, maxLength: 500 }
// Forcing past a guard needs the reason why.
const forceNeedsReason = { if: { properties: { force: { const: true } }, required: ['force'] }, then: { required: ['reason'] } }

export async function adminStageRoutes(app: FastifyInstance, opts: AdminStageOptions): Promise<void> {
  const routeOf = (name: string): Route => {
    const route = opts.routes.find((r) => r.name === name)
    if (!route) throw new errors.ROUTE_NOT_FOUND(name, opts.routes.map((r) => r.name).join(', '))
    if (!route.target) throw new errors.ROUTE_HAS_NO_TARGET(route.name)
    return route
  }

  app.get<{ Params: { name: string } }>('/admin/routes/:name/stage', async (request) => opts.stages.stage(routeOf(request.params.name)))

  app.put<{ Params: { name: string }; Body: { side: 'legacy' | 'target'; reason: string; force?: boolean } }>(
    '/admin/routes/:name/writes',
    {
      schema: {
        body: {
          type: 'object',
          required: ['side', 'reason'],
          additionalProperties: false,
          properties: { side: { type: 'string', enum: ['legacy', 'target'] }, reason, force: { type: 'boolean' } },
        },
      },
    },
    async (request) => {
      const { side, reason: why, force } = request.body
      return opts.stages.switchWrites(routeOf(request.params.name), side, { actor: opts.actorOf(request), reason: why, force })
    },
  )

  app.post<{ Params: { name: string }; Body: { reason?: string; force?: boolean } | undefined }>(
    '/admin/routes/:name/retire',
    { schema: { body: { type: 'object', additionalProperties: false, properties: { reason, force: { type: 'boolean' } }, ...forceNeedsReason } } },
    async (request) => {
      const body = request.body ?? {}
      return opts.stages.retire(routeOf(request.params.name), { actor: opts.actorOf(request), reason: body.reason ?? 'admin API', force: body.force })
    },
  )
}
