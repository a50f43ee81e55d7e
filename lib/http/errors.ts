// One JSON error shape for every service: {"error": "..."} (the specification's Error schema),
// plus the error's stable `code` where the service asks for it (the edge proxy: its console and
// clients decide on codes, never on texts). Errors of the catalogue (lib/errors.ts) answer with
// their status and message; a service's error mappers (e.g. lib/db/http-errors.ts) may first turn
// a library's error into one of them.
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { errorHeaders, errors, isCatalogueError, type ErrorMapper } from '../errors.ts'

function statusOf(error: FastifyError): number {
  if (error.validation) return 400
  const status = error.statusCode ?? 500
  return status >= 400 && status < 600 ? status : 500
}

/** The body of an error answer: the message, and the code when the service sends codes. */
export function errorBody(error: { message: string; code?: string }, withCode: boolean): { error: string; code?: string } {
  return withCode && error.code ? { error: error.message, code: error.code } : { error: error.message }
}

export function registerErrorHandlers(app: FastifyInstance, mappers: readonly ErrorMapper[] = [], withCode = false): void {
  const known = (error: unknown) => {
    if (isCatalogueError(error)) return error
    for (const map of mappers) {
      const mapped = map(error)
      if (mapped) return mapped
    }
    return undefined
  }
  app.setErrorHandler((error: FastifyError, request: FastifyRequest, reply: FastifyReply) => {
    const answer = known(error)
    if (answer) {
      if (answer !== error && answer.statusCode >= 500) request.log.warn({ err: error, code: answer.code }, answer.message)
      return reply.code(answer.statusCode).headers(errorHeaders(answer)).send(errorBody(answer, withCode))
    }
    const status = statusOf(error)
    if (status >= 500) {
      request.log.error({ err: error }, 'request failed')
      return reply.code(status).send(errorBody(new errors.INTERNAL(), withCode))
    }
    // Fastify's own 4xx (FST_ERR_*: validation, bad JSON, 413 body too large, 415 media type) carry useful text.
    return reply.code(status).send(errorBody(error, withCode))
  })

  app.setNotFoundHandler(async (request) => {
    throw new errors.NO_ROUTE(request.method, request.url.split('?')[0])
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
      reply.header('allow', [...allow].join(', '))
      throw new errors.METHOD_NOT_ALLOWED(request.method, url)
    },
  })
}
