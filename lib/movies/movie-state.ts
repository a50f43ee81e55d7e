// The movie-state message: a movie's full state as the API answers it, plus what a replica
// needs to apply it safely (which side wrote it, its version, when). Published by the side that
// wrote the movie, through its outbox, to the compacted `movie-state` topic keyed by movie id,
// so the topic always holds the latest state of every movie (docs/architecture.md).
import { randomUUID } from 'node:crypto'
import type { Queryable } from '../db/database.ts'
import { recordOutboxMessage } from '../outbox/outbox.ts'
import type { Movie } from './movie-repository.ts'
import { handoverKey, WRITER_HANDOVER_TYPE, type WriterHandover, type WriterHandoverEnvelope } from '../replication/write-authority.ts'

/** Topic name before KAFKA_TOPIC_PREFIX; compacted (cleanup.policy=compact). */
export const MOVIE_STATE_TOPIC = 'movie-state'
export const MOVIE_STATE_TYPE = 'movie-state'

/** The entity name of movies in write_authority and handover messages. */
export const MOVIES_ENTITY = 'movies'

/** The two stores that hold movies: legacy-db (the monolith) and catalog-db (the movies service). */
export const STORE_SIDES = ['legacy', 'catalog'] as const
export type StoreSide = (typeof STORE_SIDES)[number]

export interface MovieState {
  movie: Movie
  origin: StoreSide
  /** Per movie, raised by one at every write on the writing side; a replica applies only a newer one. */
  version: number
  /** When the writing side committed it, RFC 3339. */
  changed_at: string
  /**
   * The version this change was made over (absent for a create): a store that holds another
   * record at that version has a conflict, not an older state (lib/movies/movie-replica.ts).
   */
  base?: { version: number; origin: StoreSide }
}

export interface MovieStateEnvelope {
  id: string
  type: typeof MOVIE_STATE_TYPE
  timestamp: string
  payload: MovieState
}

/**
 * Records version `version` of `movie`, written on `origin`: the movie's row in movie_versions
 * and its movie-state message, in `tx`'s transaction (with the movie's own write).
 */
export async function recordMovieState(tx: Queryable, movie: Movie, origin: StoreSide, version: number, base?: MovieState['base']): Promise<MovieStateEnvelope> {
  const id = randomUUID()
  const { rows } = await tx.query<{ changed_at: string }>(
    `INSERT INTO movie_versions (movie_id, version, origin, changed_at, event_id) VALUES ($1, $2, $3, clock_timestamp(), $4)
     ON CONFLICT (movie_id) DO UPDATE SET version = EXCLUDED.version, origin = EXCLUDED.origin,
       changed_at = EXCLUDED.changed_at, event_id = EXCLUDED.event_id, applied_at = NULL
     RETURNING changed_at`,
    [movie.id, version, origin, id],
  )
  return recordMovieStateMessage(tx, { movie, origin, version, changed_at: rows[0].changed_at, ...(base ? { base } : {}) }, id)
}

/** Only the message (a state already in movie_versions, e.g. published again). */
export async function recordMovieStateMessage(tx: Queryable, state: MovieState, id: string = randomUUID()): Promise<MovieStateEnvelope> {
  const envelope: MovieStateEnvelope = { id, type: MOVIE_STATE_TYPE, timestamp: new Date().toISOString(), payload: state }
  await recordOutboxMessage(tx, { id, aggregateType: MOVIE_STATE_TYPE, key: String(state.movie.id), topic: MOVIE_STATE_TOPIC, envelope })
  return envelope
}

/** A message that can never be applied (unreadable or invalid): parked, never retried. */
export class PoisonMessageError extends Error {
  override readonly name = 'PoisonMessageError'
}

const isInt = (v: unknown, min: number): v is number => Number.isSafeInteger(v) && (v as number) >= min
const isText = (v: unknown, max: number): v is string => typeof v === 'string' && [...v].length <= max

/** A message of the movie-state topic: a movie's state, or a writer handover of the movies entity. */
export type MovieTopicMessage = { kind: 'movie'; envelope: MovieStateEnvelope } | { kind: 'handover'; envelope: WriterHandoverEnvelope }

/** Parses and checks a consumed message of the movie-state topic; throws PoisonMessageError. */
export function parseMovieTopicMessage(key: Buffer | null, value: Buffer | null): MovieTopicMessage {
  const parsed = parseJson(value)
  if ((parsed as { type?: unknown } | null)?.type !== WRITER_HANDOVER_TYPE) return { kind: 'movie', envelope: parseMovieState(key, value, parsed) }
  const problem = handoverProblem(parsed as Partial<WriterHandoverEnvelope>)
  if (problem) throw new PoisonMessageError(problem)
  const envelope = parsed as WriterHandoverEnvelope
  if (key?.toString('utf8') !== handoverKey(MOVIES_ENTITY)) throw new PoisonMessageError(`message key ${JSON.stringify(key?.toString('utf8'))} is not ${handoverKey(MOVIES_ENTITY)}`)
  return { kind: 'handover', envelope }
}

function parseJson(value: Buffer | null): unknown {
  if (!value) throw new PoisonMessageError('message has no value')
  try {
    return JSON.parse(value.toString('utf8'))
  } catch (err) {
    throw new PoisonMessageError(`value is not JSON: ${(err as Error).message}`)
  }
}

function handoverProblem(e: Partial<WriterHandoverEnvelope>): string | undefined {
  if (typeof e.id !== 'string' || e.id.length === 0) return 'envelope has no id'
  const p = e.payload as Partial<WriterHandover> | undefined
  if (typeof p !== 'object' || p === null) return 'envelope has no payload'
  if (p.entity !== MOVIES_ENTITY) return `payload.entity must be ${MOVIES_ENTITY}`
  if (!isInt(p.epoch, 1)) return 'payload.epoch must be a positive integer'
  if (!STORE_SIDES.includes(p.from as StoreSide) || !STORE_SIDES.includes(p.to as StoreSide) || p.from === p.to) return `payload.from and payload.to must be two of ${STORE_SIDES.join(', ')}`
  return undefined
}

/** Parses and checks a consumed movie-state message (key = the movie id); throws PoisonMessageError. */
export function parseMovieState(key: Buffer | null, value: Buffer | null, alreadyParsed?: unknown): MovieStateEnvelope {
  const parsed = (alreadyParsed ?? parseJson(value)) as Partial<MovieStateEnvelope>
  const problem = envelopeProblem(parsed)
  if (problem) throw new PoisonMessageError(problem)
  const envelope = parsed as MovieStateEnvelope
  if (key?.toString('utf8') !== String(envelope.payload.movie.id)) throw new PoisonMessageError(`message key ${JSON.stringify(key?.toString('utf8'))} is not the movie id ${envelope.payload.movie.id}`)
  return envelope
}

function envelopeProblem(e: Partial<MovieStateEnvelope> | null): string | undefined {
  if (typeof e !== 'object' || e === null || Array.isArray(e)) return 'value is not an envelope object'
  if (typeof e.id !== 'string' || e.id.length === 0) return 'envelope has no id'
  if (e.type !== MOVIE_STATE_TYPE) return `envelope type is ${JSON.stringify(e.type)}, not ${MOVIE_STATE_TYPE}`
  const p = e.payload as Partial<MovieState> | undefined
  if (typeof p !== 'object' || p === null) return 'envelope has no payload'
  if (!STORE_SIDES.includes(p.origin as StoreSide)) return `payload.origin must be one of ${STORE_SIDES.join(', ')}`
  if (!isInt(p.version, 1)) return 'payload.version must be a positive integer'
  if (typeof p.changed_at !== 'string' || Number.isNaN(Date.parse(p.changed_at))) return 'payload.changed_at must be a timestamp'
  if (p.base !== undefined && (typeof p.base !== 'object' || p.base === null || !isInt(p.base.version, 1) || p.base.version >= p.version || !STORE_SIDES.includes(p.base.origin))) {
    return 'payload.base must be {version, origin} of an earlier version'
  }
  const m = p.movie as Partial<Movie> | undefined
  if (typeof m !== 'object' || m === null) return 'payload.movie is missing'
  if (!isInt(m.id, 1) || m.id > 2_147_483_647) return 'payload.movie.id must be a positive 32-bit integer'
  if (!isText(m.title, 255)) return 'payload.movie.title must be a string of at most 255 characters'
  if (typeof m.description !== 'string') return 'payload.movie.description must be a string'
  if (!Array.isArray(m.genres) || !m.genres.every((g) => isText(g, 50))) return 'payload.movie.genres must be strings of at most 50 characters'
  if (typeof m.rating !== 'number' || !(m.rating >= 0 && m.rating <= 10)) return 'payload.movie.rating must be a number from 0 to 10'
  return undefined
}
