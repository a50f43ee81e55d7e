// One writer per record, decided inside the stores (lib/replication/write-authority.ts), on real
// PostgreSQL: a store that is not the writer refuses a write inside its transaction; a release
// waits for the writes in flight and publishes a barrier; a handover is taken up only at a newer
// epoch and writes wait until the store has applied the stream's end; an apply racing a local
// create of the same id parks a conflict instead of overwriting it; a conflict resolved on both
// stores leaves them equal.
import { randomUUID } from 'node:crypto'
import pg from 'pg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createEmptyDatabase, type TestDatabase } from '../../dev/pg-admin.ts'
import type { Database } from '../../lib/db/database.ts'
import { loadMigrationSet, migrate } from '../../lib/db/migrate.ts'
import { applyMovieState, applyMovieStates } from '../../lib/movies/movie-replica.ts'
import { createMovieRepository } from '../../lib/movies/movie-repository.ts'
import { MOVIE_STATE_TOPIC, type MovieState } from '../../lib/movies/movie-state.ts'
import { openConflicts, resolveConflict } from '../../lib/replication/conflicts.ts'
import { authorityState, claimWrite, releaseWrites, takeUpHandover, type WriterHandover } from '../../lib/replication/write-authority.ts'
import { openDb } from '../helpers/apps.ts'
import { pgAdminUrl } from '../helpers/infra.ts'

let legacyDb: TestDatabase
let catalogDb: TestDatabase
let legacy: Database
let catalog: Database

beforeAll(async () => {
  ;[legacyDb, catalogDb] = await Promise.all([createEmptyDatabase(pgAdminUrl(), 'authority_legacy'), createEmptyDatabase(pgAdminUrl(), 'authority_catalog')])
  legacy = openDb(legacyDb.url)
  catalog = openDb(catalogDb.url)
  await migrate(legacy, await loadMigrationSet('legacy'))
  await migrate(catalog, await loadMigrationSet('catalog'))
})
afterAll(async () => {
  await Promise.all([legacy?.close(), catalog?.close()])
  await Promise.all([legacyDb?.drop(), catalogDb?.drop()])
})

const count = async (db: Database, sql: string) => (await db.query<{ n: number }>(sql)).rows[0].n
const handover = (epoch: number, to: 'legacy' | 'catalog'): WriterHandover => ({ entity: 'movies', epoch, from: to === 'catalog' ? 'legacy' : 'catalog', to, released_at: new Date().toISOString() })
const movieState = (id: number, title: string, origin: MovieState['origin'], version = 1): MovieState => ({
  movie: { id, title, description: 'd', genres: ['Drama'], rating: 7 },
  origin,
  version,
  changed_at: new Date().toISOString(),
})

describe('the store decides whether it may write', () => {
  it('a store that is not the writer refuses the write inside its transaction, and nothing is written', async () => {
    const before = [await count(catalog, 'SELECT count(*)::int AS n FROM movies'), await count(catalog, 'SELECT count(*)::int AS n FROM outbox')]
    const create = createMovieRepository(catalog, 'catalog', { writerOnly: true }).create({ title: 'Nope', description: '', rating: 1 })
    await expect(create).rejects.toMatchObject({ code: 'CA_ERR_NOT_WRITER', statusCode: 421 })
    expect([await count(catalog, 'SELECT count(*)::int AS n FROM movies'), await count(catalog, 'SELECT count(*)::int AS n FROM outbox')]).toEqual(before)
    // legacy-db is the writer of a fresh pair (epoch 1).
    const made = await createMovieRepository(legacy, 'legacy', { writerOnly: true }).create({ title: 'Yes', description: '', rating: 1 })
    expect(made.id).toBeLessThan(1_000_000_000)
  })

  it('a release waits for the write in flight, publishes a barrier after it, and no write starts after it', async () => {
    const inFlight = new pg.Client({ connectionString: legacyDb.url })
    await inFlight.connect()
    try {
      await inFlight.query('BEGIN')
      await inFlight.query("SELECT writer FROM write_authority WHERE entity = 'movies' FOR KEY SHARE")
      let releasedAt = 0
      const release = releaseWrites(legacy, { entity: 'movies', store: 'legacy', to: 'catalog', topic: MOVIE_STATE_TOPIC }).then((r) => ((releasedAt = Date.now()), r))
      await new Promise((resolve) => setTimeout(resolve, 300))
      expect(releasedAt).toBe(0) // still waiting for the write in flight
      await inFlight.query("INSERT INTO movies (title, description, rating) VALUES ('in flight', '', 1)")
      const committedAt = Date.now()
      await inFlight.query('COMMIT')
      const { released, state } = await release
      expect(released).toBe(true)
      expect(releasedAt).toBeGreaterThanOrEqual(committedAt)
      expect(state).toMatchObject({ writer: false, epoch: 2, handedTo: 'catalog' })
    } finally {
      await inFlight.end()
    }
    const { rows } = await legacy.query<{ aggregate_id: string; barrier: boolean; payload: { type: string; payload: WriterHandover } }>(
      "SELECT aggregate_id, barrier, payload FROM outbox WHERE aggregate_type = 'writer-handover'",
    )
    expect(rows).toEqual([{ aggregate_id: 'writer:movies', barrier: true, payload: expect.objectContaining({ type: 'writer-handover', payload: expect.objectContaining({ entity: 'movies', epoch: 2, from: 'legacy', to: 'catalog' }) }) }])
    await expect(createMovieRepository(legacy, 'legacy', { writerOnly: true }).create({ title: 'After', description: '', rating: 1 })).rejects.toMatchObject({ code: 'CA_ERR_NOT_WRITER' })
    // A second release (another proxy replica) changes nothing.
    expect((await releaseWrites(legacy, { entity: 'movies', store: 'legacy', to: 'catalog', topic: MOVIE_STATE_TOPIC })).released).toBe(false)
    await expect(claimWrite(legacy, 'movies')).rejects.toMatchObject({ code: 'CA_ERR_NOT_WRITER' })
  })

  it('the gaining store takes the handover up at a newer epoch only, and writes once it has applied the stream up to its end', async () => {
    const position = (next: number) => ({ topic: 'movie-state', partition: 0, nextOffset: String(next) })
    expect(await applyMovieStates(catalog, [{ handover: handover(2, 'catalog'), eventId: randomUUID() }], 'catalog', position(5))).toEqual(['handover'])
    expect(await authorityState(catalog, 'movies', 'catalog')).toMatchObject({ writer: false, pendingEpoch: 2 })
    // The stream's end, read after the handover was applied: offset 9 on partition 0 is not applied yet.
    await takeUpHandover(catalog, 'movies', [{ topic: 'movie-state', partition: 0, offset: 9 }])
    expect(await authorityState(catalog, 'movies', 'catalog')).toMatchObject({ writer: true, epoch: 2, catchingUp: true })
    const repo = createMovieRepository(catalog, 'catalog', { writerOnly: true })
    await expect(repo.create({ title: 'Too early', description: '', rating: 1 })).rejects.toMatchObject({ code: 'CA_ERR_NOT_WRITER' })
    // The changes up to the end arrive (the releasing store's last ones among them).
    await applyMovieStates(catalog, [{ state: movieState(3, 'legacy last', 'legacy'), eventId: randomUUID() }], 'catalog', position(9))
    const made = await repo.create({ title: 'Now', description: '', rating: 1 })
    expect(made.id).toBeGreaterThanOrEqual(1_000_000_000)
    // An old handover (re-delivered, or replayed by a rebuilt store) changes nothing.
    expect(await applyMovieStates(catalog, [{ handover: handover(2, 'catalog'), eventId: randomUUID() }], 'catalog')).toEqual(['handover'])
    expect(await authorityState(catalog, 'movies', 'catalog')).toMatchObject({ writer: true, epoch: 2 })
    // A newer one to the other store (seen by a store rebuilt from the stream) ends its writing.
    await applyMovieStates(catalog, [{ handover: handover(3, 'legacy'), eventId: randomUUID() }], 'catalog')
    expect(await authorityState(catalog, 'movies', 'catalog')).toMatchObject({ writer: false, epoch: 3, handedTo: 'legacy' })
  })
})

describe('conflicts are seen, never merged', () => {
  it('an apply racing a local create of the same id parks a conflict; the local record keeps what its client sent', async () => {
    const id = 777
    const local = new pg.Client({ connectionString: legacyDb.url })
    await local.connect()
    try {
      // A create on this store, not committed yet when the other store's change of the same id arrives.
      await local.query('BEGIN')
      await local.query("INSERT INTO movies (id, title, description, rating) VALUES ($1, 'the local client''s movie', 'mine', 8)", [id])
      await local.query("INSERT INTO movie_versions (movie_id, version, origin, changed_at, event_id) VALUES ($1, 1, 'legacy', clock_timestamp(), $2)", [id, randomUUID()])
      const applying = applyMovieState(legacy, movieState(id, 'the other store\'s movie', 'catalog'), randomUUID(), 'legacy')
      await new Promise((resolve) => setTimeout(resolve, 300))
      await local.query('COMMIT')
      expect(await applying).toBe('conflict')
    } finally {
      await local.end()
    }
    const { rows } = await legacy.query<{ title: string }>('SELECT title FROM movies WHERE id = $1', [id])
    expect(rows[0].title).toBe("the local client's movie")
    const { conflicts } = await openConflicts(legacy)
    expect(conflicts.find((c) => c.key === String(id))).toMatchObject({
      local: { version: 1, origin: 'legacy', document: expect.objectContaining({ title: "the local client's movie" }) },
      incoming: { version: 1, origin: 'catalog', document: expect.objectContaining({ title: "the other store's movie" }) },
    })
  })

  it('resolved on both stores (one keeps, the other takes), the stores end equal and the conflicts closed', async () => {
    const id = 888
    // Each store wrote its own record under the same id (as two writers at once would have).
    await legacy.query("INSERT INTO movies (id, title, description, rating) VALUES ($1, 'legacy record', '', 5)", [id])
    await legacy.query("INSERT INTO movie_versions (movie_id, version, origin, changed_at, event_id) VALUES ($1, 1, 'legacy', clock_timestamp(), $2)", [id, randomUUID()])
    await catalog.query("INSERT INTO movies (id, title, description, rating) VALUES ($1, 'catalog record', '', 6)", [id])
    await catalog.query("INSERT INTO movie_versions (movie_id, version, origin, changed_at, event_id) VALUES ($1, 1, 'catalog', clock_timestamp(), $2)", [id, randomUUID()])
    expect(await applyMovieState(legacy, movieState(id, 'catalog record', 'catalog'), randomUUID(), 'legacy')).toBe('conflict')
    expect(await applyMovieState(catalog, movieState(id, 'legacy record', 'legacy'), randomUUID(), 'catalog')).toBe('conflict')
    // The operator keeps legacy's record: legacy publishes it again as version 2 over its version 1; catalog takes legacy's.
    expect(await resolveConflict(legacy, { key: String(id), resolution: 'keep', actor: 'alice', self: 'legacy' })).toMatchObject({ closed: 1, version: 2 })
    expect(await resolveConflict(catalog, { key: String(id), resolution: 'take', actor: 'alice', self: 'catalog' })).toMatchObject({ closed: 1, version: 1 })
    const { rows } = await legacy.query<{ payload: { payload: MovieState } }>("SELECT payload FROM outbox WHERE topic = 'movie-state' AND aggregate_id = $1 ORDER BY position DESC LIMIT 1", [String(id)])
    expect(rows[0].payload.payload).toMatchObject({ version: 2, origin: 'legacy', base: { version: 1, origin: 'legacy' } })
    expect(await applyMovieState(catalog, rows[0].payload.payload, randomUUID(), 'catalog')).toBe('applied')
    const title = async (db: Database) => (await db.query<{ title: string }>('SELECT title FROM movies WHERE id = $1', [id])).rows[0].title
    expect([await title(legacy), await title(catalog)]).toEqual(['legacy record', 'legacy record'])
    expect((await openConflicts(catalog)).conflicts.some((c) => c.key === String(id))).toBe(false)
    await expect(resolveConflict(catalog, { key: String(id), resolution: 'take', actor: 'alice', self: 'catalog' })).rejects.toMatchObject({ code: 'CA_ERR_CONFLICT_NOT_FOUND' })
  })

  it('re-keying moves this store\'s record to a new id of its own range and takes the other\'s under the key', async () => {
    const id = 999
    await catalog.query("INSERT INTO movies (id, title, description, rating) VALUES ($1, 'catalog client', '', 4)", [id])
    await catalog.query("INSERT INTO movie_versions (movie_id, version, origin, changed_at, event_id) VALUES ($1, 1, 'catalog', clock_timestamp(), $2)", [id, randomUUID()])
    expect(await applyMovieState(catalog, movieState(id, 'legacy client', 'legacy'), randomUUID(), 'catalog')).toBe('conflict')
    const result = await resolveConflict(catalog, { key: String(id), resolution: 'rekey', actor: 'bob', self: 'catalog' })
    expect(result.newId).toBeGreaterThanOrEqual(1_000_000_000)
    const { rows } = await catalog.query<{ id: number; title: string }>('SELECT id, title FROM movies WHERE id = ANY($1::int[]) ORDER BY id', [[id, result.newId]])
    expect(rows).toEqual([
      { id, title: 'legacy client' },
      { id: result.newId, title: 'catalog client' },
    ])
  })
})
