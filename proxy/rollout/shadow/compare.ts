// The comparison of two answers to the same request, pure: what clients read — the status, the
// body (JSON structurally: key order ignored, numbers by value, arrays in order; anything else
// byte for byte) and the headers that describe the content (CONTENT_HEADERS); other headers
// (an upstream's private `x-served-by`, `via`, timings) only when the route lists them
// (`compareHeaders`). Differences are named by JSON path; the route's ignore rules drop the
// paths and headers it declares noise.
import { createHash } from 'node:crypto'
import { coveredByAny, formatPath, type PathRule, type Step } from '../../model/json-path.ts'

export interface Answer {
  status: number
  headers: Record<string, string | string[] | undefined>
  /** The whole body (empty for HEAD and 204). */
  body: Buffer
}

export interface CompareRules {
  ignore: readonly PathRule[]
  /** Lower-case header names not compared (on top of NOISY_HEADERS). */
  ignoreHeaders: ReadonlySet<string>
  /** Lower-case header names compared on top of CONTENT_HEADERS (the route's `compareHeaders`). */
  compareHeaders?: ReadonlySet<string>
}

export interface Difference {
  /** `status`, `header:<name>`, `body` (non-JSON or not parseable) or a JSON path (`$.a[0].b`). */
  path: string
  /** For JSON paths: the steps (noise detection generalises them). */
  steps?: Step[]
  legacy: unknown
  target: unknown
}

/**
 * Headers that differ between two correct answers by nature (time, connection, length — the body
 * itself is compared) or carry credentials (Set-Cookie): never compared.
 */
export const NOISY_HEADERS: ReadonlySet<string> = new Set([
  'date', 'age', 'expires', 'last-modified', 'etag', 'content-length', 'transfer-encoding', 'connection',
  'keep-alive', 'x-request-id', 'server', 'x-powered-by', 'set-cookie', 'x-response-time', 'vary',
  'x-ratelimit-limit', 'x-ratelimit-remaining', 'x-ratelimit-reset', 'retry-after', 'alt-svc',
])

/**
 * The headers clients read, compared by default: what the content is (type, encoding, language,
 * disposition), how it may be cached, where it points, what the client must do (authenticate,
 * which methods), and every CORS header (`access-control-*`).
 */
export const CONTENT_HEADERS: ReadonlySet<string> = new Set([
  'content-type', 'content-encoding', 'content-language', 'content-disposition', 'cache-control', 'location', 'www-authenticate', 'allow',
])

const compared = (name: string, extra: ReadonlySet<string> | undefined) => CONTENT_HEADERS.has(name) || name.startsWith('access-control-') || extra?.has(name) === true

/** True when every difference is a header's: the status and the body agree. */
export function headersOnly(differences: readonly Difference[]): boolean {
  return differences.length > 0 && differences.every((d) => d.path.startsWith('header:'))
}

/** Stops a huge body from producing a huge report. */
export const MAX_DIFFERENCES = 20

const ABSENT = Symbol('absent')

/** The differences between the legacy and the target answer; empty = they match. */
export function compareAnswers(legacy: Answer, target: Answer, rules: CompareRules): Difference[] {
  const out: Difference[] = []
  if (legacy.status !== target.status) out.push({ path: 'status', legacy: legacy.status, target: target.status })
  compareHeaders(legacy.headers, target.headers, rules, out)
  compareBodies(legacy, target, rules.ignore, out)
  return out
}

function headerValue(value: string | string[] | undefined): string | undefined {
  return value === undefined ? undefined : Array.isArray(value) ? value.join(', ') : value
}

/** `application/json; charset=utf-8` and `application/json;charset=UTF-8` are the same type. */
export function normaliseContentType(value: string | undefined): string | undefined {
  if (value === undefined) return undefined
  const [type, ...params] = value.split(';').map((s) => s.trim().toLowerCase())
  return [type, ...params.filter(Boolean).sort()].join('; ')
}

function compareHeaders(a: Answer['headers'], b: Answer['headers'], rules: CompareRules, out: Difference[]): void {
  const names = new Set([...Object.keys(a), ...Object.keys(b)].map((n) => n.toLowerCase()))
  for (const name of [...names].sort()) {
    if (!compared(name, rules.compareHeaders) || NOISY_HEADERS.has(name) || rules.ignoreHeaders.has(name)) continue
    let [x, y] = [headerValue(a[name]), headerValue(b[name])]
    if (name === 'content-type') [x, y] = [normaliseContentType(x), normaliseContentType(y)]
    if (x !== y) out.push({ path: `header:${name}`, legacy: x ?? null, target: y ?? null })
  }
}

const isJsonType = (headers: Answer['headers']) => /[/+]json\b/i.test(headerValue(headers['content-type']) ?? '')

function parseJson(body: Buffer): { ok: true; value: unknown } | { ok: false } {
  try {
    return { ok: true, value: JSON.parse(body.toString('utf8')) }
  } catch {
    return { ok: false }
  }
}

function compareBodies(legacy: Answer, target: Answer, ignore: readonly PathRule[], out: Difference[]): void {
  if (legacy.body.equals(target.body)) return
  if (isJsonType(legacy.headers) || isJsonType(target.headers)) {
    const [x, y] = [parseJson(legacy.body), parseJson(target.body)]
    if (x.ok && y.ok) return compareValues(x.value, y.value, [], ignore, out)
  }
  out.push({ path: 'body', legacy: bytesSummary(legacy.body), target: bytesSummary(target.body) })
}

/** A body that is not compared structurally is reported by length and digest, never by content. */
function bytesSummary(body: Buffer): string {
  return `${body.length} bytes, sha256 ${createHash('sha256').update(body).digest('hex').slice(0, 16)}`
}

const kind = (v: unknown) => (v === null ? 'null' : Array.isArray(v) ? 'array' : typeof v)

function compareValues(a: unknown, b: unknown, path: Step[], ignore: readonly PathRule[], out: Difference[]): void {
  if (out.length >= MAX_DIFFERENCES) return
  if (path.length > 0 && coveredByAny(ignore, path)) return
  const [ka, kb] = [kind(a), kind(b)]
  if (ka === 'array' && kb === 'array') {
    const [xs, ys] = [a as unknown[], b as unknown[]]
    for (let i = 0; i < Math.max(xs.length, ys.length); i++) {
      compareValues(i < xs.length ? xs[i] : ABSENT, i < ys.length ? ys[i] : ABSENT, [...path, i], ignore, out)
    }
    return
  }
  if (ka === 'object' && kb === 'object') {
    const [x, y] = [a as Record<string, unknown>, b as Record<string, unknown>]
    const keys = new Set([...Object.keys(x), ...Object.keys(y)])
    for (const key of [...keys].sort()) {
      compareValues(Object.hasOwn(x, key) ? x[key] : ABSENT, Object.hasOwn(y, key) ? y[key] : ABSENT, [...path, key], ignore, out)
    }
    return
  }
  // Scalars (JSON.parse made numbers values: 1.0 and 1 are equal), or different kinds.
  if (a === b) return
  out.push({ path: formatPath(path), steps: path, legacy: a === ABSENT ? '(absent)' : a, target: b === ABSENT ? '(absent)' : b })
}
