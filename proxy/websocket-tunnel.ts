// WebSocket (any `Upgrade`) pass-through. Node hands upgrade requests to the server's 'upgrade'
// event, outside Fastify: the route and side are chosen exactly as for plain requests (route
// map, sticky flag decision, QA override), the handshake goes through the upstream's breaker
// (a failed handshake counts; a target failure falls back to legacy like any GET), and on 101
// the two sockets are joined byte for byte, on a connection of their own (never the pool).
// A close or error on either side ends the other; a tunnel quiet for
// UPSTREAM_STREAM_IDLE_TIMEOUT_MS is closed. Rate limiting does not apply to upgrades.
import http, { type IncomingMessage } from 'node:http'
import https from 'node:https'
import type { Duplex } from 'node:stream'
import { requestIdOf } from '../lib/http/create-app.ts'
import type { Logger } from '../lib/logger.ts'
import { isBreakerOpenError } from './breakers.ts'
import { Type, type Static } from '@sinclair/typebox'
import { rejectOnSocket } from './edge-guards.ts'
import type { FlagSource } from './flag-source.ts'
import type { ProxyMetrics } from './metrics.ts'
import type { UpstreamRuntime, Upstreams } from './upstreams.ts'
import { RESERVED_PATHS, matchRoute, type Route } from './route-map.ts'
import { checkOptions } from './options.ts'
import { SideOptions, decideRoute, requestFacts, type RouteReason } from './routing.ts'
import { clientOf, type TrustFn } from './trust-proxy.ts'
import { errors } from '../lib/errors.ts'
import { FAILURE_TEXT, UpstreamFailure, failureKind, isUpstreamFailure, upstreamFailed, upstreamRequestHeaders } from './upstream-client.ts'

export const TunnelSettings = Type.Composite([SideOptions, Type.Object({ retryAfterSeconds: Type.Integer({ minimum: 1 }) })])
export type TunnelSettings = Static<typeof TunnelSettings>

export interface TunnelOptions {
  settings: TunnelSettings
  routes: Route[]
  upstreams: Upstreams
  flags: FlagSource
  metrics: ProxyMetrics
  trust: TrustFn | undefined
  logger: Logger
}

type Handshake = { upgraded: true; res: IncomingMessage; socket: Duplex; head: Buffer } | { upgraded: false; res: IncomingMessage }

class ClientGone extends Error {}

/** Starts serving upgrades on `server`; the returned function closes every open tunnel (at shutdown). */
export function tunnelUpgrades(server: http.Server, opts: TunnelOptions): () => void {
  const { routes, upstreams, flags, metrics } = opts
  const settings = checkOptions(TunnelSettings, opts.settings, 'WebSocket tunnel')
  const open = new Set<Duplex>()

  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    socket.on('error', () => socket.destroy())
    const url = req.url ?? ''
    const path = url.split('?')[0]!
    if (!path.startsWith('/')) return rejectOnSocket(socket, 400, {}, 'the request target must be a path')
    // A WebSocket handshake is a GET without a body; anything else (h2c upgrades, bodies) would
    // leave the upstream waiting for bytes that never come and count that against it.
    if (req.method !== 'GET' || req.headers['transfer-encoding'] !== undefined || Number(req.headers['content-length'] ?? 0) > 0) {
      return rejectOnSocket(socket, 400, {}, 'upgrade requests must be GET without a body')
    }
    if (RESERVED_PATHS.some((p) => path === p || path.startsWith(`${p}/`))) return rejectOnSocket(socket, 404, {}, `no route for ${req.method} ${path}`)
    const route = matchRoute(routes, path)
    const query = Object.fromEntries(new URLSearchParams(url.slice(path.length + 1)))
    let facts
    try {
      facts = requestFacts(route, { method: req.method, headers: req.headers, query }, settings)
    } catch (error) {
      return rejectOnSocket(socket, 400, {}, (error as Error).message)
    }
    const choice = decideRoute(route, facts, flags)
    const started = process.hrtime.bigint()
    const requestId = requestIdOf(req.headers)
    const done = (upstream: string, status: number, reason: RouteReason) => {
      metrics.observe(route.name, upstream, status, reason, Number(process.hrtime.bigint() - started) / 1e9)
      opts.logger.info({ method: req.method, url, status, route: route.name, upstream, reason, reqId: requestId }, 'upgrade')
    }
    const legacy = upstreams.get(route.legacy.name)!
    const first = choice.side === 'target' ? upstreams.get(route.target!.name)! : legacy

    const attempt = async (rt: UpstreamRuntime, reason: RouteReason): Promise<void> => {
      let result: Handshake
      try {
        result = await rt.breaker.fire(() => handshake(rt, req, requestId))
      } catch (error) {
        if (error instanceof ClientGone) return
        if (rt !== legacy && choice.fallback === 'legacy') {
          rt.breaker.countFallback()
          metrics.fallbacks.labels(route.name, rt.upstream.name, legacy.upstream.name).inc()
          return attempt(legacy, 'fallback')
        }
        const answer = isBreakerOpenError(error) ? new errors.CIRCUIT_OPEN(rt.upstream.name) : upstreamFailed(error as UpstreamFailure)
        done('proxy', answer.statusCode, reason)
        return rejectOnSocket(socket, answer.statusCode, { 'retry-after': String(settings.retryAfterSeconds), 'x-upstream': 'proxy', 'x-route-reason': reason }, answer.message)
      }
      const extra = [`x-upstream: ${rt.upstream.name}`, `x-route-reason: ${reason}`, `x-request-id: ${requestId}`, ...(facts.setCookie ? [`set-cookie: ${facts.setCookie}`] : [])]
      done(rt.upstream.name, result.res.statusCode!, reason)
      if (result.upgraded) join(socket, head, result, extra, rt.poolOptions.streamIdleTimeoutMs)
      else relay(socket, result.res, extra)
    }
    void attempt(first, choice.reason)

    /** The upgrade request to one upstream, on its own connection; rejects with UpstreamFailure (counted) or ClientGone (not). */
    function handshake(rt: UpstreamRuntime, request: IncomingMessage, id: string): Promise<Handshake> {
      return new Promise((resolve, reject) => {
        const target = new URL(rt.upstream.url)
        const headers = { ...upstreamRequestHeaders(request.headers, clientOf(request, opts.trust), id), connection: 'Upgrade', upgrade: request.headers.upgrade! }
        const upstreamReq = (target.protocol === 'https:' ? https : http).request({ host: target.hostname, port: target.port, path: rt.basePath + url, method: request.method, headers, agent: false })
        let clientGone = false
        const onClientClose = () => {
          clientGone = true
          upstreamReq.destroy()
        }
        socket.once('close', onClientClose)
        const timer = setTimeout(() => upstreamReq.destroy(new UpstreamFailure('timeout', `${rt.upstream.name} ${FAILURE_TEXT.timeout}`)), rt.poolOptions.connectTimeoutMs + rt.poolOptions.responseTimeoutMs)
        const settle = () => {
          clearTimeout(timer)
          socket.off('close', onClientClose)
        }
        upstreamReq.on('upgrade', (res, upstreamSocket, upstreamHead) => {
          settle()
          resolve({ upgraded: true, res, socket: upstreamSocket, head: upstreamHead })
        })
        upstreamReq.on('response', (res) => {
          settle()
          if (res.statusCode! < 500) return resolve({ upgraded: false, res })
          res.resume()
          metrics.upstreamFailures.labels(rt.upstream.name, 'status_5xx').inc()
          reject(new UpstreamFailure('status_5xx', `${rt.upstream.name} answered ${res.statusCode}`))
        })
        upstreamReq.on('error', (error) => {
          settle()
          if (clientGone) return reject(new ClientGone())
          if (isUpstreamFailure(error)) return reject(error)
          const kind = failureKind(error)
          metrics.upstreamFailures.labels(rt.upstream.name, kind).inc()
          opts.logger.warn({ upstream: rt.upstream.name, kind, err: error.message, reqId: id }, 'upgrade handshake failed')
          reject(new UpstreamFailure(kind, `${rt.upstream.name} ${FAILURE_TEXT[kind]}`))
        })
        upstreamReq.end()
      })
    }
  })

  /** 101 from the upstream: its handshake headers go to the client, then bytes flow both ways. */
  function join(client: Duplex, clientHead: Buffer, up: Extract<Handshake, { upgraded: true }>, extra: string[], idleTimeoutMs: number): void {
    const upstream = up.socket
    if (client.destroyed) return void upstream.destroy()
    const lines = ['HTTP/1.1 101 Switching Protocols']
    for (let i = 0; i < up.res.rawHeaders.length; i += 2) lines.push(`${up.res.rawHeaders[i]}: ${up.res.rawHeaders[i + 1]}`)
    client.write(`${[...lines, ...extra].join('\r\n')}\r\n\r\n`)
    if (up.head.length) client.write(up.head)
    if (clientHead.length) upstream.write(clientHead)
    for (const [a, b] of [[client, upstream], [upstream, client]] as const) {
      a.on('error', () => b.destroy())
      a.on('close', () => b.destroy())
      a.pipe(b)
    }
    const idle = () => {
      client.destroy()
      upstream.destroy()
    }
    for (const s of [client, upstream] as const) {
      ;(s as Duplex & { setTimeout?(ms: number, cb: () => void): void }).setTimeout?.(idleTimeoutMs, idle)
      open.add(s)
      s.once('close', () => open.delete(s))
    }
  }

  /** The upstream answered without upgrading (e.g. 404, 426): passed on, then the connection closes. */
  function relay(client: Duplex, res: IncomingMessage, extra: string[]): void {
    const lines = [`HTTP/1.1 ${res.statusCode} ${res.statusMessage ?? ''}`]
    for (let i = 0; i < res.rawHeaders.length; i += 2) {
      const name = res.rawHeaders[i]!.toLowerCase()
      if (name === 'connection' || name === 'transfer-encoding' || name === 'content-length' || name === 'keep-alive') continue
      lines.push(`${res.rawHeaders[i]}: ${res.rawHeaders[i + 1]}`)
    }
    client.write(`${[...lines, ...extra, 'connection: close'].join('\r\n')}\r\n\r\n`)
    res.pipe(client)
    client.on('close', () => res.destroy())
  }

  return () => {
    for (const s of open) s.destroy()
  }
}
