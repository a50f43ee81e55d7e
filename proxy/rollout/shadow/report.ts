// What the shadow comparison keeps of a request: method, path and query (values of parameters
// that look like secrets redacted), both statuses, and each difference with both values
// truncated. Never a request header; a value that contains the request's credentials is redacted.
import type { IncomingHttpHeaders } from 'node:http'
import type { Difference } from './compare.ts'

/** Longest value kept per side of a difference (JSON text). */
export const MAX_VALUE_CHARS = 200
const REDACTED = '[redacted]'
const SECRET_PARAM = /token|secret|passw|key|auth|session|signature|^sig$|^code$|credential/i

/** Path and query of a request, with the values of secret-looking parameters replaced. */
export function redactedUrl(url: string): string {
  const q = url.indexOf('?')
  if (q < 0) return url
  const params = new URLSearchParams(url.slice(q + 1))
  for (const [name] of params) if (SECRET_PARAM.test(name)) params.set(name, REDACTED)
  return `${url.slice(0, q)}?${params.toString()}`
}

/** The credential strings a request carries (Authorization, Proxy-Authorization, each cookie value), to keep them out of reports. */
export function credentialsOf(headers: IncomingHttpHeaders): string[] {
  const out: string[] = []
  for (const name of ['authorization', 'proxy-authorization']) {
    const value = headers[name]
    if (typeof value !== 'string') continue
    out.push(value)
    const token = value.split(' ').slice(1).join(' ').trim()
    if (token) out.push(token)
  }
  for (const pair of (headers.cookie ?? '').split(';')) {
    const value = pair.slice(pair.indexOf('=') + 1).trim()
    if (value) out.push(value)
  }
  // Very short values would redact innocent text; a credential is never that short.
  return out.filter((s) => s.length >= 6)
}

/** A value as kept in a report: as it is when short, else its JSON text truncated; redacted when it holds a credential. */
export function keptValue(value: unknown, credentials: readonly string[]): unknown {
  const text = typeof value === 'string' ? value : (JSON.stringify(value) ?? String(value))
  if (credentials.some((c) => text.includes(c))) return REDACTED
  if (text.length <= MAX_VALUE_CHARS) return value
  return `${text.slice(0, MAX_VALUE_CHARS)}… (${text.length} chars)`
}

export interface ReportedDifference {
  path: string
  legacy: unknown
  target: unknown
}

export const reportDifferences = (differences: readonly Difference[], credentials: readonly string[]): ReportedDifference[] =>
  differences.map((d) => ({ path: d.path, legacy: keptValue(d.legacy, credentials), target: keptValue(d.target, credentials) }))

/** A fixed-size list of the latest entries, oldest dropped first. */
export class Ring<T> {
  private readonly items: T[] = []
  private readonly size: number
  constructor(size: number) {
    this.size = size
  }
  push(item: T): void {
    this.items.push(item)
    if (this.items.length > this.size) this.items.shift()
  }
  /** Newest first. */
  latest(): T[] {
    return [...this.items].reverse()
  }
}
