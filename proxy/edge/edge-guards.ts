// Requests the proxy answers itself, before routing, rate limiting or any upstream: a client's
// mistake never reaches an upstream and never counts against its breaker.
// - `OPTIONS *` (asterisk form): 200 with Allow, the methods the proxy forwards.
// - Any other target that is not a path (`*`, absolute form `http://host/x`, authority form): 400.
// - Methods the proxy does not forward (TRACE, CONNECT, WebDAV, ...): 405 with Allow.
// - A path that is not in canonical form (request-target.ts): 400, refused rather than normalised.
// - A path under a reserved prefix (internal-namespace.ts), in any case or encoding: 404.
import type { FastifyInstance } from 'fastify'
import { STATUS_CODES } from 'node:http'
import type { Duplex } from 'node:stream'
import { errors, type CatalogueError } from '../../lib/errors.ts'
import { HTTP_METHODS, errorBody } from '../../lib/http/errors.ts'
import { PUBLIC_RESERVED_PREFIXES } from './internal-namespace.ts'
import { reservedPrefix, targetProblem } from './request-target.ts'

export const FORWARDED_METHODS = HTTP_METHODS
const FORWARDED = new Set<string>(FORWARDED_METHODS)
const ALLOW = FORWARDED_METHODS.join(', ')

/** Could the path start with a reserved prefix? A cheap look at its first letter before folding case. */
const RESERVED_FIRST = new Set([...PUBLIC_RESERVED_PREFIXES.map((p) => p.charCodeAt(1)), 37 /* "%" */])

/** The error for a request target the public listener refuses (not canonical, or reserved), or undefined. */
export function refusedTarget(method: string, url: string): CatalogueError | undefined {
  const problem = targetProblem(url)
  if (problem) return new errors.PATH_NOT_CANONICAL(problem)
  if (RESERVED_FIRST.has(url.charCodeAt(1) | 0x20) && reservedPrefix(url, PUBLIC_RESERVED_PREFIXES)) return new errors.NO_ROUTE(method, url.split('?')[0]!)
  return undefined
}

export function edgeGuards(app: FastifyInstance): void {
  app.addHook('onRequest', (request, reply, done) => {
    const { method, url } = request.raw
    if (url?.charCodeAt(0) === 47 /* "/" */ && FORWARDED.has(method!)) {
      const refused = refusedTarget(method!, url)
      return refused ? done(refused) : done()
    }
    if (!FORWARDED.has(method!)) {
      reply.header('allow', ALLOW)
      done(new errors.METHOD_NOT_SERVED(method!))
    } else if (url === '*' && method === 'OPTIONS') {
      reply.code(200).header('allow', ALLOW).header('content-length', '0').send()
    } else {
      done(new errors.NOT_A_PATH())
    }
  })
  // Node hands CONNECT to a 'connect' listener instead of the request handler (and, without one,
  // drops the connection silently): answer it like any other method that is not served.
  app.server.on('connect', (_req, socket: Duplex) => rejectOnSocket(socket, new errors.METHOD_NOT_SERVED('CONNECT'), { allow: ALLOW }))
}

/** A complete HTTP/1.1 error answer of the catalogue written on a raw socket (CONNECT), then closed. */
function rejectOnSocket(socket: Duplex, error: CatalogueError, headers: Record<string, string>): void {
  const body = JSON.stringify(errorBody(error, true))
  const head = [`HTTP/1.1 ${error.statusCode} ${STATUS_CODES[error.statusCode] ?? 'Error'}`, 'content-type: application/json; charset=utf-8', `content-length: ${Buffer.byteLength(body)}`, 'connection: close']
  for (const [name, value] of Object.entries(headers)) head.push(`${name}: ${value}`)
  socket.end(`${head.join('\r\n')}\r\n\r\n${body}`)
}
