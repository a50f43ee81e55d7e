import { describe, expect, it } from 'vitest'
import { monolithApp, moviesServiceApp } from '../helpers/apps.ts'
import { backends, useBackendApp } from '../helpers/backends.ts'

describe.each(backends)('monolith: /api/users and /health (%s)', (_backend, open) => {
  const t = useBackendApp(open, (db) => monolithApp(db))

  it('GET /health is {"status":true}; /ready checks the database', async () => {
    expect((await t.app.inject('/health')).json()).toEqual({ status: true })
    expect((await t.app.inject('/ready')).statusCode).toBe(200)
  })

  it('lists the seed users without private columns', async () => {
    const res = await t.app.inject('/api/users')
    expect(res.statusCode).toBe(200)
    expect(res.json()).toEqual([
      { id: 1, username: 'user1', email: 'user1@example.com' },
      { id: 2, username: 'user2', email: 'user2@example.com' },
      { id: 3, username: 'user3', email: 'user3@example.com' },
    ])
  })

  it('GET ?id= returns one user, 404 when missing, 400 when not a number', async () => {
    expect((await t.app.inject('/api/users?id=2')).json()).toEqual({ id: 2, username: 'user2', email: 'user2@example.com' })
    const missing = await t.app.inject('/api/users?id=999999')
    expect(missing.statusCode).toBe(404)
    expect(missing.json()).toEqual({ error: 'user 999999 not found' })
    const bad = await t.app.inject('/api/users?id=abc')
    expect(bad.statusCode).toBe(400)
    expect(bad.json()).toEqual({ error: 'id must be an integer' })
  })

  it('creates a user: 201 with its id', async () => {
    const res = await t.app.inject({ method: 'POST', url: '/api/users', payload: { username: 'neo', email: 'neo@matrix.io' } })
    expect(res.statusCode).toBe(201)
    expect(res.json()).toEqual({ id: expect.any(Number), username: 'neo', email: 'neo@matrix.io' })
  })

  it('409 for a duplicate username or email, naming it', async () => {
    const dupName = await t.app.inject({ method: 'POST', url: '/api/users', payload: { username: 'user1', email: 'other@example.com' } })
    expect(dupName.statusCode).toBe(409)
    expect(dupName.json()).toEqual({ error: 'username already exists' })
    const dupEmail = await t.app.inject({ method: 'POST', url: '/api/users', payload: { username: 'fresh', email: 'user1@example.com' } })
    expect(dupEmail.statusCode).toBe(409)
    expect(dupEmail.json()).toEqual({ error: 'email already exists' })
  })

  it.each([
    [{ email: 'a@b.c' }, 'username'],
    [{ username: 'a' }, 'email'],
    [{ username: 1, email: 'a@b.c' }, 'username'],
    [{ username: 'a', email: 'not-an-email' }, 'email'],
    [{ username: 'a', email: 'ю@' }, 'email'],
    [{ username: 'x'.repeat(101), email: 'a@b.c' }, 'username'],
  ])('400 naming the field for %j', async (payload, field) => {
    const res = await t.app.inject({ method: 'POST', url: '/api/users', payload })
    expect(res.statusCode).toBe(400)
    expect(res.json().error).toContain(field)
  })

  it('400 for a body that is not an object', async () => {
    for (const payload of ['[]', '"x"', 'null', '42']) {
      const res = await t.app.inject({ method: 'POST', url: '/api/users', headers: { 'content-type': 'application/json' }, payload })
      expect(res.statusCode, payload).toBe(400)
      expect(res.json()).toHaveProperty('error')
    }
  })

  it('405 for other methods', async () => {
    const res = await t.app.inject({ method: 'DELETE', url: '/api/users' })
    expect(res.statusCode).toBe(405)
    expect(res.json()).toHaveProperty('error')
  })

  it('echoes a given x-request-id and generates one otherwise', async () => {
    expect((await t.app.inject({ url: '/health', headers: { 'x-request-id': 'abc-123' } })).headers['x-request-id']).toBe('abc-123')
    expect((await t.app.inject('/health')).headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/)
  })
})

describe('GET /metrics of the monolith and the movies service', () => {
  it.each([
    ['monolith', monolithApp],
    ['movies-service', moviesServiceApp],
  ])('%s exposes process metrics and requests by route and status class', async (_name, build) => {
    const [, open] = backends[0]
    const backend = await open()
    const app = build(backend.db)
    try {
      await app.inject('/api/movies?id=1')
      await app.inject('/api/movies?id=999999')
      await app.inject('/no/such/path')
      const res = await app.inject('/metrics')
      expect(res.statusCode).toBe(200)
      expect(res.headers['content-type']).toMatch(/^text\/plain/)
      expect(res.body).toContain('process_cpu_seconds_total')
      expect(res.body).toMatch(/http_requests_total\{method="GET",route="\/api\/movies",status_class="2xx"\} 1/)
      expect(res.body).toMatch(/http_requests_total\{method="GET",route="\/api\/movies",status_class="4xx"\} 1/)
      expect(res.body).toMatch(/http_requests_total\{method="GET",route="unmatched",status_class="4xx"\} 1/)
      expect(res.body).toContain('http_request_duration_seconds_bucket')
    } finally {
      await app.close()
      await backend.close()
    }
  })
})
