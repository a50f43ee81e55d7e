// The Fastify instance every service starts from: JSON logs with one access line per request,
// request ids, a body limit, strict JSON-schema validation, the shared error shape, and the
// OpenAPI document of its routes (generated from their schemas) at GET /documentation/json.
import { randomUUID } from 'node:crypto'
import type { IncomingHttpHeaders, ServerOptions } from 'node:http'
import { createRequire } from 'node:module'
import fastifySwagger from '@fastify/swagger'
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance, type FastifyRequest, type FastifyServerOptions } from 'fastify'
import type { ErrorMapper } from '../errors.ts'
import { lazyChildLogger, preparedInfo, type LineFields, type Logger } from '../logger.ts'
import type { Tracing } from '../tracing/tracing.ts'
import { registerErrorHandlers } from './errors.ts'
import { internalOnly } from './internal-auth.ts'

export interface HttpAppOptions {
  logger: Logger
  bodyLimitBytes: number
  /** Extra fields for the access line, e.g. the proxy's upstream and route reason. */
  accessLogFields?: (request: FastifyRequest) => LineFields
  /** String formats replacing ajv-formats' ones of the same name (e.g. lib/contract/formats.ts). */
  formats?: Record<string, (value: string) => boolean>
  /** Connection limits and client identity, e.g. the edge proxy's timeouts and trustProxy. */
  server?: ServerSettings
  /** What the OpenAPI document says this service is. */
  api?: { title: string; description?: string }
  /** Serve the OpenAPI document (default true; the proxy's public listener leaves it to its operators' listener). */
  openApi?: boolean
  /** Turn errors of the service's libraries into the catalogue's (e.g. lib/db/http-errors.ts). */
  errorMappers?: readonly ErrorMapper[]
  /** Error bodies carry the error's stable `code` next to `error` (default: the specification's `{error}` only). */
  errorCodes?: boolean
  /** Tracing on (lib/tracing/): a SERVER span per request (@fastify/otel), continuing an incoming traceparent. */
  tracing?: Tracing
  /** One access line per request (default true; the proxy's FEATURES_OFF=access-log measures it). */
  accessLog?: boolean
  /** X-Request-Id taken from the client or made, and sent back (default true; else Fastify's own counter ids, no header). */
  requestIds?: boolean
  /**
   * INTERNAL_TOKEN: routes under /internal answer only calls carrying it (lib/http/internal-auth.ts);
   * unset = only loopback clients.
   */
  internalToken?: string
  /** false = no /internal guard (the edge proxy: its /internal namespace answers 404 to everyone). */
  guardInternal?: boolean
}

export interface ServerSettings extends Pick<FastifyServerOptions, 'requestTimeout' | 'keepAliveTimeout' | 'trustProxy'> {
  http?: ServerOptions
}

/** Where every service serves the OpenAPI document of its routes. */
export const OPENAPI_PATH = '/documentation/json'

const REQUEST_ID = /^[\w.:-]{1,128}$/
const API_VERSION: string = createRequire(import.meta.url)('../../package.json').version

/** The client's X-Request-Id when it is a sane id, else a new one. */
export function requestIdOf(headers: IncomingHttpHeaders): string {
  const given = headers['x-request-id']
  return typeof given === 'string' && REQUEST_ID.test(given) ? given : randomUUID()
}

export function createHttpApp(options: HttpAppOptions): FastifyInstance {
  const app = Fastify({
    loggerInstance: options.logger as FastifyBaseLogger,
    bodyLimit: options.bodyLimitBytes,
    // Fastify's two lines per request are replaced by one access line below.
    logController: new LogController({ disableRequestLogging: true }),
    // request.log made on first use (lib/logger.ts): the access line does not need it.
    childLoggerFactory: (logger, bindings, childOptions) => lazyChildLogger(logger as Logger, bindings, childOptions) as FastifyBaseLogger,
    ...(options.requestIds === false ? {} : { genReqId: (req: { headers: IncomingHttpHeaders }) => requestIdOf(req.headers) }),
    ajv: {
      // Bodies must already have the right JSON types: "1" is not an integer.
      customOptions: { coerceTypes: false, removeAdditional: false, allErrors: false },
      // After ajv-formats is added, so these win.
      onCreate: (ajv) => {
        for (const [name, check] of Object.entries(options.formats ?? {})) ajv.addFormat(name, check)
      },
    },
    return503OnClosing: true,
    forceCloseConnections: 'idle',
    ...options.server,
  })

  // First plugin: its onRoute hook must see the routes registered after it.
  if (options.tracing) app.register(options.tracing.fastifyPlugin)
  // JSON APIs: a text/plain body is a 415, not a string that fails validation later.
  app.removeContentTypeParser('text/plain')
  // Callback-style hooks: no promise per request (they run on every request of every service).
  if (options.requestIds !== false) {
    app.addHook('onRequest', (request, reply, done) => {
      reply.header('x-request-id', request.id)
      done()
    })
  }
  const extra = options.accessLogFields
  if (options.accessLog !== false) {
    // The line request.log.info(fields, 'request') writes, from a prepared template when the
    // logger allows (lib/logger.ts preparedInfo: no tracing mixin), else by pino.
    const accessLine = preparedInfo(options.logger, 'request')
    app.addHook('onResponse', (request, reply, done) => {
      const ms = Math.round(reply.elapsedTime * 10) / 10
      if (accessLine) accessLine({ reqId: request.id, method: request.method, url: request.url, status: reply.statusCode, ms }, extra?.(request))
      else {
        const line = { method: request.method, url: request.url, status: reply.statusCode, ms }
        request.log.info(extra ? { ...line, ...extra(request) } : line, 'request')
      }
      done()
    })
  }
  registerErrorHandlers(app, options.errorMappers, options.errorCodes ?? false)
  // Before any route: its onRoute hook guards every /internal route registered later.
  if (options.guardInternal !== false) internalOnly(app, options.internalToken)
  if (options.openApi === false) return app
  // Registered before any route, so that its onRoute hook sees them all.
  app.register(fastifySwagger, {
    openapi: { openapi: '3.0.3', info: { title: 'CinemaAbyss edge', ...options.api, version: API_VERSION } },
  })
  app.get(OPENAPI_PATH, { schema: { hide: true } }, async () => app.swagger())
  return app
}
