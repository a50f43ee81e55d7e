// The /api/movies contract, served identically by the monolith and the movies service.
import type { FastifyInstance } from 'fastify'
import { methodNotAllowed, notFound } from '../http/errors.ts'
import { optionalIdParam } from '../http/query.ts'
import type { MovieInput, MovieRepository } from './movie-repository.ts'

export const movieInputSchema = {
  type: 'object',
  required: ['title', 'description', 'rating'],
  properties: {
    title: { type: 'string', minLength: 1, maxLength: 255 },
    description: { type: 'string', maxLength: 100_000 },
    genres: { type: 'array', maxItems: 50, items: { type: 'string', minLength: 1, maxLength: 50 } },
    rating: { type: 'number', minimum: 0, maximum: 10 },
  },
} as const

export async function movieRoutes(app: FastifyInstance, opts: { movies: MovieRepository }): Promise<void> {
  const { movies } = opts

  app.get('/api/movies', async (request) => {
    const id = optionalIdParam(request.query, 'id')
    if (id === undefined) return movies.list()
    const movie = await movies.get(id)
    if (!movie) throw notFound(`movie ${id} not found`)
    return movie
  })

  app.post<{ Body: MovieInput }>('/api/movies', { schema: { body: movieInputSchema } }, async (request, reply) => {
    const movie = await movies.create(request.body)
    return reply.code(201).send(movie)
  })

  methodNotAllowed(app, '/api/movies', ['GET', 'POST'])
}
