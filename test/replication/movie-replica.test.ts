// Applying movie-state on a store (real PostgreSQL, and the run's Kafka for the consumer):
// newer over older only, duplicates and echoes skipped, the id sequence raised above every
// applied id, poison messages parked and counted while the stream goes on.
import { randomUUID } from 'node:crypto'
import { Registry } from 'prom-client'
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import { loadMigrationSet, migrate } from '../../lib/db/migrate.ts'
import { topicsFromConfig } from '../../lib/kafka/topics.ts'
import { applyMovieState, publishUnpublishedMovies } from '../../lib/movies/movie-replica.ts'
import { createMovieRepository } from '../../lib/movies/movie-repository.ts'
import { parseMovieState, PoisonMessageError, type MovieState } from '../../lib/movies/movie-state.ts'
import { createReplicaMetrics } from '../../lib/replication/metrics.ts'
import { createReplicaConsumer } from '../../lib/replication/movie-state-consumer.ts'
import { createEmptyDatabase, type TestDatabase } from '../../dev/pg-admin.ts'
import type { Database } from '../../lib/db/database.ts'
import { captureLogs } from '../helpers/logs.ts'
import { metric } from '../helpers/metrics.ts'
import { openDb } from '../helpers/apps.ts'
import { pgAdminUrl } from '../helpers/infra.ts'
import { eventually } from '../helpers/poll.ts'
import { idempotentProducer, kafkaClient, uniqueName } from '../kafka/helpers.ts'

let database: TestDatabase
let db: Database

beforeAll(async () => {
  database = await createEmptyDatabase(pgAdminUrl(), 'catalog_replica')
  db = openDb(database.url)
  await migrate(db, await loadMigrationSet('catalog'))
})
afterAll(async () => {
  await db?.close()
  await database?.drop()
})

const state = (id: number, version: number, title = `Movie ${id} v${version}`, origin: MovieState['origin'] = 'legacy'): MovieState => ({
  movie: { id, title, description: 'd', genres: ['Drama'], rating: 7.5 },
  origin,
  version,
  changed_at: new Date().toISOString(),
})
const title = async (id: number) => (await db.query<{ title: string }>('SELECT title FROM movies WHERE id = $1', [id])).rows[0]?.title

describe('applyMovieState', () => {
  it('applies a newer version, skips an equal one (duplicate) and an older one (stale); the same version in another content is a conflict', async () => {
    expect(await applyMovieState(db, state(10, 1), randomUUID(), 'catalog')).toBe('applied')
    expect(await applyMovieState(db, state(10, 3), randomUUID(), 'catalog')).toBe('applied')
    expect(await applyMovieState(db, state(10, 3), randomUUID(), 'catalog')).toBe('duplicate')
    expect(await applyMovieState(db, state(10, 2, 'older'), randomUUID(), 'catalog')).toBe('stale')
    expect(await applyMovieState(db, state(10, 3, 'a copy'), randomUUID(), 'catalog')).toBe('conflict')
    expect(await title(10)).toBe('Movie 10 v3')
    const { rows } = await db.query<{ local_document: { title: string }; incoming_state: MovieState }>("SELECT local_document, incoming_state FROM replication_conflicts WHERE record_key = '10' AND resolved_at IS NULL")
    expect(rows.map((r) => [r.local_document.title, r.incoming_state.movie.title])).toEqual([['Movie 10 v3', 'a copy']])
    // The key takes no further change until the conflict is resolved.
    expect(await applyMovieState(db, state(10, 4), randomUUID(), 'catalog')).toBe('conflict')
    expect(await title(10)).toBe('Movie 10 v3')
  })

  it('skips this store\'s own change coming back (echo) and never records anything in the outbox', async () => {
    const repo = createMovieRepository(db, 'catalog')
    const before = (await db.query<{ n: number }>('SELECT count(*)::int AS n FROM outbox')).rows[0].n
    const own = await repo.create({ title: 'Written here', description: 'x', rating: 5 })
    const { rows } = await db.query<{ payload: { payload: MovieState } }>("SELECT payload FROM outbox WHERE topic = 'movie-state' ORDER BY position DESC LIMIT 1")
    expect(rows[0].payload.payload).toMatchObject({ movie: own, origin: 'catalog', version: 1 })
    expect(await applyMovieState(db, rows[0].payload.payload, randomUUID(), 'catalog')).toBe('echo')
    await applyMovieState(db, state(20, 1), randomUUID(), 'catalog')
    // One movie-event and one movie-state for the create; nothing for the applies.
    expect((await db.query<{ n: number }>('SELECT count(*)::int AS n FROM outbox')).rows[0].n).toBe(before + 2)
  })

  it('allocates ids from its own range only: the other store\'s ids never move its sequence, its own coming back do', async () => {
    await applyMovieState(db, state(5000, 1), randomUUID(), 'catalog') // legacy's range: not this store's to hand out
    const first = await createMovieRepository(db, 'catalog').create({ title: 'First here', description: '', rating: 1 })
    expect(first.id).toBeGreaterThanOrEqual(1_000_000_000)
    // Its own movie coming back from the stream (a store rebuilt or restored from a backup): the sequence continues after it.
    await applyMovieState(db, state(1_000_000_500, 1, 'Written here before the rebuild', 'catalog'), randomUUID(), 'catalog')
    await applyMovieState(db, state(1_000_000_400, 1, 'An older one', 'catalog'), randomUUID(), 'catalog') // never lowers it
    const next = await createMovieRepository(db, 'catalog').create({ title: 'Next', description: '', rating: 1 })
    expect(next.id).toBe(1_000_000_501)
  })

  it('publishes the movies that were never published, once', async () => {
    await db.query("INSERT INTO movies (id, title, description, rating) VALUES (9000, 'From before replication', NULL, 6.0)")
    expect(await publishUnpublishedMovies(db, 'catalog')).toBe(1)
    expect(await publishUnpublishedMovies(db, 'catalog')).toBe(0)
    const { rows } = await db.query<{ payload: { payload: MovieState } }>("SELECT payload FROM outbox WHERE topic = 'movie-state' AND aggregate_id = '9000'")
    expect(rows.map((r) => r.payload.payload)).toEqual([
      { movie: { id: 9000, title: 'From before replication', description: '', genres: [], rating: 6 }, origin: 'catalog', version: 1, changed_at: expect.any(String) },
    ])
  })
})

describe('parseMovieState', () => {
  const ok = (s: MovieState) => Buffer.from(JSON.stringify({ id: randomUUID(), type: 'movie-state', timestamp: new Date().toISOString(), payload: s }))
  it('accepts a well-formed message and refuses the rest as poison, naming the problem', () => {
    expect(parseMovieState(Buffer.from('3'), ok(state(3, 1))).payload.movie.id).toBe(3)
    const cases: Array<[string | null, Buffer | null, RegExp]> = [
      ['3', null, /no value/],
      ['3', Buffer.from('{oops'), /not JSON/],
      ['3', Buffer.from('[]'), /not an envelope/],
      ['4', ok(state(3, 1)), /key "4" is not the movie id 3/],
      ['3', ok({ ...state(3, 1), version: 0 }), /version/],
      ['3', ok({ ...state(3, 1), origin: 'elsewhere' as never }), /origin/],
      ['3', ok({ ...state(3, 1), movie: { ...state(3, 1).movie, rating: 11 } }), /rating/],
      ['3', ok({ ...state(3, 1), movie: { ...state(3, 1).movie, title: 'x'.repeat(256) } }), /title/],
    ]
    for (const [key, value, reason] of cases) {
      expect(() => parseMovieState(key === null ? null : Buffer.from(key), value)).toThrow(PoisonMessageError)
      expect(() => parseMovieState(key === null ? null : Buffer.from(key), value)).toThrow(reason)
    }
  })
})

describe('the replica consumer', () => {
  it('parks poison messages in replication_parked, counts them, and applies what follows', { timeout: 90_000 }, async () => {
    const brokers = inject('kafkaBrokers').split(',')
    const kafka = kafkaClient(brokers, 'replica-test')
    const prefix = `${uniqueName('replica')}.`
    const topic = `${prefix}movie-state`
    const topics = topicsFromConfig(kafka, { topicPrefix: prefix, topicPartitions: 1, topicReplicationFactor: -1, sendTimeoutMs: 5_000 }, captureLogs().logger, [topic], [topic])
    await topics.ensure()
    const producer = idempotentProducer(kafka)
    await producer.connect()
    const envelope = (s: MovieState) => JSON.stringify({ id: randomUUID(), type: 'movie-state', timestamp: new Date().toISOString(), payload: s })
    await producer.send({
      topic,
      messages: [
        { key: '7001', value: 'not json at all' },
        { key: '7002', value: envelope({ ...state(7002, 1), movie: { ...state(7002, 1).movie, genres: ['x'.repeat(60)] } }) },
        { key: '7003', value: envelope(state(7003, 1)) },
        // Valid JSON the database refuses (a NUL character in text): its batch is applied one by one.
        { key: '7004', value: envelope(state(7004, 1, 'nul \u0000 inside')) },
        { key: '7005', value: envelope(state(7005, 1)) },
      ],
    })
    await producer.disconnect()
    const registry = new Registry()
    const applied: number[] = []
    const consumer = createReplicaConsumer({
      kafka, topics, topic, db, self: 'catalog', logger: captureLogs().logger, metrics: createReplicaMetrics(registry), onApplied: async (id) => void applied.push(id),
    })
    consumer.start()
    try {
      await eventually('the valid movies applied around the poison ones', async () => (await title(7005)) === 'Movie 7005 v1', 60_000)
      expect(await title(7003)).toBe('Movie 7003 v1')
      expect(await title(7004)).toBeUndefined()
      const parked = await db.query<{ message_key: string; error: string }>('SELECT message_key, error FROM replication_parked WHERE topic = $1 ORDER BY message_offset', [topic])
      expect(parked.rows.map((r) => r.message_key)).toEqual(['7001', '7002', '7004'])
      expect(parked.rows[0].error).toMatch(/not JSON/)
      expect(parked.rows[1].error).toMatch(/genres/)
      expect(parked.rows[2].error).toMatch(/refused by the database/)
      const text = await registry.metrics()
      expect(metric(text, 'movie_replication_events_total{result="parked"}')).toBe(3)
      expect(metric(text, 'movie_replication_events_total{origin="legacy",result="applied"}')).toBe(2)
      expect(applied).toEqual([7003, 7005])
      await eventually('caught up with the topic', () => consumer.status().behindMessages === 0, 20_000)
    } finally {
      await consumer.stop()
    }
  })
})

describe('npm run replication:republish', () => {
  it('queues every movie this store wrote again, same versions, and refuses a bad store name', { timeout: 60_000 }, async () => {
    const { execFile } = await import('node:child_process')
    const run = (env: Record<string, string>) =>
      new Promise<{ code: number | null; out: string }>((resolve) => {
        execFile(process.execPath, ['lib/replication/republish-cli.ts'], { env: { PATH: process.env.PATH ?? '', ...env } }, (err, stdout, stderr) =>
          resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, out: stdout + stderr }),
        )
      })
    const own = (await db.query<{ n: number }>("SELECT count(*)::int AS n FROM movie_versions WHERE origin = 'catalog'")).rows[0].n
    const before = (await db.query<{ n: number }>("SELECT count(*)::int AS n FROM outbox WHERE topic = 'movie-state'")).rows[0].n
    const done = await run({ DB_CONNECTION_STRING: database.url, REPLICATION_STORE: 'catalog' })
    expect(done.code, done.out).toBe(0)
    expect(done.out).toContain(`catalog: ${own} movies written here queued for movie-state again`)
    const after = await db.query<{ payload: { payload: MovieState } }>("SELECT payload FROM outbox WHERE topic = 'movie-state' ORDER BY position OFFSET $1", [before])
    expect(after.rows).toHaveLength(own)
    expect(after.rows.every((r) => r.payload.payload.origin === 'catalog')).toBe(true)
    const bad = await run({ DB_CONNECTION_STRING: database.url, REPLICATION_STORE: 'both' })
    expect(bad.code).toBe(1)
    expect(bad.out).toMatch(/REPLICATION_STORE/)
  })
})
