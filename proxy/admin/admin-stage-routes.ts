// The stages of a route's migration beyond the read percentage (proxy/rollout/stages.ts):
// GET /admin/routes/:name/stage, PUT /admin/routes/:name/writes {"side","reason","force"} and
// POST /admin/routes/:name/retire {"reason","force"}. A guard that does not hold answers 409
// STAGE_GUARD_REFUSED naming the guard and its value. Where the stores decide who writes:
// GET /admin/routes/:name/writers (what each store says), GET /admin/routes/:name/conflicts and
// POST /admin/routes/:name/conflicts/resolve {"key", "keep": "legacy"|"target", "rekey"?, "reason"}
// (recorded in the ledger). Registered inside the admin plugin.
import type { FastifyInstance, FastifyRequest } from 'fastify'
import { errors } from '../../lib/errors.ts'
import type { Route } from '../model/route-map.ts'
import type { Stages } from '../rollout/stages.ts'
import type { Ledger } from '../rollout/ledger.ts'
import type { StoreWriters } from '../rollout/store-writers.ts'
import { writesFlagOf } from '../routing/decision.ts'

export interface AdminStageOptions {
  routes: readonly Route[]
  stages: Stages
  writers: StoreWriters
  ledger: Ledger
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

  /** A route whose stores decide who writes (`writer` in the route map). */
  const writerRouteOf = (name: string): Route => {
    const route = routeOf(name)
    if (!route.writer) throw new errors.STAGE_REFUSED(`the stores of route "${route.name}" do not decide who writes (no "writer" in the route map)`)
    return route
  }

  app.get<{ Params: { name: string } }>('/admin/routes/:name/writers', async (request) => opts.writers.reconcile(writerRouteOf(request.params.name)))

  app.get<{ Params: { name: string } }>('/admin/routes/:name/conflicts', async (request) => opts.writers.conflicts(writerRouteOf(request.params.name)))

  app.post<{ Params: { name: string }; Body: { key: string; keep: 'legacy' | 'target'; rekey?: 'legacy' | 'target'; reason: string } }>(
    '/admin/routes/:name/conflicts/resolve',
    {
      schema: {
        body: {
          type: 'object',
          required: ['key', 'keep', 'reason'],
          additionalProperties: false,
          properties: {
            key: { type: 'string', pattern: '^[1-9][0-9]{0,9}$' },
            keep: { type: 'string', enum: ['legacy', 'target'] },
            // The losing side's record is kept under a new id instead of being replaced.
            rekey: { type: 'string', enum: ['legacy', 'target'] },
            reason,
          },
        },
      },
    },
    async (request) => {
      const route = writerRouteOf(request.params.name)
      const { key, keep, rekey, reason: why } = request.body
      if (rekey === keep) throw new errors.ADMIN_BAD_SETTINGS('rekey names the side whose record moves to a new id: the side that does not keep the key')
      const actor = opts.actorOf(request)
      const loser = keep === 'legacy' ? 'target' : 'legacy'
      const plan = { [keep]: 'keep', [loser]: rekey ? 'rekey' : 'take' } as { legacy: 'keep' | 'take' | 'rekey'; target: 'keep' | 'take' | 'rekey' }
      const result = await opts.writers.resolve(route, key, plan, actor)
      await opts.ledger.append({
        route: route.name,
        flag: writesFlagOf(route.flag!),
        from: null,
        to: null,
        actor,
        reason: why,
        source: 'admin',
        stage: 'conflict',
        guard: { key, keep, rekey: rekey ?? null },
        sample: result,
      })
      return { key, keep, rekey: rekey ?? null, ...result }
    },
  )

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
