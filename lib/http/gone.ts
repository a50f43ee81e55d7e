// A domain a service no longer serves (the monolith once a domain moved out, DISABLED_DOMAINS):
// every method on its paths answers 410 with the catalogue's DOMAIN_GONE.
import type { FastifyInstance } from 'fastify'
import { errors } from '../errors.ts'

export async function goneRoutes(app: FastifyInstance, opts: { domain: string; paths: readonly string[] }): Promise<void> {
  for (const url of opts.paths) {
    app.all(url, { schema: { hide: true } }, async () => {
      throw new errors.DOMAIN_GONE(opts.domain)
    })
  }
}
