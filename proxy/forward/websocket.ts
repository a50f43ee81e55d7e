// WebSocket (any `Upgrade`) requests through Fastify's own routing, as @fastify/http-proxy and
// @fastify/websocket do: Node hands an upgrade request to the server's 'upgrade' event; it is
// dispatched with `app.routing()` on a response bound to its socket, so it meets the same router,
// edge guards, request id, rate limit, route decision, upstream call, access line, metrics and
// ramp traffic as every request. The proxy routes (proxy-routes.ts) see it through `of()`; on a
// 101 from the upstream, `join()` answers the client and joins the two sockets byte for byte.
// A close or error on either side ends the other; a tunnel quiet for the upstream's
// streamIdleTimeoutMs is closed; open tunnels are closed when the app closes.
import { ServerResponse, type IncomingMessage } from 'node:http'
import type { Duplex } from 'node:stream'
import type { FastifyInstance, FastifyReply } from 'fastify'
import { errors } from '../../lib/errors.ts'
import type { UpstreamAnswer } from './upstreams.ts'
import { clientResponseHeaders } from './upstream-client.ts'

export interface UpgradeRequest {
  socket: Duplex
  /** Bytes the client sent after its handshake. */
  head: Buffer
}

export interface Upgrades {
  /** The upgrade this raw request carries, if it is one. */
  of(raw: IncomingMessage): UpgradeRequest | undefined
  /** The upstream switched protocols: answers 101 to the client (through the reply: access line, metrics) and joins the sockets. */
  join(reply: FastifyReply, answer: UpstreamAnswer, idleTimeoutMs: number): void
}

/** Routes upgrade requests through `app`; only paths of a proxied route (config `proxyRoute`) may upgrade. */
export function routeUpgrades(app: FastifyInstance): Upgrades {
  const pending = new WeakMap<IncomingMessage, UpgradeRequest>()
  const open = new Set<Duplex>()

  app.server.on('upgrade', (raw: IncomingMessage, socket: Duplex, head: Buffer) => {
    socket.on('error', () => socket.destroy())
    pending.set(raw, { socket, head })
    const res = new ServerResponse(raw)
    res.assignSocket(socket as never)
    // Any answer but a 101 ends the connection (the client asked to leave HTTP; nothing else follows).
    res.once('finish', () => {
      if (res.statusCode !== 101) socket.end()
    })
    app.routing(raw, res)
  })

  // Upgrades are proxied or refused before any upstream is involved: a WebSocket handshake is a
  // GET without a body (anything else would leave the upstream waiting for bytes that never come).
  app.addHook('onRequest', (request, reply, done) => {
    if (!pending.has(request.raw)) return done()
    const { headers, method } = request.raw
    if (method !== 'GET' || headers['transfer-encoding'] !== undefined || Number(headers['content-length'] ?? 0) > 0) return done(new errors.UPGRADE_NOT_GET())
    if (!request.routeOptions.config.proxyRoute) return done(new errors.NO_ROUTE(method, request.url.split('?')[0]!))
    reply.header('connection', 'close')
    done()
  })

  // Before the server waits for its connections to end: open tunnels would keep it waiting.
  app.addHook('preClose', (done) => {
    for (const s of open) s.destroy()
    done()
  })

  return {
    of: (raw) => pending.get(raw),
    join(reply, answer, idleTimeoutMs) {
      const client = pending.get(reply.request.raw)!
      const upstream = answer.upgraded!.socket
      const res = reply.raw
      if (client.socket.destroyed) return void upstream.destroy()
      // The upstream's handshake headers (sec-websocket-accept, protocol, extensions) with the proxy's own, hop-by-hop ones rebuilt.
      const headers = { ...reply.getHeaders(), ...clientResponseHeaders(answer.headers), connection: 'Upgrade', upgrade: answer.headers.upgrade ?? 'websocket' }
      reply.hijack()
      res.writeHead(101, headers as Record<string, string | string[] | number>)
      res.end()
      res.detachSocket(client.socket as never)
      const { head } = answer.upgraded!
      if (head.length) client.socket.write(head)
      if (client.head.length) upstream.write(client.head)
      for (const [a, b] of [[client.socket, upstream], [upstream, client.socket]] as const) {
        a.on('error', () => b.destroy())
        a.on('close', () => b.destroy())
        a.pipe(b)
      }
      const idle = () => {
        client.socket.destroy()
        upstream.destroy()
      }
      for (const s of [client.socket, upstream] as const) {
        ;(s as Duplex & { setTimeout?(ms: number, cb: () => void): void }).setTimeout?.(idleTimeoutMs, idle)
        open.add(s)
        s.once('close', () => open.delete(s))
      }
    },
  }
}
