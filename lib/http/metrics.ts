// GET /metrics for a service: the default process metrics plus (optionally) a request counter and
// latency histogram by route and status class, in the app's own registry (several services may share
// one process under `npm start`).
import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import { collectDefaultMetrics, Counter, Histogram, Registry } from 'prom-client'

export interface HttpMetricsOptions {
  /** Registry to expose; one is created when absent. Services add their own metrics to it. */
  registry?: Registry
  /** Count requests by route and status class (default true); the proxy keeps its own per-route counters. */
  countRequests?: boolean
  /** What GET /metrics answers, given the registry (default: its own text), e.g. the sum over cluster workers. */
  render?: (registry: Registry) => () => Promise<string>
}

async function httpMetricsPlugin(app: FastifyInstance, opts: HttpMetricsOptions): Promise<void> {
  const registry = opts.registry ?? new Registry()
  collectDefaultMetrics({ register: registry })
  const render = opts.render?.(registry) ?? (() => registry.metrics())
  app.get('/metrics', async (_request, reply) => {
    reply.header('content-type', registry.contentType)
    return render()
  })
  if (opts.countRequests === false) return

  const labelNames = ['method', 'route', 'status_class'] as const
  const requests = new Counter({ name: 'http_requests_total', help: 'Requests answered, by method, route and status class', labelNames, registers: [registry] })
  const duration = new Histogram({
    name: 'http_request_duration_seconds',
    help: 'Time to answer a request, by method, route and status class',
    labelNames,
    buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [registry],
  })

  app.addHook('onResponse', async (request, reply) => {
    // The route pattern, not the URL: query strings and unknown paths must not explode the label set.
    const route = request.routeOptions.url ?? 'unmatched'
    const labels = { method: request.method, route, status_class: `${Math.floor(reply.statusCode / 100)}xx` }
    requests.inc(labels)
    duration.observe(labels, reply.elapsedTime / 1000)
  })
}

export const httpMetrics = fp(httpMetricsPlugin, { name: 'http-metrics', fastify: '5.x' })
