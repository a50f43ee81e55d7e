// Applying the other store's movie changes, and publishing this store's movies that were never
// published (the rows a store held before replication existed: legacy-db's, at first start).
//
// Apply is idempotent: a movie's state is applied only over an older version (an equal one is a
// duplicate delivery, an older one arrives late), in one transaction with its bookkeeping, and
// never recorded in the outbox again (no echo loop). The id sequence is kept above every applied
// id, so when writes move to this store its new movies continue after the other store's.
import type { Database, Queryable } from '../db/database.ts'
import type { Movie } from './movie-repository.ts'
import { SELECT_MOVIES } from './movie-repository.ts'
import { recordMovieStateMessage, type MovieState, type StoreSide } from './movie-state.ts'

/** applied; duplicate (this version is here already); stale (a newer one is); echo (this store's own change). */
export type ApplyOutcome = 'applied' | 'duplicate' | 'stale' | 'echo'

// Any constant: one apply at a time per store, so two applies cannot lower the id sequence.
const APPLY_LOCK_KEY = 7_316_2402

// setval only upwards: the sequence's last handed-out value is last_value once it was called.
const RAISE_SEQUENCE = `
  SELECT setval(pg_get_serial_sequence('movies', 'id'), $1)
    FROM (SELECT CASE WHEN is_called THEN last_value ELSE last_value - 1 END AS used FROM movies_id_seq) s
   WHERE s.used < $1`

export interface IncomingState {
  state: MovieState
  eventId: string
}

/** Applies one change; see applyMovieStates. */
export async function applyMovieState(db: Database, state: MovieState, eventId: string, self: StoreSide): Promise<ApplyOutcome> {
  return (await applyMovieStates(db, [{ state, eventId }], self))[0]
}

/**
 * Applies changes in the order given, in one transaction (all or none: a refused one rolls the
 * others back, and the caller applies them one by one to find it); one outcome per change.
 */
export async function applyMovieStates(db: Database, changes: readonly IncomingState[], self: StoreSide): Promise<ApplyOutcome[]> {
  if (changes.length === 0) return []
  return db.transaction(async (tx) => {
    await tx.query('SELECT pg_advisory_xact_lock($1)', [APPLY_LOCK_KEY])
    const outcomes: ApplyOutcome[] = []
    let highestId = 0
    for (const { state, eventId } of changes) {
      const outcome = await applyIn(tx, state, eventId, self)
      if (outcome === 'applied') highestId = Math.max(highestId, state.movie.id)
      outcomes.push(outcome)
    }
    if (highestId > 0) await tx.query(RAISE_SEQUENCE, [highestId])
    return outcomes
  })
}

async function applyIn(tx: Queryable, state: MovieState, eventId: string, self: StoreSide): Promise<ApplyOutcome> {
  const { movie } = state
  const { rows } = await tx.query<{ version: string }>('SELECT version::text AS version FROM movie_versions WHERE movie_id = $1 FOR UPDATE', [movie.id])
  const local = rows[0] ? Number(rows[0].version) : 0
  if (local >= state.version) return state.origin === self ? 'echo' : local === state.version ? 'duplicate' : 'stale'
  await tx.query(
    `INSERT INTO movies (id, title, description, rating) VALUES ($1, $2, $3, $4)
     ON CONFLICT (id) DO UPDATE SET title = EXCLUDED.title, description = EXCLUDED.description,
       rating = EXCLUDED.rating, updated_at = CURRENT_TIMESTAMP`,
    [movie.id, movie.title, movie.description, movie.rating],
  )
  // The genres as the state has them: those it lacks removed, the new ones added.
  await tx.query('DELETE FROM movie_genres WHERE movie_id = $1 AND NOT (genre = ANY($2::text[]))', [movie.id, movie.genres])
  if (movie.genres.length > 0) await tx.query('INSERT INTO movie_genres (movie_id, genre) SELECT $1, unnest($2::text[]) ON CONFLICT DO NOTHING', [movie.id, movie.genres])
  await tx.query(
    `INSERT INTO movie_versions (movie_id, version, origin, changed_at, event_id, applied_at) VALUES ($1, $2, $3, $4, $5, clock_timestamp())
     ON CONFLICT (movie_id) DO UPDATE SET version = EXCLUDED.version, origin = EXCLUDED.origin, changed_at = EXCLUDED.changed_at,
       event_id = EXCLUDED.event_id, applied_at = EXCLUDED.applied_at`,
    [movie.id, state.version, state.origin, state.changed_at, eventId],
  )
  return 'applied'
}

/**
 * Publishes every movie of this store that has no version yet (written before replication, or
 * by something else than the service) as version 1 written here, in batches; returns how many.
 * Safe to run any time and on several replicas at once (each movie is taken once).
 */
export async function publishUnpublishedMovies(db: Database, self: StoreSide, batchSize = 500): Promise<number> {
  let total = 0
  for (;;) {
    const published = await db.transaction(async (tx) => {
      const { rows } = await tx.query<{ movie_id: number; event_id: string; changed_at: string }>(
        `INSERT INTO movie_versions (movie_id, version, origin, changed_at, event_id)
         SELECT m.id, 1, $1, clock_timestamp(), gen_random_uuid() FROM movies m
          WHERE NOT EXISTS (SELECT 1 FROM movie_versions v WHERE v.movie_id = m.id)
          ORDER BY m.id LIMIT $2
         ON CONFLICT (movie_id) DO NOTHING
         RETURNING movie_id, event_id::text AS event_id, changed_at`,
        [self, batchSize],
      )
      if (rows.length === 0) return 0
      await recordStates(tx, rows.map((r) => r.movie_id), self, true)
      return rows.length
    })
    total += published
    if (published < batchSize) return total
  }
}

/**
 * Publishes the current state of every movie this store wrote again (same versions: a replica
 * that has them skips them as duplicates). For a movie-state topic that lost data; a replica
 * that lost its store needs nothing of the kind (it replays the topic).
 */
export async function republishOwnMovies(db: Database, self: StoreSide, batchSize = 500): Promise<number> {
  let total = 0
  let after = 0
  for (;;) {
    const ids = await db.transaction(async (tx) => {
      const { rows } = await tx.query<{ movie_id: number }>(
        'SELECT movie_id FROM movie_versions WHERE origin = $1 AND movie_id > $2 ORDER BY movie_id LIMIT $3',
        [self, after, batchSize],
      )
      await recordStates(tx, rows.map((r) => r.movie_id), self, false)
      return rows.map((r) => r.movie_id)
    })
    total += ids.length
    if (ids.length < batchSize) return total
    after = ids[ids.length - 1]
  }
}

async function recordStates(tx: Queryable, ids: number[], self: StoreSide, firstPublication: boolean): Promise<void> {
  if (ids.length === 0) return
  const { rows } = await tx.query<Movie & { version: string; changed_at: string; event_id: string }>(
    `SELECT s.*, v.version::text AS version, v.changed_at, v.event_id::text AS event_id
       FROM (${SELECT_MOVIES} WHERE m.id = ANY($1::int[]) GROUP BY m.id) s
       JOIN movie_versions v ON v.movie_id = s.id
      ORDER BY s.id`,
    [ids],
  )
  for (const r of rows) {
    const movie: Movie = { id: r.id, title: r.title, description: r.description, genres: r.genres, rating: r.rating }
    // The first publication carries the version row's event id; a later one a fresh id.
    await recordMovieStateMessage(tx, { movie, origin: self, version: Number(r.version), changed_at: r.changed_at }, firstPublication ? r.event_id : undefined)
  }
}
