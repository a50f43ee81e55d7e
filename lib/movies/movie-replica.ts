// Applying the other store's movie changes, and publishing this store's movies that were never
// published (the rows a store held before replication existed: legacy-db's, at first start).
//
// Apply is idempotent: a movie's state is applied only over an older version it was built on (an
// equal version with the same content is a duplicate delivery or this store's own change coming
// back, an older one arrives late), in one transaction with its bookkeeping and the offset it was
// read at (lib/replication/write-authority.ts, recordApplied), and never recorded in the outbox
// again (no echo loop). It never overwrites a record this store holds in another content at the
// same version, nor one the change was not built on: that is a conflict, parked with both
// versions (replication_conflicts) until an operator resolves it (lib/replication/conflicts.ts).
import type { Database, Queryable } from '../db/database.ts'
import type { Movie } from './movie-repository.ts'
import { movieById, SELECT_MOVIES } from './movie-repository.ts'
import { recordMovieStateMessage, type MovieState, type StoreSide } from './movie-state.ts'
import { applyHandover, recordApplied, type WriterHandover } from '../replication/write-authority.ts'

/**
 * applied; duplicate (this version is here already); stale (a newer one is); echo (this store's
 * own change); conflict (parked: another record at this key); handover (a writer handover noted).
 */
export type ApplyOutcome = 'applied' | 'duplicate' | 'stale' | 'echo' | 'conflict' | 'handover'

// Any constant: one apply (or conflict resolution, lib/replication/conflicts.ts) at a time per
// store, so two applies cannot lower the id sequence.
export const APPLY_LOCK_KEY = 7_316_2402

// The id sequence is raised (only upwards) to the highest applied id that lies in this store's own
// range: its own movies coming back to a store rebuilt or restored from a backup. Ids of the other
// store's range are never this store's to hand out (001/007 migrations).
const RAISE_SEQUENCE = `
  SELECT setval('movies_id_seq', own.top)
    FROM (SELECT max(id) AS top FROM unnest($1::int[]) AS id, pg_sequences s
           WHERE s.schemaname = current_schema() AND s.sequencename = 'movies_id_seq' AND id BETWEEN s.min_value AND s.max_value) own,
         (SELECT CASE WHEN is_called THEN last_value ELSE last_value - 1 END AS used FROM movies_id_seq) seq
   WHERE own.top IS NOT NULL AND seq.used < own.top`

export type IncomingState = { state: MovieState; eventId: string } | { handover: WriterHandover; eventId: string }

/** Where the changes were read: recorded with them (the offset after the last one). */
export interface AppliedPosition {
  topic: string
  partition: number
  nextOffset: string
}

/** Applies one change; see applyMovieStates. */
export async function applyMovieState(db: Database, state: MovieState, eventId: string, self: StoreSide): Promise<ApplyOutcome> {
  return (await applyMovieStates(db, [{ state, eventId }], self))[0]
}

/**
 * Applies changes in the order given, in one transaction (all or none: a refused one rolls the
 * others back, and the caller applies them one by one to find it), with `position` when given;
 * one outcome per change.
 */
export async function applyMovieStates(db: Database, changes: readonly IncomingState[], self: StoreSide, position?: AppliedPosition): Promise<ApplyOutcome[]> {
  if (changes.length === 0 && !position) return []
  return db.transaction(async (tx) => {
    await tx.query('SELECT pg_advisory_xact_lock($1)', [APPLY_LOCK_KEY])
    const outcomes: ApplyOutcome[] = []
    const appliedIds: number[] = []
    for (const change of changes) {
      if ('handover' in change) {
        await applyHandover(tx, change.handover, self)
        outcomes.push('handover')
        continue
      }
      const outcome = await applyIn(tx, change.state, change.eventId, self)
      if (outcome === 'applied') appliedIds.push(change.state.movie.id)
      outcomes.push(outcome)
    }
    if (appliedIds.length > 0) await tx.query(RAISE_SEQUENCE, [appliedIds])
    if (position) await recordApplied(tx, position.topic, position.partition, position.nextOffset)
    return outcomes
  })
}


const sameMovie = (a: Movie | undefined, b: Movie) =>
  a !== undefined && a.title === b.title && a.description === b.description && a.rating === b.rating && JSON.stringify([...a.genres].sort()) === JSON.stringify([...b.genres].sort())

async function applyIn(tx: Queryable, state: MovieState, eventId: string, self: StoreSide): Promise<ApplyOutcome> {
  const { movie } = state
  const key = String(movie.id)
  const readVersion = async () => (await tx.query<{ version: string; origin: StoreSide }>('SELECT version::text AS version, origin FROM movie_versions WHERE movie_id = $1 FOR UPDATE', [movie.id])).rows[0]
  // A key with an open conflict takes no further change until it is resolved: parked too.
  const open = await tx.query('SELECT 1 FROM replication_conflicts WHERE entity = $1 AND record_key = $2 AND resolved_at IS NULL LIMIT 1', ['movies', key])
  let local = await readVersion()
  if (open.rowCount > 0) return parkConflict(tx, state, eventId, local, 'an earlier change of this record is in conflict')
  if (!local) {
    // A new record here. DO NOTHING, never DO UPDATE: a row of this id written here and not
    // committed yet (or written outside the service) must not be overwritten once it commits.
    const inserted = await tx.query(
      'INSERT INTO movies (id, title, description, rating) VALUES ($1, $2, $3, $4) ON CONFLICT (id) DO NOTHING RETURNING id',
      [movie.id, movie.title, movie.description, movie.rating],
    )
    if (inserted.rowCount === 0) {
      local = await readVersion()
      return parkConflict(tx, state, eventId, local, local ? 'this store wrote a record under the same id meanwhile' : 'this store holds a record under the same id that was never published')
    }
    return writeState(tx, state, eventId, true)
  }
  const localVersion = Number(local.version)
  if (state.version < localVersion) return 'stale'
  if (state.version === localVersion) {
    if (sameMovie(await movieById(tx, movie.id), movie)) return state.origin === self ? 'echo' : 'duplicate'
    return parkConflict(tx, state, eventId, local, `the same version ${localVersion} holds another record here (written by ${local.origin})`)
  }
  // Newer: it must have been made over what this store holds (same version, same writer), or
  // over a version this store has not seen yet (it comes later than an earlier change here).
  if (state.base && state.base.version === localVersion && state.base.origin !== local.origin) {
    return parkConflict(tx, state, eventId, local, `made over version ${state.base.version} of ${state.base.origin}, but this store holds version ${localVersion} of ${local.origin}`)
  }
  if (!state.base && local.origin === self && state.origin !== self) {
    return parkConflict(tx, state, eventId, local, `a create of version ${state.version} over a record this store wrote (version ${localVersion})`)
  }
  return writeState(tx, state, eventId)
}

async function writeState(tx: Queryable, state: MovieState, eventId: string, inserted = false): Promise<ApplyOutcome> {
  await storeMovieState(tx, state, eventId, inserted ? 'inserted' : 'update')
  return 'applied'
}

/**
 * Makes `state` the movie's content and version here: its row (`update` an existing one, `upsert`
 * whatever is there — a conflict's resolution —, or `inserted` already), its genres, its version
 * row. The one place a movie's replicated state is written (the apply and conflicts.ts).
 */
export async function storeMovieState(tx: Queryable, state: MovieState, eventId: string, row: 'update' | 'upsert' | 'inserted'): Promise<void> {
  const { movie } = state
  if (row === 'upsert') {
    await tx.query(
      `INSERT INTO movies (id, title, description, rating) VALUES ($1, $2, $3, $4)
       ON CONFLICT (id) DO UPDATE SET title = EXCLUDED.title, description = EXCLUDED.description, rating = EXCLUDED.rating, updated_at = CURRENT_TIMESTAMP`,
      [movie.id, movie.title, movie.description, movie.rating],
    )
  }
  if (row === 'update') await tx.query('UPDATE movies SET title = $2, description = $3, rating = $4, updated_at = CURRENT_TIMESTAMP WHERE id = $1', [movie.id, movie.title, movie.description, movie.rating])
  // The genres as the state has them: those it lacks removed, the new ones added.
  await tx.query('DELETE FROM movie_genres WHERE movie_id = $1 AND NOT (genre = ANY($2::text[]))', [movie.id, movie.genres])
  if (movie.genres.length > 0) await tx.query('INSERT INTO movie_genres (movie_id, genre) SELECT $1, unnest($2::text[]) ON CONFLICT DO NOTHING', [movie.id, movie.genres])
  await tx.query(
    `INSERT INTO movie_versions (movie_id, version, origin, changed_at, event_id, applied_at) VALUES ($1, $2, $3, $4, $5, clock_timestamp())
     ON CONFLICT (movie_id) DO UPDATE SET version = EXCLUDED.version, origin = EXCLUDED.origin, changed_at = EXCLUDED.changed_at,
       event_id = EXCLUDED.event_id, applied_at = EXCLUDED.applied_at`,
    [movie.id, state.version, state.origin, state.changed_at, eventId],
  )
}

async function parkConflict(tx: Queryable, state: MovieState, eventId: string, local: { version: string; origin: StoreSide } | undefined, reason: string): Promise<ApplyOutcome> {
  const document = await movieById(tx, state.movie.id)
  await tx.query(
    `INSERT INTO replication_conflicts (entity, record_key, local_version, local_origin, local_document, incoming_version, incoming_origin, incoming_state, incoming_event_id, reason)
     VALUES ('movies', $1, $2, $3, $4::jsonb, $5, $6, $7::jsonb, $8, $9)`,
    [String(state.movie.id), local ? Number(local.version) : null, local?.origin ?? null, document ? JSON.stringify(document) : null, state.version, state.origin, JSON.stringify(state), eventId, reason],
  )
  return 'conflict'
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
