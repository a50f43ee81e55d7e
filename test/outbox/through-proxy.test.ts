// End to end, as processes: the monolith and the movies service (server.ts, real PostgreSQL,
// the run's Kafka) behind the proxy, the events service consuming. What a client creates
// through the proxy shows up in its topic, keyed by the entity id, in the contract's shape
// inside the events service's envelope, and the events service logs it once. A movie created
// on either side produces the same event.
import { Ajv } from 'ajv'
import addFormats from 'ajv-formats'
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import { EVENT_KINDS, type EventType } from '../../lib/events/events.ts'
import { deleteTopics, processedLines, startEventsApp, type EventsAppUnderTest } from '../events-service/support.ts'
import { testDatabase } from '../helpers/infra.ts'
import type { TestDatabase } from '../../dev/pg-admin.ts'
import { startService, type ServiceProcess } from '../helpers/processes.ts'
import { ADMIN_TOKEN, flagsFileAt, routesFileWithoutWriter } from '../proxy/proxy-harness.ts'
import { kafkaClient, readTopics, topicsOf, uniqueName, waitFor, type ReadMessage } from './support.ts'

const brokers = () => inject('kafkaBrokers')
const prefix = `${uniqueName('e2e-outbox')}.`
const topics = topicsOf(prefix)
let database: TestDatabase
let monolith: ServiceProcess
let movies: ServiceProcess
let proxy: ServiceProcess
let events: EventsAppUnderTest

beforeAll(async () => {
  database = await testDatabase()
  events = await startEventsApp(brokers().split(','), { KAFKA_TOPIC_PREFIX: prefix })
  // Both services on one database (the shape before catalog-db): the route map without writer stores.
  const env = { DB_CONNECTION_STRING: database.url, KAFKA_BROKERS: brokers(), KAFKA_TOPIC_PREFIX: prefix, KAFKA_LOG_LEVEL: 'error' }
  ;[monolith, movies] = await Promise.all([startService('monolith/server.ts', env), startService('movies-service/server.ts', env)])
  proxy = await startService(
    'proxy/server.ts',
    { MONOLITH_URL: monolith.url, MOVIES_SERVICE_URL: movies.url, EVENTS_SERVICE_URL: `http://127.0.0.1:9`, FLAGS_FILE: flagsFileAt(50), ROUTES_FILE: routesFileWithoutWriter(), ADMIN_TOKEN },
    { readyPath: '/health' },
  )
}, 120_000)
afterAll(async () => {
  await proxy?.stop()
  await monolith?.stop()
  await movies?.stop()
  await events?.app.close()
  await deleteTopics(kafkaClient(brokers().split(','), 'e2e-outbox-cleanup'), Object.values(topics))
  await database?.drop()
})

async function post(path: string, body: unknown, userId = 'client-1'): Promise<{ status: number; json: any; upstream: string | null }> {
  const res = await fetch(`${proxy.url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-user-id': userId },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(10_000),
  })
  return { status: res.status, json: await res.json(), upstream: res.headers.get('x-upstream') }
}

const ajv = new Ajv({ strict: false })
addFormats.default(ajv)
const validPayload = (type: EventType, payload: unknown) => ajv.validate(EVENT_KINDS[type].schema, payload)
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/

describe('creates through the proxy are published by the outbox', () => {
  it('user, movie (from both services), payment and subscription: in their topic, keyed by id, in the contract shape; logged once', { timeout: 120_000 }, async () => {
    const user = await post('/api/users', { username: 'outbox-e2e', email: 'outbox-e2e@example.com' })
    expect(user.status).toBe(201)
    // The proxy splits /api/movies 50/50 by user: find one client of each side.
    const movieBy: Record<string, any> = {}
    for (let i = 0; i < 40 && Object.keys(movieBy).length < 2; i++) {
      const res = await post('/api/movies', { title: `Outbox ${i}`, description: 'A test', rating: 8.5, genres: ['Sci-Fi', 'Action'] }, `viewer-${i}`)
      expect(res.status).toBe(201)
      movieBy[res.upstream!] ??= res.json
    }
    expect(Object.keys(movieBy).sort()).toEqual(['monolith', 'movies-service'])
    const payment = await post('/api/payments', { user_id: user.json.id, amount: 9.99 })
    expect(payment.status).toBe(201)
    const subscription = await post('/api/subscriptions', { user_id: user.json.id, plan_type: 'premium', start_date: '2026-01-01T00:00:00Z', end_date: '2026-02-01T00:00:00Z' })
    expect(subscription.status).toBe(201)

    const find = (m: ReadMessage[], type: string, field: string, id: number) => m.find((x) => x.event?.type === type && x.event.payload[field] === id)
    const wanted = (m: ReadMessage[]) =>
      Boolean(
        find(m, 'user', 'user_id', user.json.id) &&
          find(m, 'movie', 'movie_id', movieBy.monolith.id) &&
          find(m, 'movie', 'movie_id', movieBy['movies-service'].id) &&
          find(m, 'payment', 'payment_id', payment.json.id) &&
          find(m, 'subscription', 'subscription_id', subscription.json.id),
      )
    const messages = await readTopics(kafkaClient(brokers().split(','), 'e2e-outbox-reader'), Object.values(topics), wanted, 60_000)

    const userEvent = find(messages, 'user', 'user_id', user.json.id)!
    expect(userEvent.topic).toBe(topics.user)
    expect(userEvent.key).toBe(String(user.json.id))
    expect(userEvent.event).toMatchObject({ type: 'user', payload: { user_id: user.json.id, username: 'outbox-e2e', email: 'outbox-e2e@example.com', action: 'created' } })
    expect(validPayload('user', userEvent.event!.payload)).toBe(true)

    for (const side of ['monolith', 'movies-service']) {
      const movie = movieBy[side]
      const m = find(messages, 'movie', 'movie_id', movie.id)!
      expect(m.topic).toBe(topics.movie)
      expect(m.key).toBe(String(movie.id))
      // The same event whichever service created the movie: only id and title differ.
      expect(m.event!.payload).toEqual({ movie_id: movie.id, title: movie.title, action: 'created', rating: 8.5, genres: ['Action', 'Sci-Fi'], description: 'A test' })
      expect(validPayload('movie', m.event!.payload)).toBe(true)
    }

    const p = find(messages, 'payment', 'payment_id', payment.json.id)!
    expect([p.topic, p.key]).toEqual([topics.payment, String(payment.json.id)])
    expect(p.event!.payload).toMatchObject({ payment_id: payment.json.id, user_id: user.json.id, amount: 9.99, status: 'completed' })
    expect(validPayload('payment', p.event!.payload)).toBe(true)

    const s = find(messages, 'subscription', 'subscription_id', subscription.json.id)!
    expect([s.topic, s.key]).toEqual([topics.payment, String(subscription.json.id)])
    expect(s.event!.payload).toMatchObject({ subscription_id: subscription.json.id, user_id: user.json.id, plan_type: 'premium', start_date: subscription.json.start_date, end_date: subscription.json.end_date, action: 'created' })
    expect(validPayload('subscription', s.event!.payload)).toBe(true)

    for (const m of [userEvent, p, s]) {
      expect(m.event!.id).toMatch(UUID)
      expect(m.headers).toMatchObject({ 'event-id': m.event!.id, 'event-type': m.event!.type })
      expect(Date.parse(m.event!.timestamp)).not.toBeNaN()
    }
    // The events service consumes these topics as its own and logs each event once.
    const ids = [userEvent, p, s].map((m) => m.event!.id)
    await waitFor('the events service processed them', () => ids.every((id) => processedLines(events.lines).some((l) => l.id === id)), 60_000)
    for (const id of ids) expect(processedLines(events.lines).filter((l) => l.id === id)).toHaveLength(1)
  })
})
