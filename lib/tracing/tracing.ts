// OpenTelemetry tracing for every service, on when OTEL_EXPORTER_OTLP_ENDPOINT (or
// OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) is set; the other standard OTEL_* variables apply as the
// SDK reads them: OTEL_SERVICE_NAME / OTEL_RESOURCE_ATTRIBUTES (resource), OTEL_TRACES_SAMPLER /
// OTEL_TRACES_SAMPLER_ARG (e.g. parentbased_traceidratio, 0.1), OTEL_EXPORTER_OTLP_HEADERS,
// OTEL_BSP_* (batching). Spans go out as OTLP http/protobuf. OTEL_SDK_DISABLED=true turns it off.
//
// Off costs nothing: this module imports only types; the SDK, the exporter and the
// instrumentations are imported (and created) by startTracing() when it is on.
//
// Why the global API is relied on: OpenTelemetry's instrumentations (undici, pg, ioredis,
// @fastify/otel) find the tracer provider, the context manager (AsyncLocalStorage) and the
// propagator through @opentelemetry/api's globals — provider.register() sets them once per
// process. Everything of our own receives the Tracing object (or its tracer) as a dependency.
import type { Context, Tracer } from '@opentelemetry/api'
import type { FastifyPluginCallback } from 'fastify'

export interface Tracing {
  /** Our own spans (proxy decisions, outbox producer, Kafka consumers). */
  tracer: Tracer
  /** @fastify/otel's plugin: one SERVER span per request, continuing an incoming traceparent. */
  fastifyPlugin: FastifyPluginCallback
  /** pino mixin: trace_id and span_id of the active span on every line logged inside one. */
  logMixin: () => Record<string, string>
  /** The request's context, for spans started outside its async chain (e.g. a shadow copy). */
  activeContext: () => Context
  /** Flushes the spans still batched (at most FLUSH_TIMEOUT_MS: a receiver that hangs never holds up a shutdown), then stops exporting. */
  shutdown: () => Promise<void>
}

type Env = Record<string, string | undefined>

/** The longest a shutdown waits for the last spans to reach the receiver. */
export const FLUSH_TIMEOUT_MS = 2_000

/** Whether the standard variables ask for tracing. */
export function tracingRequested(env: Env): boolean {
  if (env.OTEL_SDK_DISABLED?.trim().toLowerCase() === 'true') return false
  return Boolean(env.OTEL_EXPORTER_OTLP_ENDPOINT || env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT)
}

/**
 * Modules patched by the pg and ioredis instrumentations through import-in-the-middle: the
 * loader hook is registered for these only (not for our .ts files or anything else).
 */
const HOOKED_MODULES = ['pg', 'pg-pool', 'ioredis']

/** The SDK's pieces, imported on demand; a test may pass its own loader to watch what is created. */
export type SdkLoader = typeof loadSdk

async function loadSdk() {
  const [api, sdk, exporter, resources, instrumentation, undici, pg, ioredis, fastifyOtel] = await Promise.all([
    import('@opentelemetry/api'),
    import('@opentelemetry/sdk-trace-node'),
    import('@opentelemetry/exporter-trace-otlp-proto'),
    import('@opentelemetry/resources'),
    import('@opentelemetry/instrumentation'),
    import('@opentelemetry/instrumentation-undici'),
    import('@opentelemetry/instrumentation-pg'),
    import('@opentelemetry/instrumentation-ioredis'),
    import('@fastify/otel'),
  ])
  return { api, sdk, exporter, resources, instrumentation, undici, pg, ioredis, fastifyOtel }
}

/**
 * Starts tracing for `serviceName` (OTEL_SERVICE_NAME wins) when the environment asks for it,
 * else returns undefined and loads nothing. Call it BEFORE importing the modules that load pg,
 * ioredis or undici (server.ts imports its app after it): instrumentations patch modules as
 * they are loaded. No preload flag (--import) is needed: `node server.ts` is enough.
 */
export async function startTracing(serviceName: string, env: Env = process.env, load: SdkLoader = loadSdk): Promise<Tracing | undefined> {
  if (!tracingRequested(env)) return undefined
  // ESM: pg and ioredis are imported, not required; import-in-the-middle's hook (the one
  // @opentelemetry/instrumentation documents) lets the instrumentations see them.
  const { register } = await import('node:module')
  register('@opentelemetry/instrumentation/hook.mjs', import.meta.url, { data: { include: HOOKED_MODULES } })
  const { api, sdk, exporter, resources, instrumentation, undici, pg, ioredis, fastifyOtel } = await load()

  const resource = resources
    .defaultResource()
    .merge(resources.resourceFromAttributes({ 'service.name': serviceName }))
    .merge(resources.detectResources({ detectors: [resources.envDetector] }))
  // The sampler comes from OTEL_TRACES_SAMPLER(_ARG); the exporter's endpoint and headers from OTEL_EXPORTER_OTLP_*.
  const provider = new sdk.NodeTracerProvider({ resource, spanProcessors: [new sdk.BatchSpanProcessor(new exporter.OTLPTraceExporter())] })
  provider.register()

  // One span per request: no span per hook or for the handler (the request's span is their parent anyway).
  const fastify = new fastifyOtel.FastifyOtelInstrumentation({ instrumentHooks: false, instrumentHandler: false })
  instrumentation.registerInstrumentations({
    tracerProvider: provider,
    instrumentations: [
      new undici.UndiciInstrumentation(),
      // Statement text yes (parameterised SQL, no values), one span per query, none for pool.connect noise.
      new pg.PgInstrumentation({ requireParentSpan: true, ignoreConnectSpans: true }),
      new ioredis.IORedisInstrumentation({ requireParentSpan: true }),
      fastify,
    ],
  })

  const none: Record<string, string> = {}
  return {
    tracer: provider.getTracer('cinemaabyss-edge'),
    fastifyPlugin: fastify.plugin() as FastifyPluginCallback,
    logMixin: () => {
      const span = api.trace.getActiveSpan()
      if (!span) return none
      const { traceId, spanId } = span.spanContext()
      return { trace_id: traceId, span_id: spanId }
    },
    activeContext: () => api.context.active(),
    shutdown: async () => {
      let timer: NodeJS.Timeout | undefined
      const giveUp = new Promise<void>((resolve) => (timer = setTimeout(resolve, FLUSH_TIMEOUT_MS).unref()))
      await Promise.race([provider.shutdown(), giveUp]).finally(() => clearTimeout(timer))
    },
  }
}
