// Guarded ramps through the admin API (registered inside the admin plugin, behind its bearer
// check): start, look at, pause, resume a route's ramp, and roll a route back to 0 % at once.
// The work is the ramp controller's (proxy/rollout/ramp/controller.ts).
import type { FastifyInstance, FastifyRequest } from 'fastify'
import { Type } from '@sinclair/typebox'
import type { ActorOf, RampController } from '../rollout/ramp/controller.ts'
import { RampRequest } from '../rollout/ramp/state.ts'

export interface AdminRampRoutesOptions {
  ramps: RampController
  /** The acting admin of a request (named admin tokens); default "admin". */
  actorOf?: ActorOf
}

type Named = { Params: { name: string } }
/** Pause, resume and rollback take an optional reason for the ledger (or no body). */
const RollbackBody = Type.Union([Type.Null(), Type.Object({ reason: Type.Optional(Type.String({ maxLength: 500 })) }, { additionalProperties: false })])

export async function adminRampRoutes(app: FastifyInstance, opts: AdminRampRoutesOptions): Promise<void> {
  const { ramps } = opts
  const actorOf = (request: FastifyRequest) => opts.actorOf?.(request) ?? 'admin'

  app.put<Named & { Body: RampRequest }>('/admin/routes/:name/ramp', { schema: { body: RampRequest } }, async (request) =>
    ramps.startRamp(request.params.name, request.body, actorOf(request)),
  )
  app.get<Named>('/admin/routes/:name/ramp', async (request) => ramps.view(request.params.name))
  app.post<Named & { Body: { reason?: string } | null }>('/admin/routes/:name/ramp/pause', { schema: { body: RollbackBody } }, async (request) =>
    ramps.pause(request.params.name, actorOf(request), request.body?.reason ?? ''),
  )
  app.post<Named & { Body: { reason?: string } | null }>('/admin/routes/:name/ramp/resume', { schema: { body: RollbackBody } }, async (request) =>
    ramps.resume(request.params.name, actorOf(request), request.body?.reason ?? ''),
  )
  app.post<Named & { Body: { reason?: string } | null }>('/admin/routes/:name/rollback', { schema: { body: RollbackBody } }, async (request) =>
    ramps.rollback(request.params.name, actorOf(request), request.body?.reason ?? ''),
  )
}
