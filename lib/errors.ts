// The one catalogue of errors every service answers with, in the way of Fastify's FST_ERR_*
// (built with @fastify/error): each has a stable code, its HTTP status and a client-safe message
// template (util.format placeholders). Code throws `new errors.ROUTE_NOT_FOUND(name, known)`;
// lib/http/errors.ts answers {"error": message} with that status (and the listed headers);
// anything else that handles errors matches them by `code`, never by class.
// The table in docs/errors.md lists them; test/lib/errors.test.ts keeps the two in step.
import createError, { type FastifyError } from '@fastify/error'

type Headers = Readonly<Record<string, string>>

/** The connection is closed after the answer: the rest of the request body is never read. */
const CLOSE: Headers = { connection: 'close' }
/** The dependency may be back in a moment. */
const RETRY_SOON: Headers = { 'retry-after': '1' }

const PREFIX = 'CA_ERR_'
const headersByCode = new Map<string, Headers>()

function define<Args extends unknown[]>(name: string, statusCode: number, message: string, headers?: Headers) {
  const code = PREFIX + name
  headersByCode.set(code, headers ?? {})
  return createError<string, number, Args>(code, message, statusCode)
}

export const errors = {
  // Any service
  NO_ROUTE: define<[method: string, path: string]>('NO_ROUTE', 404, 'no route for %s %s'),
  METHOD_NOT_ALLOWED: define<[method: string, path: string]>('METHOD_NOT_ALLOWED', 405, 'method %s not allowed on %s'),
  INTERNAL: define<[]>('INTERNAL', 500, 'internal server error'),
  QUERY_NOT_INTEGER: define<[param: string]>('QUERY_NOT_INTEGER', 400, '%s must be an integer'),
  QUERY_OUT_OF_RANGE: define<[param: string, min: number, max: number]>('QUERY_OUT_OF_RANGE', 400, '%s must be an integer between %d and %d'),
  INTERNAL_UNAUTHORIZED: define<[]>('INTERNAL_UNAUTHORIZED', 401, 'this endpoint answers the edge proxy only (X-Internal-Token)'),
  CONTRACT_RULE_BROKEN: define<[message: string, rule: string]>('CONTRACT_RULE_BROKEN', 400, '%s (rule %s)'),

  // Services with a database (mapped by lib/db/http-errors.ts)
  DATABASE_UNAVAILABLE: define<[options?: { cause: unknown }]>('DATABASE_UNAVAILABLE', 503, 'database unavailable, try again shortly', RETRY_SOON),
  DUPLICATE_VALUE: define<[column: string]>('DUPLICATE_VALUE', 409, '%s already exists'),
  DOMAIN_GONE: define<[domain: string]>('DOMAIN_GONE', 410, 'the %s domain is no longer served here: it moved to its own service'),
  MISSING_REFERENCE: define<[column: string]>('MISSING_REFERENCE', 400, '%s refers to a record that does not exist'),
  INVALID_VALUE: define<[reason: string]>('INVALID_VALUE', 400, 'invalid value: %s'),
  // One writer per entity (lib/replication/write-authority.ts): nothing was written, so the edge
  // proxy sends the write to the other store; `x-store-refused` tells it apart from any other 421.
  NOT_WRITER: define<[entity: string, why: string]>('NOT_WRITER', 421, 'this store does not take writes of %s now: %s; nothing was written, retry through the edge proxy', {
    'retry-after': '1',
    'x-store-refused': 'not-writer',
  }),
  STORE_CATCHING_UP: define<[entity: string]>('STORE_CATCHING_UP', 503, 'this store is catching up with the changes of %s it has not applied yet; retry shortly', RETRY_SOON),
  CONFLICT_NOT_FOUND: define<[key: string]>('CONFLICT_NOT_FOUND', 404, 'no open replication conflict for record %s'),

  // Monolith and movies-service records
  USER_NOT_FOUND: define<[id: number]>('USER_NOT_FOUND', 404, 'user %s not found'),
  MOVIE_NOT_FOUND: define<[id: number]>('MOVIE_NOT_FOUND', 404, 'movie %s not found'),
  PAYMENT_NOT_FOUND: define<[id: number]>('PAYMENT_NOT_FOUND', 404, 'payment %s not found'),
  SUBSCRIPTION_NOT_FOUND: define<[id: number]>('SUBSCRIPTION_NOT_FOUND', 404, 'subscription %s not found'),

  // events-service
  BAD_IDEMPOTENCY_KEY: define<[]>('BAD_IDEMPOTENCY_KEY', 400, 'Idempotency-Key must be 1-128 characters of A-Z, a-z, 0-9, ".", "_", ":" or "-"'),
  EVENT_NOT_ACKNOWLEDGED: define<[what: string]>(
    'EVENT_NOT_ACKNOWLEDGED',
    503,
    // The client hears what happened, not where: broker addresses stay in the service's log.
    'event not acknowledged by Kafka (%s); it may or may not have been stored: ' +
      'retry with the same Idempotency-Key header so that a duplicate can be recognised by its event id',
    RETRY_SOON,
  ),

  // Edge proxy: clients
  BAD_BACKEND_OVERRIDE: define<[value: string]>('BAD_BACKEND_OVERRIDE', 400, 'X-Backend must be "legacy" or "target", got "%s"'),
  BODY_TOO_LARGE: define<[limit: number]>('BODY_TOO_LARGE', 413, 'request body is larger than %d bytes', CLOSE),
  BODY_TIMEOUT: define<[ms: number]>('BODY_TIMEOUT', 408, 'request body not received: nothing arrived for %d ms', CLOSE),
  /** Nobody reads this answer (499 is nginx's "client closed request", for logs and metrics). */
  CLIENT_GONE: define<[]>('CLIENT_GONE', 499, 'client closed the request'),
  METHOD_NOT_SERVED: define<[method: string]>('METHOD_NOT_SERVED', 405, 'method %s is not served by this proxy'),
  NOT_A_PATH: define<[]>('NOT_A_PATH', 400, 'the request target must be a path such as /api/movies (asterisk, absolute and authority forms are not served)', CLOSE),
  PATH_NOT_CANONICAL: define<[what: string]>('PATH_NOT_CANONICAL', 400, 'the request path must be in canonical form: it contains %s, which this proxy refuses rather than normalises', CLOSE),
  UPGRADE_NOT_GET: define<[]>('UPGRADE_NOT_GET', 400, 'upgrade requests must be GET without a body', CLOSE),
  // Tokens at the edge (proxy/auth/): WWW-Authenticate is set per answer (RFC 6750 error and description).
  TOKEN_MISSING: define<[route: string]>('TOKEN_MISSING', 401, 'route "%s" needs Authorization: Bearer <an access token of a trusted issuer>'),
  TOKEN_INVALID: define<[why: string]>('TOKEN_INVALID', 401, 'the bearer token is not accepted: %s'),
  TOKEN_INSUFFICIENT: define<[route: string, rule: string]>('TOKEN_INSUFFICIENT', 403, 'the bearer token does not carry what route "%s" requires: %s'),
  TOKEN_ISSUER_UNAVAILABLE: define<[issuer: string]>('TOKEN_ISSUER_UNAVAILABLE', 503, 'the keys of issuer %s cannot be fetched yet; retry shortly', RETRY_SOON),
  RATE_LIMITED: define<[max: number, windowSeconds: number, retryInSeconds: number]>('RATE_LIMITED', 429, 'rate limit exceeded: %d requests per %d s; retry in %d s'),

  // Edge proxy: upstreams (Retry-After comes from the proxy's settings)
  UPSTREAM_TIMEOUT: define<[failure: string]>('UPSTREAM_TIMEOUT', 504, '%s'),
  UPSTREAM_UNAVAILABLE: define<[failure: string]>('UPSTREAM_UNAVAILABLE', 503, '%s, retry later'),
  CIRCUIT_OPEN: define<[upstream: string]>('CIRCUIT_OPEN', 503, '%s is unavailable (circuit open), retry later'),
  UPSTREAM_BROKEN_ANSWER: define<[upstream: string]>('UPSTREAM_BROKEN_ANSWER', 502, '%s broke off its answer before the first byte of the body'),
  WRITE_NOT_RETRIED: define<[failure: string]>('WRITE_NOT_RETRIED', 503, '%s; the request was not retried'),
  FLAGS_NOT_LOADED: define<[route: string, why: string]>('FLAGS_NOT_LOADED', 503, 'route "%s" is split by flags this proxy replica has not loaded (%s), retry later'),

  // Edge proxy: admin API
  ADMIN_UNAUTHORIZED: define<[]>('ADMIN_UNAUTHORIZED', 401, 'admin API needs Authorization: Bearer <ADMIN_TOKEN or a token of ADMIN_TOKENS>'),
  ADMIN_ROLE_INSUFFICIENT: define<[actor: string, role: string, needed: string]>('ADMIN_ROLE_INSUFFICIENT', 403, 'the admin token "%s" has the role %s; this call needs %s'),
  ADMIN_AUTH_BACKOFF: define<[retryInSeconds: number]>('ADMIN_AUTH_BACKOFF', 429, 'too many failed admin logins from this address; retry in %d s'),
  ROUTE_NOT_FOUND: define<[name: string, known: string]>('ROUTE_NOT_FOUND', 404, 'no route named "%s" (routes: %s)'),
  ROUTE_HAS_NO_TARGET: define<[name: string]>('ROUTE_HAS_NO_TARGET', 409, 'route "%s" has no target: there is nothing to roll out'),
  FLAGS_READ_ONLY: define<[]>('FLAGS_READ_ONLY', 409, 'flags cannot be changed through the proxy in this mode'),
  FLAG_IN_UNLEASH: define<[url: string, flag: string]>('FLAG_IN_UNLEASH', 409, 'flags come from Unleash (%s): change the rollout of %s in Unleash (or give the proxy UNLEASH_ADMIN_TOKEN)'),
  FLAG_CHANGE_REFUSED: define<[reason: string]>('FLAG_CHANGE_REFUSED', 409, '%s'),
  FLAG_WRITE_FAILED: define<[reason: string]>('FLAG_WRITE_FAILED', 502, '%s'),
  LEDGER_UNAVAILABLE: define<[store: string, reason: string]>('LEDGER_UNAVAILABLE', 503, 'the ledger cannot be read (%s: %s)', RETRY_SOON),
  FLAG_PINNED_BY_ENV: define<[flag: string]>('FLAG_PINNED_BY_ENV', 409, '%s is pinned by GRADUAL_MIGRATION/MOVIES_MIGRATION_PERCENT; unset them to manage it in the flags file'),
  NOTHING_TO_COMPARE: define<[name: string]>('NOTHING_TO_COMPARE', 409, 'route "%s" has no target: there is nothing to compare with'),
  ADMIN_BAD_SETTINGS: define<[problem: string]>('ADMIN_BAD_SETTINGS', 400, '%s'),
  NOTHING_TO_RAMP: define<[name: string]>('NOTHING_TO_RAMP', 409, 'route "%s" has no target: there is nothing to ramp'),
  NO_RAMP: define<[name: string]>('NO_RAMP', 404, 'route "%s" has had no ramp'),
  RAMP_CONFLICT: define<[reason: string]>('RAMP_CONFLICT', 409, '%s'),
  STAGE_GUARD_REFUSED: define<[guard: string, value: string, limit: string, hint: string]>('STAGE_GUARD_REFUSED', 409, 'refused by the %s guard: %s (limit %s); %s'),
  STAGE_REFUSED: define<[reason: string]>('STAGE_REFUSED', 409, '%s'),
  WRITER_UNAVAILABLE: define<[route: string, why: string]>('WRITER_UNAVAILABLE', 503, 'no store takes the writes of route "%s" now (%s); nothing was written, retry shortly'),
  STORE_UNREACHABLE: define<[store: string, reason: string]>('STORE_UNREACHABLE', 502, '%s did not answer: %s'),
  ROUTE_RETIRED: define<[name: string]>('ROUTE_RETIRED', 409, 'route "%s" is retired: legacy is no longer used for it'),
  RAMP_STATE_UNAVAILABLE: define<[reason: string]>('RAMP_STATE_UNAVAILABLE', 503, 'ramp state unavailable (%s); retry', RETRY_SOON),
  ROUTE_NAME_REQUIRED: define<[]>('ROUTE_NAME_REQUIRED', 400, 'route is required, e.g. /admin/history?route=movies'),
  EXPLAIN_PATH_REQUIRED: define<[]>('EXPLAIN_PATH_REQUIRED', 400, 'path is required and must start with "/"'),
} as const

/** An error of the catalogue: its code, status and message are meant for the client. */
export type CatalogueError = FastifyError & { code: string; statusCode: number }

export function isCatalogueError(error: unknown): error is CatalogueError {
  const code = (error as { code?: unknown } | null)?.code
  return typeof code === 'string' && headersByCode.has(code)
}

/** Headers sent with an error of the catalogue (Connection: close, Retry-After). */
export function errorHeaders(error: CatalogueError): Headers {
  return headersByCode.get(error.code) ?? {}
}

/** Turns an error of some library (e.g. the database driver) into one of the catalogue, or leaves it. */
export type ErrorMapper = (error: unknown) => CatalogueError | undefined
