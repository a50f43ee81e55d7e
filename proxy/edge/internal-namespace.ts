// /internal/* on the services (the parity digests) is for the proxy and operators on the inside
// network, never for clients: the proxy answers it 404 itself in every configuration, whatever
// the catch-all route would forward.
import type { FastifyInstance } from 'fastify'
import { FORWARDED_METHODS } from './edge-guards.ts'

export const INTERNAL_PREFIX = '/internal'

export function reserveInternalNamespace(app: FastifyInstance): void {
  for (const url of [INTERNAL_PREFIX, `${INTERNAL_PREFIX}/*`]) app.route({ method: [...FORWARDED_METHODS], url, handler: (_request, reply) => reply.callNotFound() })
}
