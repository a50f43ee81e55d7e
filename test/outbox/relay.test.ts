// The outbox relay on real PostgreSQL and the run's real Kafka: a failed transaction leaves no
// event; two relays on one database publish 1,000 events once each, in order per key; a relay
// that dies between send and mark has its events sent again with the same ids, and the events
// service logs each once; metrics; sent rows deleted after the retention period.
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import { recordEvent } from '../../lib/outbox/outbox.ts'
import { deleteTopics, processedLines, readToEnd, startEventsApp, type EventsAppUnderTest } from '../events-service/support.ts'
import { useTestDatabase } from '../helpers/infra.ts'
import {
  kafkaClient,
  metric,
  pendingCount,
  readTopics,
  startMonolith,
  topicsOf,
  uniqueName,
  waitFor,
  type ReadMessage,
  type ServiceSetup,
  type ServiceUnderTest,
} from './support.ts'

const test = useTestDatabase()
const brokers = () => inject('kafkaBrokers').split(',')
const prefix = `${uniqueName('outbox')}.`
const topics = topicsOf(prefix)
const started: Array<{ app: { close(): Promise<unknown> } }> = []

const setup = (extra: Partial<ServiceSetup> = {}): ServiceSetup => ({ db: test.db, dbUrl: test.database.url, brokers: brokers(), prefix, ...extra })
async function monolith(extra: Partial<ServiceSetup> = {}): Promise<ServiceUnderTest> {
  const svc = await startMonolith(setup(extra))
  started.push(svc)
  return svc
}

const reader = () => kafkaClient(brokers(), 'outbox-relay-reader')
/** Reads the three topics from the beginning until `done` holds. */
const readAll = (done: (m: ReadMessage[]) => boolean, timeoutMs = 60_000) => readTopics(reader(), Object.values(topics), done, timeoutMs)

beforeAll(async () => {
  // Rows the seed or earlier files left are not this file's business.
  await test.db.query('DELETE FROM outbox')
})
afterAll(async () => {
  for (const s of started.reverse()) await s.app.close().catch(() => {})
  await deleteTopics(reader(), Object.values(topics))
})

describe('outbox relay', () => {
  it('a transaction that fails after the event was recorded leaves no event, in the table or in Kafka', async () => {
    const svc = await monolith()
    let doomedId = ''
    await expect(
      test.db.transaction(async (tx) => {
        doomedId = (await recordEvent(tx, 'movie', { movie_id: 900_001, title: 'doomed', action: 'created' })).id
        // A later statement of the same transaction fails (foreign key): everything rolls back.
        await tx.query('INSERT INTO payments (user_id, amount) VALUES (999999999, 1)')
      }),
    ).rejects.toThrow()
    // The same through the API: a duplicate username is a 409, and its transaction wrote no event.
    const first = await svc.app.inject({ method: 'POST', url: '/api/users', payload: { username: 'outbox-dup', email: 'a@example.com' } })
    expect(first.statusCode).toBe(201)
    const dup = await svc.app.inject({ method: 'POST', url: '/api/users', payload: { username: 'outbox-dup', email: 'b@example.com' } })
    expect(dup.statusCode).toBe(409)
    // A marker written afterwards: once it is in Kafka, anything written before would be too.
    const marker = await test.db.transaction((tx) => recordEvent(tx, 'movie', { movie_id: 900_002, title: 'marker', action: 'created' }))

    // Drained = everything written before, the marker last, is stored in Kafka: read it all.
    await waitFor('outbox drained', async () => (await pendingCount(test.db)) === 0)
    const messages = await readToEnd(reader(), Object.values(topics))
    expect(messages.some((m) => m.event?.id === marker.id)).toBe(true)
    expect(messages.filter((m) => m.event?.id === doomedId)).toEqual([])
    expect(messages.filter((m) => m.event?.payload.title === 'doomed' || m.event?.payload.email === 'b@example.com')).toEqual([])
    expect(messages.filter((m) => m.event?.payload.username === 'outbox-dup')).toHaveLength(1)
    const { rows } = await test.db.query('SELECT id FROM outbox WHERE id = $1', [doomedId])
    expect(rows).toEqual([])
    expect(await metric(svc.app, 'outbox_events_sent_total')).toBeGreaterThanOrEqual(2)
    expect(await metric(svc.app, 'outbox_pending_events')).toBe(0)
  })

  it('two relays on one database: 1,000 events, each published once, in order per key', { timeout: 180_000 }, async () => {
    await monolith() // two more relays on the same database, started with their services
    await monolith()
    // Every relay running on the database (the first test's one too).
    const relays = [...started] as ServiceUnderTest[]
    const totalSent = async () => (await Promise.all(relays.map((r) => metric(r.app, 'outbox_events_sent_total')))).reduce((x, y) => x + y, 0)
    const sentBefore = await totalSent()
    const run = uniqueName('run')
    // 1,000 events over 40 keys, written by 10 concurrent writers, 10 events per transaction.
    const writers = Array.from({ length: 10 }, async (_, w) => {
      for (let t = 0; t < 10; t++) {
        await test.db.transaction(async (tx) => {
          for (let i = 0; i < 10; i++) {
            const seq = w * 100 + t * 10 + i
            await recordEvent(tx, 'movie', { movie_id: 800_000 + (seq % 40), title: `${run}:${w}:${t * 10 + i}`, action: 'created' })
          }
        })
      }
    })
    await Promise.all(writers)
    const ours = (m: ReadMessage) => String(m.event?.payload.title ?? '').startsWith(`${run}:`)
    await waitFor('outbox drained', async () => (await pendingCount(test.db)) === 0, 120_000)
    // Everything to the end of the topics: a duplicate cannot hide behind an early stop.
    const all = (await readToEnd(reader(), Object.values(topics))).filter(ours)
    const ids = all.map((m) => m.event!.id)
    expect(all).toHaveLength(1000)
    expect(new Set(ids).size).toBe(1000)
    // Per key, in partition order, each writer's events appear in the order it wrote them.
    const byKey = new Map<string, ReadMessage[]>()
    for (const m of all) byKey.set(m.key, [...(byKey.get(m.key) ?? []), m])
    for (const [key, list] of byKey) {
      expect(new Set(list.map((m) => m.partition)).size, `key ${key} on one partition`).toBe(1)
      const sorted = [...list].sort((x, y) => x.offset - y.offset)
      const lastByWriter = new Map<string, number>()
      for (const m of sorted) {
        const [, writer, n] = String(m.event!.payload.title).split(':')
        expect(Number(n), `key ${key} writer ${writer}`).toBeGreaterThan(lastByWriter.get(writer!) ?? -1)
        lastByWriter.set(writer!, Number(n))
      }
    }
    // Normal operation: the relays together published each row exactly once.
    expect((await totalSent()) - sentBefore).toBe(1000)
    const shares = await Promise.all(relays.map((r) => metric(r.app, 'outbox_events_sent_total')))
    console.log(`relays on one database, events sent by each: ${shares.join(', ')} (this test: 1,000)`)
  })

  it('a relay that dies between send and mark: the event goes out again with the same id, and the events service logs it once', { timeout: 120_000 }, async () => {
    // Only the relays of this test run now.
    for (const s of started.splice(0).reverse()) await s.app.close()
    const events: EventsAppUnderTest = await startEventsApp(brokers(), { KAFKA_TOPIC_PREFIX: prefix, KAFKA_SESSION_TIMEOUT_MS: '6000' })
    started.push(events)
    let unfreeze!: (err: Error) => void
    const frozen = new Promise<void>((_, reject) => (unfreeze = reject))
    let sentIds: string[] = []
    // The "dead" relay: publishes, then never marks (as if killed right after the ack).
    const dying = await monolith({
      relay: {
        leaseMs: 2_000,
        beforeMark: async (ids) => {
          sentIds = ids
          await frozen
        },
      },
    })
    try {
      // The store takes writes once it knows it has applied the movie stream (lib/replication/write-authority.ts).
      await waitFor('the monolith caught up with the movie stream', async () => (await dying.app.inject({ url: '/internal/writer' })).json().caughtUpSinceStart === true)
      const created = await dying.app.inject({ method: 'POST', url: '/api/movies', payload: { title: 'Twice Sent', description: 'd', rating: 7 } })
      expect(created.statusCode, created.body).toBe(201)
      const movieId = created.json().id
      // The create's batch: its movie-events event and its movie-state (replication) message.
      await waitFor('the dying relay sent the event', () => sentIds.length > 0)
      const { rows: sentEvents } = await test.db.query<{ id: string }>("SELECT id::text AS id FROM outbox WHERE id = ANY($1::uuid[]) AND topic = 'movie-events'", [sentIds])
      expect(sentEvents).toHaveLength(1)
      const [eventId] = sentEvents.map((r) => r.id)
      // The restarted process: a relay on the same database takes the row over once the lease is gone.
      await monolith()
      const copies = await readAll((m) => m.filter((x) => x.event?.id === eventId).length >= 2)
      const twice = copies.filter((x) => x.event?.id === eventId)
      expect(twice).toHaveLength(2)
      expect(twice.map((m) => m.key)).toEqual([String(movieId), String(movieId)])
      expect(twice[0]!.value).toBe(twice[1]!.value)
      await waitFor('outbox drained', async () => (await pendingCount(test.db)) === 0)
      await waitFor('the events service saw both copies', () => events.lines.some((l) => l.msg === 'event already processed, skipped' && l.id === eventId))
      expect(processedLines(events.lines).filter((l) => l.id === eventId)).toHaveLength(1)
      expect(await metric(events.app, 'events_duplicates_total', { topic: topics.movie })).toBeGreaterThanOrEqual(1)
    } finally {
      unfreeze(new Error('test over'))
    }
  })

  it('metrics: pending rows and the age of the oldest one while no relay runs; sent rows deleted after the retention period', { timeout: 60_000 }, async () => {
    for (const s of started.splice(0).reverse()) await s.app.close()
    // No KAFKA_BROKERS: relay off, the outbox only fills.
    const off = await monolith({ brokers: [] })
    const warned = off.lines.find((l) => l.level === 40 && String(l.msg).startsWith('KAFKA_BROKERS is not set'))
    expect(warned).toBeDefined()
    const created = await off.app.inject({ method: 'POST', url: '/api/users', payload: { username: 'waiting', email: 'w@example.com' } })
    expect(created.statusCode).toBe(201)
    await new Promise((r) => setTimeout(r, 1_100))
    expect(await metric(off.app, 'outbox_pending_events')).toBe(1)
    expect(await metric(off.app, 'outbox_oldest_pending_age_seconds')).toBeGreaterThanOrEqual(1)
    expect((await off.app.inject({ method: 'GET', url: '/ready' })).statusCode).toBe(200)

    // A relay with a 1 s retention publishes it, and deletes the sent rows a moment later.
    const relay = await monolith({ env: { OUTBOX_RETENTION_SECONDS: '1' } })
    await waitFor('outbox drained', async () => (await pendingCount(test.db)) === 0)
    // The gauge is read at scrape time: the next scrape after the drain reads 0 (a scrape whose read fails reports NaN).
    await waitFor('the oldest pending age back to 0', async () => (await metric(off.app, 'outbox_oldest_pending_age_seconds')) === 0)
    expect(await metric(relay.app, 'outbox_events_sent_total', { topic: topics.user })).toBe(1)
    // The relay deletes once per min(retention, 60 s): a second relay start runs it at once.
    await new Promise((r) => setTimeout(r, 1_100))
    await monolith({ env: { OUTBOX_RETENTION_SECONDS: '1' } })
    await waitFor('sent rows deleted', async () => (await test.db.query('SELECT 1 FROM outbox')).rowCount === 0)
  })
})
