// The /api/movies contract, run against both services that serve it.
import type { FastifyInstance } from 'fastify'
import { describe, expect, it } from 'vitest'
import type { Database } from '../../lib/db/database.ts'
import { monolithApp, moviesServiceApp } from '../helpers/apps.ts'
import { backends, useBackendApp } from '../helpers/backends.ts'

const SEED_TITLES = ['The Shawshank Redemption', 'The Godfather', 'The Dark Knight', 'Pulp Fiction', 'Forrest Gump']

const services: Array<[string, (db: Database) => FastifyInstance]> = [
  ['monolith', (db) => monolithApp(db)],
  ['movies-service', (db) => moviesServiceApp(db)],
]
const cases = services.flatMap(([service, build]) => backends.map(([backend, open]) => [service, backend, build, open] as const))

describe.each(cases)('%s on %s: /api/movies', (_service, _backend, build, open) => {
  const t = useBackendApp(open, build)

  it('lists the seed movies with genres as arrays and ratings as numbers', async () => {
    const res = await t.app.inject('/api/movies')
    expect(res.statusCode).toBe(200)
    expect(res.headers['content-type']).toMatch(/^application\/json/)
    const movies = res.json()
    expect(movies.map((m: { title: string }) => m.title)).toEqual(SEED_TITLES)
    expect(movies[0]).toEqual({
      id: 1,
      title: 'The Shawshank Redemption',
      description: expect.stringMatching(/^Two imprisoned men/),
      genres: ['Drama'],
      rating: 9.3,
    })
    expect(movies[2].genres).toEqual(['Action', 'Crime', 'Drama'])
    expect(movies.every((m: { rating: unknown }) => typeof m.rating === 'number')).toBe(true)
    // Same field order as the Go structs' JSON.
    expect(Object.keys(movies[0])).toEqual(['id', 'title', 'description', 'genres', 'rating'])
  })

  it('returns one movie by ?id=', async () => {
    const res = await t.app.inject('/api/movies?id=2')
    expect(res.statusCode).toBe(200)
    expect(res.json()).toMatchObject({ id: 2, title: 'The Godfather', genres: ['Crime', 'Drama'], rating: 9.2 })
  })

  it('creates a movie with its genres, and reads it back', async () => {
    const res = await t.app.inject({
      method: 'POST',
      url: '/api/movies',
      payload: { title: 'Inception', description: 'Dreams', genres: ['Sci-Fi', 'Action', 'Sci-Fi'], rating: 8.8 },
    })
    expect(res.statusCode).toBe(201)
    const created = res.json()
    expect(created).toEqual({ id: expect.any(Number), title: 'Inception', description: 'Dreams', genres: ['Action', 'Sci-Fi'], rating: 8.8 })
    const read = await t.app.inject(`/api/movies?id=${created.id}`)
    expect(read.json()).toEqual(created)
  })

  it('answers [] genres for a movie created without genres', async () => {
    const res = await t.app.inject({ method: 'POST', url: '/api/movies', payload: { title: 'No genre', description: '', rating: 5 } })
    expect(res.statusCode).toBe(201)
    expect(res.json().genres).toEqual([])
    expect((await t.app.inject(`/api/movies?id=${res.json().id}`)).json().genres).toEqual([])
  })

  it('404 JSON for a missing id (0 and -1 included), 400 for one that is not an integer', async () => {
    for (const missingId of ['999999', '0', '-1']) {
      const missing = await t.app.inject(`/api/movies?id=${missingId}`)
      expect(missing.statusCode).toBe(404)
      expect(missing.json()).toEqual({ error: `movie ${missingId} not found` })
    }
    for (const bad of ['abc', '1.5', '1e3', '99999999999']) {
      const res = await t.app.inject(`/api/movies?id=${bad}`)
      expect(res.statusCode, bad).toBe(400)
      expect(res.json().error).toMatch(/\bid\b/)
    }
  })

  it.each([
    [{ description: 'x', rating: 5 }, 'title'],
    [{ title: 'x', rating: 5 }, 'description'],
    [{ title: 'x', description: 'x' }, 'rating'],
    [{ title: 5, description: 'x', rating: 5 }, 'title'],
    [{ title: 'x', description: 'x', rating: '5' }, 'rating'],
    [{ title: 'x', description: 'x', rating: 11 }, 'rating'],
    [{ title: 'x', description: 'x', rating: 5, genres: 'Drama' }, 'genres'],
    [{ title: 'x', description: 'x', rating: 5, genres: [1] }, 'genres'],
  ])('400 naming the field for %j', async (payload, field) => {
    const res = await t.app.inject({ method: 'POST', url: '/api/movies', payload })
    expect(res.statusCode).toBe(400)
    expect(res.json().error).toContain(field)
  })

  it('400 JSON for malformed JSON (whatever the media type, as the legacy read any body as JSON), 413 for an oversized body', async () => {
    const garbage = await t.app.inject({ method: 'POST', url: '/api/movies', headers: { 'content-type': 'application/json' }, payload: '{"title":' })
    expect(garbage.statusCode).toBe(400)
    expect(garbage.json()).toHaveProperty('error')
    const text = await t.app.inject({ method: 'POST', url: '/api/movies', headers: { 'content-type': 'text/plain' }, payload: 'hi' })
    expect(text.statusCode).toBe(400)
    expect(text.json()).toHaveProperty('error')
    const huge = await t.app.inject({
      method: 'POST',
      url: '/api/movies',
      payload: { title: 'x', description: 'x'.repeat(1_100_000), rating: 1 },
    })
    expect(huge.statusCode).toBe(413)
    expect(huge.json()).toHaveProperty('error')
  })

  it('405 JSON with Allow for other methods; 404 JSON for other paths', async () => {
    for (const method of ['PUT', 'DELETE', 'PATCH'] as const) {
      const res = await t.app.inject({ method, url: '/api/movies' })
      expect(res.statusCode).toBe(405)
      expect(res.headers.allow).toContain('GET')
      expect(res.json().error).toContain(method)
    }
    const sub = await t.app.inject('/api/movies/42')
    expect(sub.statusCode).toBe(404)
    expect(sub.json()).toHaveProperty('error')
  })
})
