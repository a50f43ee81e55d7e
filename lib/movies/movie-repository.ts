// Movie data access shared by the monolith and the movies service (one copy, two services).
import type { Database, Queryable } from '../db/database.ts'
import { recordEvent } from '../outbox/outbox.ts'
import { claimWrite } from '../replication/write-authority.ts'
import { MOVIES_ENTITY, recordMovieState, type StoreSide } from './movie-state.ts'

export interface Movie {
  id: number
  title: string
  description: string
  genres: string[]
  rating: number
}

export interface MovieInput {
  title: string
  description: string
  genres?: string[]
  rating: number
}

// One statement for the whole list (the Go code ran one more query per movie for its genres).
// DECIMAL comes back from PostgreSQL as a string: cast to float8 so clients get a JSON number.
// Columns in the legacy JSON's field order.
export const SELECT_MOVIES = `
  SELECT m.id, m.title, COALESCE(m.description, '') AS description,
         COALESCE(array_agg(g.genre ORDER BY g.genre) FILTER (WHERE g.genre IS NOT NULL), '{}') AS genres,
         COALESCE(m.rating, 0)::float8 AS rating
    FROM movies m
    LEFT JOIN movie_genres g ON g.movie_id = m.id`

/** One movie as the API answers it, read with `q` (a pool or a transaction), or undefined. */
export async function movieById(q: Queryable, id: number): Promise<Movie | undefined> {
  const { rows } = await q.query<Movie>(`${SELECT_MOVIES} WHERE m.id = $1 GROUP BY m.id`, [id])
  return rows[0]
}

export interface MovieRepository {
  list(): Promise<Movie[]>
  get(id: number): Promise<Movie | undefined>
  create(input: MovieInput): Promise<Movie>
}

export interface MovieRepositoryOptions {
  /**
   * Writes only as the movies' writer (lib/replication/write-authority.ts): on wherever this store
   * replicates (another store holds movies too); off for a store on its own (no Kafka).
   */
  writerOnly?: boolean
}

/** `side`: the store this repository writes to; its creates are published to the other side as its writes. */
export function createMovieRepository(db: Database, side: StoreSide, options: MovieRepositoryOptions = {}): MovieRepository {
  return {
    async list() {
      const { rows } = await db.query<Movie>(`${SELECT_MOVIES} GROUP BY m.id ORDER BY m.id`)
      return rows
    },

    get: (id) => movieById(db, id),

    async create(input) {
      const genres = [...new Set(input.genres ?? [])]
      // The movie row and its genres are written together or not at all.
      return db.transaction(async (tx) => {
        // Refused (NOT_WRITER) before anything is written when this store is not the writer now.
        if (options.writerOnly) await claimWrite(tx, MOVIES_ENTITY)
        // RETURNING the stored values: DECIMAL(3,1) rounds 8.85 to 8.9, and clients get what a read returns.
        const { rows } = await tx.query<Omit<Movie, 'genres'>>(
          `INSERT INTO movies (title, description, rating) VALUES ($1, $2, $3)
           RETURNING id, title, COALESCE(description, '') AS description, rating::float8 AS rating`,
          [input.title, input.description, input.rating],
        )
        const movie = rows[0]
        if (genres.length > 0) {
          await tx.query('INSERT INTO movie_genres (movie_id, genre) SELECT $1, unnest($2::text[])', [movie.id, genres])
        }
        // Field order as the legacy JSON: id, title, description, genres, rating.
        const created = { id: movie.id, title: movie.title, description: movie.description, genres: [...genres].sort(), rating: movie.rating }
        // Committed with the movie or not at all; the relay publishes it (lib/outbox).
        await recordEvent(tx, 'movie', {
          movie_id: created.id,
          title: created.title,
          action: 'created',
          rating: created.rating,
          genres: created.genres,
          description: created.description,
        })
        // Its full state for the other store (replication, lib/movies/movie-replica.ts): version 1 of a new movie.
        await recordMovieState(tx, created, side, 1)
        return created
      })
    },
  }
}
