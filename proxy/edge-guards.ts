// Requests the proxy answers itself, before routing, rate limiting or any upstream: a client's
// mistake never reaches an upstream and never counts against its breaker.
// - `OPTIONS *` (asterisk form): 200 with Allow, the methods the proxy forwards.
// - Any other target that is not a path (`*`, absolute form `http://host/x`, authority form): 400.
// - Methods the proxy does not forward (TRACE, CONNECT, WebDAV, ...): 405 with Allow.
import type { FastifyInstance } from 'fastify'
import { STATUS_CODES } from 'node:http'
import type { Duplex } from 'node:stream'
import { HTTP_METHODS } from '../lib/http/errors.ts'

export const FORWARDED_METHODS = HTTP_METHODS
const FORWARDED = new Set<string>(FORWARDED_METHODS)
const ALLOW = FORWARDED_METHODS.join(', ')

export function edgeGuards(app: FastifyInstance): void {
  app.addHook('onRequest', (request, reply, done) => {
    const { method, url } = request.raw
    if (url?.charCodeAt(0) === 47 /* "/" */ && FORWARDED.has(method!)) return done()
    if (!FORWARDED.has(method!)) {
      reply.code(405).header('allow', ALLOW).send({ error: `method ${method} is not served by this proxy` })
    } else if (url === '*' && method === 'OPTIONS') {
      reply.code(200).header('allow', ALLOW).header('content-length', '0').send()
    } else {
      reply.code(400).header('connection', 'close').send({ error: 'the request target must be a path such as /api/movies (asterisk, absolute and authority forms are not served)' })
    }
  })
  // Node hands CONNECT to a 'connect' listener instead of the request handler (and, without one,
  // drops the connection silently): answer it like any other method that is not served.
  app.server.on('connect', (_req, socket: Duplex) => rejectOnSocket(socket, 405, { allow: ALLOW }, 'method CONNECT is not served by this proxy'))
}

/** A complete HTTP/1.1 error answer written on a raw socket (CONNECT, failed WebSocket upgrades), then closed. */
export function rejectOnSocket(socket: Duplex, status: number, headers: Record<string, string>, message: string): void {
  const body = JSON.stringify({ error: message })
  const head = [`HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Error'}`, 'content-type: application/json; charset=utf-8', `content-length: ${Buffer.byteLength(body)}`, 'connection: close']
  for (const [name, value] of Object.entries(headers)) head.push(`${name}: ${value}`)
  socket.end(`${head.join('\r\n')}\r\n\r\n${body}`)
}
