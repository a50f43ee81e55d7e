// Kafka going away under the outbox, on a broker of this file's own: creates keep answering 201
// at their usual speed (writes never wait for Kafka), /ready stays ready, the events wait in
// the outbox; once the broker is back the same relay publishes every one of them exactly
// once, each partition in the order they were written.
import { rmSync } from 'node:fs'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { startKafka, type RunningKafka } from '../../dev/kafka/launcher.ts'
import { useTestDatabase } from '../helpers/infra.ts'
import { readToEnd } from '../events-service/support.ts'
import { kafkaClient, metric, pendingCount, startMonolith, topicsOf, uniqueName, waitFor, type ServiceUnderTest } from './support.ts'

const test = useTestDatabase()
const prefix = `${uniqueName('outage')}.`
const topics = topicsOf(prefix)
// Long enough that "a create waited for Kafka" and "a create was slow" cannot be confused.
const SEND_TIMEOUT_MS = 5_000
let broker: RunningKafka
let svc: ServiceUnderTest | undefined

beforeAll(async () => {
  broker = await startKafka()
})
afterAll(async () => {
  await svc?.app.close().catch(() => {})
  await broker?.stop()
  if (broker) rmSync(broker.dataDir, { recursive: true, force: true })
})

/** The 20 writes: users, movies, payments and subscriptions, as a client sends them. */
function create(i: number) {
  const kind = i % 4
  if (kind === 0) return { url: '/api/users', payload: { username: `outage-${i}`, email: `outage-${i}@example.com` } }
  if (kind === 1) return { url: '/api/movies', payload: { title: `Outage ${i}`, description: 'd', rating: 5, genres: ['Drama'] } }
  if (kind === 2) return { url: '/api/payments', payload: { user_id: 1, amount: 10 + i } }
  return { url: '/api/subscriptions', payload: { user_id: 1 + (i % 3), plan_type: 'premium', start_date: '2026-01-01T00:00:00Z', end_date: '2026-02-01T00:00:00Z' } }
}

it('Kafka stopped: 20 creates answer 201 promptly; Kafka back: all 20 events arrive exactly once, in order', { timeout: 240_000 }, async () => {
  await test.db.query('DELETE FROM outbox')
  svc = await startMonolith({ db: test.db, dbUrl: test.database.url, brokers: broker.brokers, prefix, env: { KAFKA_SEND_TIMEOUT_MS: String(SEND_TIMEOUT_MS) } })
  const app = svc.app
  // The relay is up and the topics exist.
  expect((await app.inject({ method: 'POST', url: '/api/users', payload: { username: 'before-outage', email: 'b@example.com' } })).statusCode).toBe(201)
  await waitFor('first event published', async () => (await pendingCount(test.db)) === 0, 60_000)

  await broker.stop()
  const answers: Array<{ status: number; ms: number }> = []
  for (let i = 0; i < 20; i++) {
    const started = Date.now()
    const res = await app.inject({ method: 'POST', ...create(i) })
    answers.push({ status: res.statusCode, ms: Date.now() - started })
  }
  expect(answers.map((a) => a.status)).toEqual(Array(20).fill(201))
  // Normal latency: a write that waited for Kafka would take the send timeout at least; the
  // bound is half of it, generous for a busy CI machine.
  expect(Math.max(...answers.map((a) => a.ms))).toBeLessThan(SEND_TIMEOUT_MS / 2)
  expect((await app.inject({ method: 'GET', url: '/ready' })).statusCode).toBe(200)
  // The 20 events, and the replication message (movie-state) of each of the 5 movies.
  const { rows: waiting } = await test.db.query<{ id: string; position: string }>("SELECT id::text, position::text FROM outbox WHERE sent_at IS NULL AND topic <> 'movie-state' ORDER BY outbox.position")
  expect(waiting).toHaveLength(20)
  expect(await metric(app, 'outbox_pending_events')).toBe(25)
  await waitFor('the relay tried and failed', async () => (await metric(app, 'outbox_events_failed_total')) > 0, 30_000)

  await broker.restart()
  await waitFor('outbox drained after the restart', async () => (await pendingCount(test.db)) === 0, 120_000)
  const ours = new Map(waiting.map((r, index) => [r.id, index]))
  // Everything in the topics, to their end offsets: a duplicate cannot hide behind an early stop.
  const messages = (await readToEnd(kafkaClient(broker.brokers, 'outage-reader'), Object.values(topics))).filter((m) => ours.has(m.event?.id ?? ''))
  if (new Set(messages.map((m) => m.event!.id)).size !== messages.length || messages.length !== 20) {
    console.log(messages.map((m) => `${m.topic}/${m.partition}@${m.offset} #${ours.get(m.event!.id)}`).join('\n'))
    console.log(svc.lines.filter((l) => (l.level as number) >= 40).map((l) => JSON.stringify(l)).join('\n'))
  }
  expect(messages).toHaveLength(20)
  expect(new Set(messages.map((m) => m.event!.id)).size).toBe(20)
  // In every partition, our events sit in the order they were written.
  const partitions = new Map<string, number[]>()
  for (const m of [...messages].sort((a, b) => a.offset - b.offset)) {
    const key = `${m.topic}/${m.partition}`
    partitions.set(key, [...(partitions.get(key) ?? []), ours.get(m.event!.id)!])
  }
  if ([...partitions.values()].some((o) => o.join() !== [...o].sort((a, b) => a - b).join())) {
    console.log(messages.map((m) => `${m.topic}/${m.partition}@${m.offset} #${ours.get(m.event!.id)}`).join('\n'))
    console.log(svc.lines.filter((l) => (l.level as number) >= 40).map((l) => JSON.stringify(l)).join('\n'))
  }
  for (const [partition, order] of partitions) expect(order, partition).toEqual([...order].sort((a, b) => a - b))
  expect(messages.map((m) => m.event!.type).sort()).toEqual([...Array(5).fill('movie'), ...Array(5).fill('payment'), ...Array(5).fill('subscription'), ...Array(5).fill('user')])

  // Graceful shutdown stops the relay, then its producer.
  await app.close()
  const order = svc.lines.map((l) => l.msg)
  expect(order.indexOf('outbox relay stopped')).toBeGreaterThan(-1)
  expect(order.lastIndexOf('kafka producer closed')).toBeGreaterThan(order.indexOf('outbox relay stopped'))
})
