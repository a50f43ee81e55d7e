// Read-through Redis cache in front of a MovieRepository. The cache is an optimisation only:
// any Redis failure is logged and the read goes to the database.
import type { Logger } from '../logger.ts'
import type { Redis } from '../redis.ts'
import type { Movie, MovieRepository } from './movie-repository.ts'

const LIST_KEY = 'movies:list'
const movieKey = (id: number) => `movies:id:${id}`

/** Drops the cached list and these movies (after a write or a replicated change committed). */
export async function invalidateMovies(redis: Redis, logger: Logger, ids: number[]): Promise<void> {
  try {
    await redis.del(LIST_KEY, ...ids.map(movieKey))
  } catch (err) {
    logger.warn({ err: (err as Error).message }, 'movie cache invalidation failed')
  }
}

export function withMovieCache(repo: MovieRepository, redis: Redis, logger: Logger, ttlSeconds: number): MovieRepository {
  async function cached<T>(key: string, load: () => Promise<T | undefined>): Promise<T | undefined> {
    try {
      const hit = await redis.get(key)
      if (hit !== null) return JSON.parse(hit) as T
    } catch (err) {
      logger.warn({ err: (err as Error).message, key }, 'movie cache read failed, reading from the database')
    }
    const value = await load()
    if (value !== undefined) {
      redis.set(key, JSON.stringify(value), 'EX', ttlSeconds).catch((err: Error) => {
        logger.warn({ err: err.message, key }, 'movie cache write failed')
      })
    }
    return value
  }

  return {
    list: async () => (await cached<Movie[]>(LIST_KEY, () => repo.list())) ?? [],
    get: (id) => cached<Movie>(movieKey(id), () => repo.get(id)),
    async create(input) {
      const movie = await repo.create(input)
      // Invalidate after the commit so the next list read sees the new movie.
      await invalidateMovies(redis, logger, [movie.id])
      return movie
    },
  }
}
