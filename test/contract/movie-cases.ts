// The /api/movies table: what the legacy answered, row by row (docs/contract.md, "Movies"). Run
// on both services by movies.contract.test.ts, and through the proxy at the end of the catalog's
// migration by test/e2e/catalog-migration.test.ts.
import { expect } from 'vitest'
import type { ContractCase, Endpoint } from './contract-harness.ts'

const FIX_500 = 'legacy defect: a 500 (docs/contract.md)'
const CONTRACT = 'the contract forbids it (MovieInput); the legacy stored zero values'
const movie = (fields: Record<string, unknown>) => ({ title: 'T{u}', description: 'D', genres: ['Drama'], rating: 5, ...fields })

export const movieCases: ContractCase[] = [
  {
    name: 'list',
    legacy: 200,
    check: (b) => {
      const movies = b as Array<{ title: string; genres: string[]; rating: number }>
      expect(movies.slice(0, 5).map((m) => m.title)).toEqual(['The Shawshank Redemption', 'The Godfather', 'The Dark Knight', 'Pulp Fiction', 'Forrest Gump'])
      expect(movies[2]).toMatchObject({ genres: ['Action', 'Crime', 'Drama'], rating: 9 })
    },
  },
  { name: '?id=2', url: '/api/movies?id=2', legacy: 200, response: { id: 2, title: 'The Godfather', genres: ['Crime', 'Drama'], rating: 9.2 } },
  { name: '?id= (empty) lists', url: '/api/movies?id=', legacy: 200, check: (b) => expect(Array.isArray(b)).toBe(true) },
  { name: '?id=999999', url: '/api/movies?id=999999', legacy: 500, port: { status: 404, why: FIX_500 }, error: /^movie 999999 not found$/ },
  { name: '?id=0', url: '/api/movies?id=0', legacy: 500, port: { status: 404, why: FIX_500 }, error: /^movie 0 not found$/ },
  { name: '?id=abc', url: '/api/movies?id=abc', legacy: 500, port: { status: 400, why: FIX_500 }, error: /^id must be an integer$/ },

  { name: 'create with genres', body: movie({ genres: ['Sci-Fi', 'Action'], rating: 8.8 }), legacy: 201, response: { title: 'T{u}', description: 'D', genres: ['Action', 'Sci-Fi'], rating: 8.8 } },
  { name: 'create without genres: genres []', body: { title: 'T{u}', description: '', rating: 5 }, legacy: 201, response: { description: '', genres: [] } },
  { name: 'empty title', body: movie({ title: '' }), legacy: 201, response: { title: '' }, rule: 'movie-title-non-empty' },
  { name: 'an empty genre name', body: movie({ genres: [''] }), legacy: 201, response: { genres: [''] }, rule: 'movie-genres-non-empty' },
  { name: 'Cyrillic title and genre', body: movie({ title: 'Сталкер {u}', genres: ['Драма'] }), legacy: 201, response: { title: 'Сталкер {u}', genres: ['Драма'] } },
  { name: 'rating 10.04 is stored as 10.0 by DECIMAL(3,1)', body: movie({ rating: 10.04 }), legacy: 201, response: { rating: 10 } },
  { name: 'rating -0.04 is stored as 0.0', body: movie({ rating: -0.04 }), legacy: 201, response: { rating: 0 } },
  { name: 'rating 0', body: movie({ rating: 0 }), legacy: 201, response: { rating: 0 } },
  { name: 'a 200 kB description', body: movie({ description: 'd'.repeat(200_000) }), legacy: 201 },
  { name: 'rating 10.05 rounds to 10.1: the CHECK fails', body: movie({ rating: 10.05 }), legacy: 500, port: { status: 400, why: FIX_500 }, error: /rating/ },
  { name: 'rating 11', body: movie({ rating: 11 }), legacy: 500, port: { status: 400, why: FIX_500 }, error: /rating/ },
  { name: 'rating -1', body: movie({ rating: -1 }), legacy: 500, port: { status: 400, why: FIX_500 }, error: /rating/ },
  { name: 'rating 1000 overflows DECIMAL(3,1)', body: movie({ rating: 1000 }), legacy: 500, port: { status: 400, why: FIX_500 }, error: /rating/ },
  { name: 'title longer than VARCHAR(255)', body: movie({ title: 'x'.repeat(256) }), legacy: 500, port: { status: 400, why: FIX_500 }, error: /title/ },
  { name: 'genre longer than VARCHAR(50)', body: movie({ genres: ['g'.repeat(51)] }), legacy: 500, port: { status: 400, why: FIX_500 }, error: /genres/ },
  { name: 'missing title', body: { description: 'D', rating: 5 }, legacy: 201, port: { status: 400, why: CONTRACT }, error: /title/ },
  { name: 'missing rating', body: { title: 'T{u}', description: 'D' }, legacy: 201, port: { status: 400, why: CONTRACT }, error: /rating/ },
  { name: 'rating a string', body: movie({ rating: '5' }), legacy: 201, port: { status: 400, why: CONTRACT }, error: /rating/ },
  { name: 'genres a string', body: movie({ genres: 'Drama' }), legacy: 201, port: { status: 400, why: CONTRACT }, error: /genres/ },
  { name: 'genres null', body: movie({ genres: null }), legacy: 201, port: { status: 400, why: CONTRACT }, error: /genres/ },
  { name: 'malformed JSON', raw: '{"title":', legacy: 400 },
  { name: 'PUT', method: 'PUT', legacy: 405 },
]

export const moviesEndpoint: Endpoint = {
  path: '/api/movies',
  shape: { id: 'integer', title: 'string', description: 'string', genres: 'string[]', rating: 'number' },
  services: ['monolith', 'movies-service'],
}
