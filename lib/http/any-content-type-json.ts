import type { FastifyInstance } from 'fastify'

/**
 * Parses every request body as JSON whatever its Content-Type (or none), as the legacy Go
 * handlers did (`json.NewDecoder(r.Body)` never looks at the header): `curl -d '{...}'` sends
 * application/x-www-form-urlencoded and got its 201 from the legacy. Not JSON is still a 400.
 */
export function parseAnyContentTypeAsJson(app: FastifyInstance): void {
  app.addContentTypeParser('*', { parseAs: 'string' }, app.getDefaultJsonParser('error', 'error'))
}
