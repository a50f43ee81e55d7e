// The services' /internal/* endpoints (parity digests, the writer switch) answer the edge proxy
// only: every call carries the shared secret INTERNAL_TOKEN in X-Internal-Token. One onRoute hook
// (internalOnly) guards every route registered under /internal, whatever the request's spelling
// that reached it, so a route added later is covered without a line of its own. The proxy's
// calls build their headers with internalCallHeaders().
//
// Without INTERNAL_TOKEN a service answers /internal to loopback clients only (a process on the
// same host: `npm start` and the tests); `npm start` generates one token for all its processes.
import { createHash, timingSafeEqual } from 'node:crypto'
import type { FastifyInstance, FastifyReply, FastifyRequest, onRequestHookHandler } from 'fastify'
import { errors } from '../errors.ts'

export const INTERNAL_PREFIX = '/internal'
export const INTERNAL_TOKEN_HEADER = 'x-internal-token'

/** The headers of a call to a service's /internal endpoint. */
export function internalCallHeaders(token: string | undefined): Record<string, string> {
  return token ? { [INTERNAL_TOKEN_HEADER]: token } : {}
}

const digest = (value: string) => createHash('sha256').update(value).digest()
const LOOPBACK = /^(127\.\d+\.\d+\.\d+|::1|::ffff:127\.\d+\.\d+\.\d+)$/

export const isInternalPath = (url: string) => url === INTERNAL_PREFIX || url.startsWith(`${INTERNAL_PREFIX}/`)

/** Guards every route registered after it whose path is under /internal. */
export function internalOnly(app: FastifyInstance, token: string | undefined): void {
  const expected = token ? digest(token) : undefined
  const guard: onRequestHookHandler = (request: FastifyRequest, reply: FastifyReply, done) => {
    if (expected) {
      const given = request.headers[INTERNAL_TOKEN_HEADER]
      // Equal-length digests: the comparison takes the same time whatever was sent.
      if (typeof given === 'string' && timingSafeEqual(digest(given), expected)) return done()
    } else if (LOOPBACK.test(request.socket.remoteAddress ?? '')) {
      return done()
    }
    done(new errors.INTERNAL_UNAUTHORIZED())
  }
  app.addHook('onRoute', (route) => {
    if (!isInternalPath(route.url.toLowerCase())) return
    const own = route.onRequest
    route.onRequest = [guard, ...(own === undefined ? [] : Array.isArray(own) ? own : [own])]
  })
}
