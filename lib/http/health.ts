import type { FastifyInstance } from 'fastify'

export interface HealthOptions {
  /** Liveness paths answering {"status": true} (the legacy shape). */
  livePaths: string[]
  /** Readiness: resolves when the service's dependencies answer; a throw makes /ready 503. */
  check: () => Promise<void>
}

export async function healthRoutes(app: FastifyInstance, opts: HealthOptions): Promise<void> {
  for (const path of opts.livePaths) app.get(path, async () => ({ status: true }))
  app.get('/ready', async (_request, reply) => {
    try {
      await opts.check()
      return { status: true }
    } catch (err) {
      return reply.code(503).send({ status: false, error: (err as Error).message })
    }
  })
}
