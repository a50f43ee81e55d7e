// Replication conflicts of movies (replication_conflicts, 006_write_authority.sql): a change the
// apply refused to merge (lib/movies/movie-replica.ts) waits here with both versions until an
// operator resolves it — through the proxy's admin API (POST /admin/routes/:name/conflicts/resolve),
// which calls both stores (/internal/conflicts/resolve, conflict-routes.ts) and records it in the
// ledger. Per store, a resolution is one of:
//   keep     this store's record wins: it is published again as a newer version made over the
//            one it holds (the other store, which took "take", applies it);
//   take     the other store's record wins: the newest parked change is applied here;
//   rekey    this store's record moves to a new id of its own range (published as a new record),
//            then the other store's record is taken under the key.
// Every open conflict of the key is closed with the resolution and who asked for it.
import type { Database, Queryable } from '../db/database.ts'
import { errors } from '../errors.ts'
import { movieById, type Movie } from '../movies/movie-repository.ts'
import { APPLY_LOCK_KEY, storeMovieState } from '../movies/movie-replica.ts'
import { recordMovieState, type MovieState, type StoreSide } from '../movies/movie-state.ts'

export const RESOLUTIONS = ['keep', 'take', 'rekey'] as const
export type Resolution = (typeof RESOLUTIONS)[number]

export interface OpenConflict {
  id: number
  key: string
  reason: string
  detectedAt: string
  local: { version: number | null; origin: string | null; document: unknown }
  incoming: { version: number; origin: string; document: unknown }
}

interface ConflictRow {
  id: string
  record_key: string
  reason: string
  detected_at: string
  local_version: string | null
  local_origin: string | null
  local_document: unknown
  incoming_version: string
  incoming_origin: string
  incoming_state: MovieState
  incoming_event_id: string
}

const toOpen = (r: ConflictRow): OpenConflict => ({
  id: Number(r.id),
  key: r.record_key,
  reason: r.reason,
  detectedAt: r.detected_at,
  local: { version: r.local_version === null ? null : Number(r.local_version), origin: r.local_origin, document: r.local_document },
  incoming: { version: Number(r.incoming_version), origin: r.incoming_origin, document: r.incoming_state.movie },
})

/** The open conflicts (at most `limit`, oldest first) and how many there are. */
export async function openConflicts(db: Queryable, limit = 50): Promise<{ count: number; conflicts: OpenConflict[] }> {
  const [count, rows] = await Promise.all([
    db.query<{ n: number }>("SELECT count(*)::int AS n FROM replication_conflicts WHERE entity = 'movies' AND resolved_at IS NULL"),
    db.query<ConflictRow>(
      `SELECT id::text AS id, record_key, reason, detected_at, local_version::text AS local_version, local_origin, local_document,
              incoming_version::text AS incoming_version, incoming_origin, incoming_state, incoming_event_id::text AS incoming_event_id
         FROM replication_conflicts WHERE entity = 'movies' AND resolved_at IS NULL ORDER BY id LIMIT $1`,
      [limit],
    ),
  ])
  return { count: count.rows[0].n, conflicts: rows.rows.map(toOpen) }
}

export interface ResolveRequest {
  key: string
  resolution: Resolution
  actor: string
  self: StoreSide
}

export interface ResolveResult {
  key: string
  resolution: Resolution
  closed: number
  /** keep: the version published; take: the version taken; rekey: the new id of this store's record. */
  version?: number
  newId?: number
}

/** Resolves every open conflict of `key` here; CONFLICT_NOT_FOUND when there is none (nothing changed). */
export async function resolveConflict(db: Database, req: ResolveRequest): Promise<ResolveResult> {
  const id = Number(req.key)
  if (!Number.isSafeInteger(id) || id < 1) throw new errors.CONFLICT_NOT_FOUND(req.key)
  return db.transaction(async (tx) => {
    await tx.query('SELECT pg_advisory_xact_lock($1)', [APPLY_LOCK_KEY])
    const { rows } = await tx.query<ConflictRow>(
      `SELECT id::text AS id, record_key, reason, detected_at, local_version::text AS local_version, local_origin, local_document,
              incoming_version::text AS incoming_version, incoming_origin, incoming_state, incoming_event_id::text AS incoming_event_id
         FROM replication_conflicts WHERE entity = 'movies' AND record_key = $1 AND resolved_at IS NULL ORDER BY incoming_version, id FOR UPDATE`,
      [req.key],
    )
    if (rows.length === 0) throw new errors.CONFLICT_NOT_FOUND(req.key)
    const newest = rows[rows.length - 1]
    const result: ResolveResult = { key: req.key, resolution: req.resolution, closed: rows.length }
    const { rows: versions } = await tx.query<{ version: string; origin: StoreSide }>('SELECT version::text AS version, origin FROM movie_versions WHERE movie_id = $1 FOR UPDATE', [id])
    const held = versions[0]
    if (req.resolution === 'keep') {
      const movie = await movieById(tx, id)
      if (!movie) throw new errors.CONFLICT_NOT_FOUND(req.key)
      const top = Math.max(Number(held?.version ?? 0), ...rows.map((r) => Number(r.incoming_version)))
      result.version = top + 1
      await recordMovieState(tx, movie, req.self, top + 1, held ? { version: Number(held.version), origin: held.origin } : undefined)
    } else {
      if (req.resolution === 'rekey') {
        const movie = await movieById(tx, id)
        if (movie) result.newId = await copyUnderNewId(tx, movie, req.self)
      }
      await takeState(tx, newest.incoming_state, newest.incoming_event_id)
      result.version = newest.incoming_state.version
    }
    await tx.query(
      `UPDATE replication_conflicts SET resolved_at = clock_timestamp(), resolution = $2, resolved_by = $3
        WHERE entity = 'movies' AND record_key = $1 AND resolved_at IS NULL`,
      [req.key, req.resolution, req.actor.slice(0, 100)],
    )
    return result
  })
}

/** The other store's record under its key, whatever this store held there (the operator chose it). */
const takeState = (tx: Queryable, state: MovieState, eventId: string) => storeMovieState(tx, state, eventId, 'upsert')

/** This store's record again under a new id of its own range, published as a new record. */
async function copyUnderNewId(tx: Queryable, movie: Movie, self: StoreSide): Promise<number> {
  const { rows } = await tx.query<{ id: number }>('INSERT INTO movies (title, description, rating) VALUES ($1, $2, $3) RETURNING id', [movie.title, movie.description, movie.rating])
  const newId = rows[0].id
  if (movie.genres.length > 0) await tx.query('INSERT INTO movie_genres (movie_id, genre) SELECT $1, unnest($2::text[])', [newId, movie.genres])
  await recordMovieState(tx, { ...movie, id: newId }, self, 1)
  return newId
}
