// The /api/movies contract, served identically by the monolith and the movies service.
import type { FastifyInstance } from 'fastify'
import type { ContractRules } from '../contract/rules.ts'
import { errors } from '../errors.ts'
import { methodNotAllowed } from '../http/errors.ts'
import { optionalIntParam } from '../http/query.ts'
import type { MovieInput, MovieRepository } from './movie-repository.ts'

// What the contract (MovieInput) requires, and the columns' limits where the legacy answered 500
// (docs/contract.md). Empty titles and genre names are rules, observed, not refused.
export const movieInputSchema = {
  type: 'object',
  required: ['title', 'description', 'rating'],
  properties: {
    title: { type: 'string', maxLength: 255 },
    description: { type: 'string' },
    genres: { type: 'array', items: { type: 'string', maxLength: 50 } },
    // DECIMAL(3,1) CHECK (0..10): PostgreSQL rounds to one decimal, then checks. Exactly the values
    // the legacy stored (-0.04 is 0.0, 10.04 is 10.0); beyond them it answered 500.
    rating: { type: 'number', exclusiveMinimum: -0.05, exclusiveMaximum: 10.05 },
  },
} as const

export interface MovieRoutesOptions {
  movies: MovieRepository
  rules: ContractRules
  /** False while the store may lack changes (catching up): reads answer 503 STORE_CATCHING_UP. Absent = always. */
  readable?: () => boolean
}

export async function movieRoutes(app: FastifyInstance, opts: MovieRoutesOptions): Promise<void> {
  const { movies, rules } = opts

  app.get('/api/movies', async (request) => {
    if (opts.readable && !opts.readable()) throw new errors.STORE_CATCHING_UP('movies')
    const id = optionalIntParam(request.query, 'id')
    if (id === undefined) return movies.list()
    const movie = await movies.get(id)
    if (!movie) throw new errors.MOVIE_NOT_FOUND(id)
    return movie
  })

  app.post<{ Body: MovieInput }>('/api/movies', { schema: { body: movieInputSchema } }, async (request, reply) => {
    rules.check(request, 'movie-title-non-empty', request.body)
    rules.check(request, 'movie-genres-non-empty', request.body)
    const movie = await movies.create(request.body)
    return reply.code(201).send(movie)
  })

  methodNotAllowed(app, '/api/movies', ['GET', 'POST'])
}
