// One JSON error shape for every service: {"error": "..."} (the specification's Error schema).
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { DatabaseUnavailableError, sqlState } from '../db/database.ts'

/** An error whose message is safe to show the client, with its HTTP status. */
export class HttpError extends Error {
  override readonly name = 'HttpError'
  constructor(
    readonly statusCode: number,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message)
  }
}

export const badRequest = (message: string) => new HttpError(400, message)
export const notFound = (message: string) => new HttpError(404, message)

// Constraint violations are client mistakes that slipped past validation (e.g. a user_id that
// does not exist): answer 4xx naming the column rather than 500.
function fromSqlState(error: unknown): HttpError | undefined {
  const state = sqlState(error)
  if (!state) return undefined
  const detail = (error as { detail?: string; column?: string; constraint?: string }).detail ?? ''
  const column = /Key \(([^)]+)\)/.exec(detail)?.[1] ?? (error as { column?: string }).column
  if (state === '23505') return new HttpError(409, column ? `${column} already exists` : 'duplicate value')
  if (state === '23503') return new HttpError(400, column ? `${column} refers to a record that does not exist` : 'reference to a missing record')
  // Class 22 (data exception: bad encoding such as a NUL byte, overflow, bad date) and the other
  // integrity violations (23: check, not-null) come from values the client sent.
  if (state.startsWith('22') || state.startsWith('23')) return new HttpError(400, `invalid value: ${(error as Error).message}`)
  return undefined
}

function statusOf(error: FastifyError): number {
  if (error.validation) return 400
  const status = error.statusCode ?? 500
  return status >= 400 && status < 600 ? status : 500
}

export function registerErrorHandlers(app: FastifyInstance): void {
  app.setErrorHandler((error: FastifyError, request: FastifyRequest, reply: FastifyReply) => {
    if (error instanceof DatabaseUnavailableError) {
      request.log.warn({ err: error }, 'database unavailable')
      return reply.code(503).header('retry-after', '1').send({ error: 'database unavailable, try again shortly' })
    }
    const mapped = error instanceof HttpError ? error : fromSqlState(error)
    if (mapped) {
      return reply.code(mapped.statusCode).headers(mapped instanceof HttpError ? mapped.headers : {}).send({ error: mapped.message })
    }
    const status = statusOf(error)
    if (status >= 500) {
      request.log.error({ err: error }, 'request failed')
      return reply.code(status).send({ error: 'internal server error' })
    }
    // Fastify's own 4xx (validation, bad JSON, 413 body too large, 415 media type) carry useful text.
    return reply.code(status).send({ error: error.message })
  })

  app.setNotFoundHandler((request, reply) => {
    reply.code(404).send({ error: `no route for ${request.method} ${request.url.split('?')[0]}` })
  })
}

/** The methods the services answer (and the edge proxy forwards); anything else is a 405. */
export const HTTP_METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'] as const

/** Answers 405 JSON (with Allow) for the methods a path does not serve. */
export function methodNotAllowed(app: FastifyInstance, url: string, allowed: readonly string[]): void {
  const allow = new Set(allowed.flatMap((m) => (m === 'GET' ? ['GET', 'HEAD'] : [m])))
  app.route({
    method: HTTP_METHODS.filter((m) => !allow.has(m)),
    url,
    schema: { hide: true }, // not part of the API: left out of the OpenAPI document
    handler: async (request, reply) => {
      reply.code(405).header('allow', [...allow].join(', ')).send({ error: `method ${request.method} not allowed on ${url}` })
    },
  })
}
