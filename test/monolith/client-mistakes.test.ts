// "No client mistake produces a 5xx": every endpoint of both services, fed a catalogue of
// wrong inputs (bad query values, every JSON type in every field, malformed bodies, wrong
// methods and media types), answers 4xx JSON.
import type { FastifyInstance, InjectOptions } from 'fastify'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { monolithApp, moviesServiceApp } from '../helpers/apps.ts'
import { backends, type OpenBackend } from '../helpers/backends.ts'

const WRONG_VALUES: unknown[] = [null, true, 0, -1, 1.5, 2 ** 31, 1e308, '', 'x'.repeat(300), '1', 'nul\u0000byte', 'ünï😀', [], ['a'], {}, { a: 1 }]
const WRONG_QUERY = ['abc', '-1', '0', '1.5', '', '99999999999', '1e3', '%00', '1&id=2', "1'; DROP TABLE users;--"]

const VALID_BODIES: Record<string, Record<string, unknown>> = {
  '/api/users': { username: 'mistake-user', email: 'mistake@example.com' },
  '/api/movies': { title: 'Mistake', description: 'd', genres: ['Drama'], rating: 5 },
  '/api/payments': { user_id: 1, amount: 5 },
  '/api/subscriptions': { user_id: 1, plan_type: 'basic', start_date: '2025-01-01T00:00:00Z', end_date: '2025-02-01T00:00:00Z' },
}

function mistakes(path: string): InjectOptions[] {
  const out: InjectOptions[] = []
  for (const q of WRONG_QUERY) for (const param of ['id', 'user_id']) out.push({ method: 'GET', url: `${path}?${param}=${q}` })
  const valid = VALID_BODIES[path]
  for (const field of Object.keys(valid)) {
    for (const value of WRONG_VALUES) out.push({ method: 'POST', url: path, payload: { ...valid, [field]: value } })
    const { [field]: _dropped, ...without } = valid
    out.push({ method: 'POST', url: path, payload: without })
  }
  for (const raw of ['', '{', '[]', 'null', '"str"', '{"a":', '\u0000']) {
    out.push({ method: 'POST', url: path, headers: { 'content-type': 'application/json' }, payload: raw })
  }
  out.push({ method: 'POST', url: path, headers: { 'content-type': 'application/x-www-form-urlencoded' }, payload: 'a=1' })
  for (const method of ['PUT', 'PATCH', 'DELETE'] as const) out.push({ method, url: path, payload: valid })
  return out
}

describe.each(backends)('client mistakes never answer 5xx (%s)', (_backend, open) => {
  let backend: OpenBackend
  let apps: Array<[string, FastifyInstance, string[]]>

  beforeAll(async () => {
    backend = await open()
    apps = [
      ['monolith', monolithApp(backend.db), ['/api/users', '/api/movies', '/api/payments', '/api/subscriptions']],
      ['movies-service', moviesServiceApp(backend.db), ['/api/movies']],
    ]
  })
  afterAll(async () => {
    for (const [, app] of apps ?? []) await app.close()
    await backend?.close()
  })

  it('every endpoint answers 4xx JSON to every mistake', async () => {
    const failures: string[] = []
    let sent = 0
    for (const [service, app, paths] of apps) {
      for (const path of paths) {
        for (const request of mistakes(path)) {
          const res = await app.inject(request)
          sent++
          // A mistake that happens to be valid (e.g. a duplicate-free '1' as username) may succeed;
          // what must never happen is a 5xx or a non-JSON error.
          if (res.statusCode >= 500) failures.push(`${service} ${request.method} ${request.url} ${JSON.stringify(request.payload)} -> ${res.statusCode} ${res.body}`)
          else if (res.statusCode >= 400 && typeof res.json().error !== 'string') failures.push(`${service} ${request.url}: no JSON error`)
        }
      }
    }
    expect(sent).toBeGreaterThan(300)
    expect(failures).toEqual([])
  })
})
