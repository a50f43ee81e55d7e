// What a proxy built from this proxy's own feature components, without Fastify, could reach at best:
// the ceiling of issue 16's "raw node:http path". node:http + the proxy's configuration (the same
// env as proxy/server.ts), route map, flag source and sticky decision (routing.ts), opossum
// breakers and undici pools (upstreams.ts), Prometheus metrics and the ramp recorder, the Redis
// rate-limit store (rate-limit-store.ts, same headers), request ids, X-Forwarded-* and one pino
// access line per request (lib/logger.ts). It forwards GET requests without a body only and
// answers 502 to any failure: no fallback to legacy, no 413/408, no edge guards, no admin API —
// so it shows what the features cost at least, not a proxy to ship.
// Usage: node bench/peers/lean-proxy.ts   (PORT, HOST and the proxy's variables)
import http from 'node:http'
import type { Dispatcher } from 'undici'
import { requestIdOf } from '../../lib/http/create-app.ts'
import { createLogger } from '../../lib/logger.ts'
import { createRedis } from '../../lib/redis.ts'
import { loadConfig } from '../../proxy/config.ts'
import { createFlagSource } from '../../proxy/flags/flag-sources.ts'
import { createMetrics } from '../../proxy/observability/metrics.ts'
import { createTrafficRecorder } from '../../proxy/rollout/ramp/traffic.ts'
import { LocalRateLimitStore, RedisRateLimitStore, type RateLimitStore } from '../../proxy/edge/rate-limit-store.ts'
import { decideRoute, requestFacts } from '../../proxy/routing/decision.ts'
import { clientOf, trustFunction, type ClientView } from '../../proxy/edge/trust-proxy.ts'
import { clientResponseHeaders, upstreamRequestHeaders } from '../../proxy/forward/upstream-client.ts'
import { createUpstreams, upstreamDefaults } from '../../proxy/forward/upstreams.ts'

const config = loadConfig()
const logger = createLogger({ level: config.logLevel, name: 'lean-proxy' })
const metrics = createMetrics()
const flags = await createFlagSource(config, logger)
const upstreams = createUpstreams(config.routeMap.upstreams, upstreamDefaults(config), metrics, logger)
const traffic = createTrafficRecorder(config.routeMap.routes)
const trust = trustFunction(config.trustProxy)
const redis = config.redisUrl ? createRedis(config.redisUrl, logger, { commandTimeoutMs: config.redisTimeoutMs, autoPipelining: true }) : undefined
const store: RateLimitStore = redis ? new RedisRateLimitStore({ redis, keyPrefix: config.rateLimitKeyPrefix, syncIntervalMs: config.rateLimitSyncMs, onError: () => metrics.rateLimitStoreErrors.inc() }) : new LocalRateLimitStore()
const max = config.rateLimitMax
const side = { stickyCookie: config.stickyCookie, allowBackendOverride: config.allowBackendOverride }
// Longest prefix first: the first match is the route.
const routes = [...config.routeMap.routes].sort((a, b) => b.prefix.length - a.prefix.length)
const routeOf = (url: string) => routes.find((r) => r.prefix === '/' || url === r.prefix || url.startsWith(`${r.prefix}/`) || url.startsWith(`${r.prefix}?`))!

function forward(req: http.IncomingMessage, res: http.ServerResponse, id: string, client: ClientView, started: number): void {
  const url = req.url!
  const route = routeOf(url)
  const q = url.indexOf('?')
  const query = q < 0 ? undefined : Object.fromEntries(new URLSearchParams(url.slice(q + 1)))
  const facts = requestFacts(route, { method: req.method!, headers: req.headers, query }, side)
  if (facts.setCookie) res.setHeader('set-cookie', facts.setCookie)
  const decision = decideRoute(route, facts, flags)
  const rt = upstreams.get(decision.upstream)!
  res.once('finish', () => {
    const ms = performance.now() - started
    metrics.observe(route.name, rt.upstream.name, res.statusCode, decision.reason, ms / 1000)
    traffic.record(route.name, rt.upstream.name, res.statusCode, decision.reason, ms)
    logger.info({ reqId: id, method: req.method, url, status: res.statusCode, ms: Math.round(ms * 10) / 10, route: route.name, upstream: rt.upstream.name, reason: decision.reason }, 'request')
  })
  rt.breaker
    .fire(() =>
      rt.pool.request({
        path: rt.basePath + url,
        method: req.method as Dispatcher.HttpMethod,
        headers: upstreamRequestHeaders(req.headers, client, id),
      }),
    )
    .then((response) => {
      const headers = clientResponseHeaders(response.headers)
      for (const name in headers) res.setHeader(name, headers[name]!)
      res.setHeader('x-upstream', rt.upstream.name)
      res.setHeader('x-route-reason', decision.reason)
      res.statusCode = response.statusCode
      response.body.pipe(res)
    })
    .catch(() => {
      if (!res.headersSent) res.writeHead(502, { 'content-type': 'application/json' }).end('{"error":"bad gateway"}')
      else res.destroy()
    })
}

const server = http.createServer((req, res) => {
  const started = performance.now()
  const id = requestIdOf(req.headers)
  res.setHeader('x-request-id', id)
  const client = clientOf(req, trust)
  if (max === 0) return forward(req, res, id, client, started)
  store.incr(
    client.forwardedFor,
    ({ current, ttl }) => {
      res.setHeader('x-ratelimit-limit', max)
      res.setHeader('x-ratelimit-remaining', Math.max(0, max - current))
      res.setHeader('x-ratelimit-reset', Math.ceil(ttl / 1000))
      if (current <= max) return forward(req, res, id, client, started)
      res.writeHead(429, { 'content-type': 'application/json' }).end('{"error":"rate limited"}')
    },
    config.rateLimitWindowMs,
  )
})
server.listen(config.port, config.host)
const stop = () => {
  server.close()
  server.closeAllConnections()
  void redis?.quit().catch(() => {})
  void flags.close()
  for (const rt of upstreams.values()) {
    rt.breaker.shutdown()
    void rt.pool.close()
  }
}
process.once('SIGTERM', stop)
process.once('SIGINT', stop)
