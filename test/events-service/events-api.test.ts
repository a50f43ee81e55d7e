// The events service against the run's real Kafka: each endpoint stores its event (read back
// by an independent consumer) and the service's own consumer processes it; keyed ordering;
// validation; health, readiness and metrics.
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import {
  deleteTopics,
  kafkaClient,
  metric,
  movieBody,
  paymentBody,
  processedLines,
  readTopics,
  startEventsApp,
  userBody,
  waitFor,
  type EventsAppUnderTest,
} from './support.ts'

const brokers = inject('kafkaBrokers').split(',')
const kafka = kafkaClient(brokers, 'events-api-test')
let svc: EventsAppUnderTest

beforeAll(async () => {
  svc = await startEventsApp(brokers)
})
afterAll(async () => {
  await svc?.app.close()
  if (svc) await deleteTopics(kafka, Object.values(svc.topics))
})

const post = (type: string, body: unknown, headers: Record<string, string> = {}) =>
  svc.app.inject({ method: 'POST', url: `/api/events/${type}`, payload: body as object, headers })

describe('health, readiness, metrics', () => {
  it('answers {"status":true} on /api/events/health and /health, and is ready once the producer is connected', async () => {
    for (const url of ['/api/events/health', '/health', '/ready']) {
      const res = await svc.app.inject({ method: 'GET', url })
      expect(res.statusCode, url).toBe(200)
      expect(res.json()).toEqual({ status: true })
    }
  })

  it('serves Prometheus text on /metrics', async () => {
    const res = await svc.app.inject({ method: 'GET', url: '/metrics' })
    expect(res.statusCode).toBe(200)
    expect(res.headers['content-type']).toMatch(/^text\/plain/)
    expect(res.body).toContain('# TYPE events_published_total counter')
    expect(res.body).toContain('# TYPE events_publish_duration_seconds histogram')
    expect(res.body).toContain('# TYPE events_processed_total counter')
    expect(res.body).toContain('events_producer_connected 1')
  })
})

describe('POST /api/events/{movie,user,payment}', () => {
  const cases = [
    { type: 'movie', topic: () => svc.topics.movie, body: movieBody(101, { user_id: 7, rating: 8.5, genres: ['Sci-Fi'], description: 'dreams' }), key: '101' },
    { type: 'user', topic: () => svc.topics.user, body: userBody(202, { username: 'john', email: 'john@example.com' }), key: '202' },
    { type: 'payment', topic: () => svc.topics.payment, body: paymentBody(303, { method_type: 'card' }), key: '303' },
  ] as const

  it('answers 201 with partition and offset only once stored: each event is read back from its topic and processed by the service', { timeout: 60_000 }, async () => {
    const answered = [] as Array<(typeof cases)[number] & { body: any }>
    for (const c of cases) {
      const res = await post(c.type, c.body)
      expect(res.statusCode, c.type).toBe(201)
      const body = res.json()
      expect(body).toMatchObject({ status: 'success', event: { type: c.type, payload: c.body } })
      expect(Number.isInteger(body.partition)).toBe(true)
      expect(Number.isInteger(body.offset)).toBe(true)
      expect(body.event.id).toMatch(new RegExp(`^${c.type}-${c.key}-[0-9a-f-]{36}$`))
      expect(new Date(body.event.timestamp).toISOString()).toBe(body.event.timestamp)
      expect(Object.keys(body.event).sort()).toEqual(['id', 'payload', 'timestamp', 'type'])
      answered.push({ ...c, body })
    }

    // An independent consumer finds each event at the partition and offset the 201 named.
    const ids = new Set(answered.map((a) => a.body.event.id))
    const read = await readTopics(kafka, Object.values(svc.topics), (m) => m.filter((x) => ids.has(x.event?.id ?? '')).length === ids.size)
    for (const a of answered) {
      const found = read.filter((m) => m.event?.id === a.body.event.id)
      expect(found, a.type).toHaveLength(1)
      expect(found[0]).toMatchObject({ topic: a.topic(), partition: a.body.partition, offset: a.body.offset, key: a.key })
      expect(found[0]!.event).toEqual(a.body.event)
      expect(found[0]!.headers).toMatchObject({ 'event-id': a.body.event.id, 'event-type': a.type })
    }

    // The service's own consumer processed (logged and counted) each of them.
    await waitFor('the service to process the three events', () => processedLines(svc.lines).filter((l) => ids.has(l.id as string)).length === 3)
    for (const a of answered) {
      const line = processedLines(svc.lines).find((l) => l.id === a.body.event.id)
      expect(line).toMatchObject({ level: 30, topic: a.topic(), partition: a.body.partition, offset: a.body.offset, type: a.type, key: a.key, group: svc.group })
      expect(await metric(svc.app, 'events_processed_total', { topic: a.topic() })).toBeGreaterThanOrEqual(1)
      expect(await metric(svc.app, 'events_published_total', { topic: a.topic(), outcome: 'acked' })).toBeGreaterThanOrEqual(1)
    }
  })

  it('keeps one entity on one partition, in order; other entities spread over the partitions', { timeout: 60_000 }, async () => {
    const sent: Array<{ movie: number; seq: number; partition: number; offset: number; id: string }> = []
    for (let seq = 0; seq < 12; seq++) {
      for (const movie of [501, 502, 503, 504]) {
        const res = await post('movie', movieBody(movie, { action: `step-${seq}` }))
        expect(res.statusCode).toBe(201)
        const { partition, offset, event } = res.json()
        sent.push({ movie, seq, partition, offset, id: event.id })
      }
    }
    for (const movie of [501, 502, 503, 504]) {
      const mine = sent.filter((s) => s.movie === movie)
      expect(new Set(mine.map((s) => s.partition)).size, `movie ${movie}`).toBe(1)
      const offsets = mine.map((s) => s.offset)
      expect(offsets).toEqual([...offsets].sort((a, b) => a - b))
      expect(new Set(offsets).size).toBe(offsets.length)
    }
    // 3 partitions by default; four keys do not all hash to one of them.
    expect(new Set(sent.map((s) => s.partition)).size).toBeGreaterThan(1)

    // The service's consumer sees each entity's events in the order they were sent.
    const ids = new Set(sent.map((s) => s.id))
    await waitFor('the service to process all 48 events', () => processedLines(svc.lines).filter((l) => ids.has(l.id as string)).length === 48)
    for (const movie of [501, 502, 503, 504]) {
      const order = processedLines(svc.lines).filter((l) => l.key === String(movie) && ids.has(l.id as string)).map((l) => l.id)
      expect(order).toEqual(sent.filter((s) => s.movie === movie).map((s) => s.id))
    }
  })

  it('gives concurrent POSTs of one entity distinct offsets on its partition', async () => {
    const results = await Promise.all(Array.from({ length: 20 }, (_, i) => post('payment', paymentBody(777, { status: `s${i}` }))))
    expect(results.map((r) => r.statusCode)).toEqual(Array(20).fill(201))
    const bodies = results.map((r) => r.json())
    expect(new Set(bodies.map((b) => b.partition)).size).toBe(1)
    expect(new Set(bodies.map((b) => b.offset)).size).toBe(20)
  })

  it('uses the Idempotency-Key header as the event id, and rejects a malformed one', async () => {
    const key = `client-key-${Date.now()}`
    const ok = await post('user', userBody(9), { 'idempotency-key': key })
    expect(ok.statusCode).toBe(201)
    expect(ok.json().event.id).toBe(key)
    const bad = await post('user', userBody(9), { 'idempotency-key': 'has spaces and ünïcode' })
    expect(bad.statusCode).toBe(400)
    expect(bad.json().error).toMatch(/Idempotency-Key/)
  })

  it('keeps only contract fields in the payload', async () => {
    const res = await post('movie', movieBody(9, { injected: 'x', genres: [] }))
    expect(res.statusCode).toBe(201)
    expect(res.json().event.payload).toEqual({ movie_id: 9, title: 'Inception', action: 'viewed', genres: [] })
  })

  it('answers 405 with Allow for other methods', async () => {
    const res = await svc.app.inject({ method: 'GET', url: '/api/events/movie' })
    expect(res.statusCode).toBe(405)
    expect(res.headers.allow).toBe('POST')
    expect(res.json()).toHaveProperty('error')
  })
})

describe('validation: 400 naming the field, nothing published', () => {
  const required = {
    movie: { body: movieBody(1), fields: { movie_id: 'x', title: 5, action: true } },
    user: { body: userBody(1), fields: { user_id: 1.5, action: null, timestamp: 'yesterday' } },
    payment: { body: paymentBody(1), fields: { payment_id: '1', user_id: [], amount: '9.99', status: {}, timestamp: '2025-13-45T99:00:00Z' } },
  } as const
  const optional = {
    movie: { user_id: 'me', rating: 'high', genres: 'Drama', description: 3 },
    user: { username: 1, email: false },
    payment: { method_type: 7 },
  } as const

  for (const [type, { body, fields }] of Object.entries(required)) {
    for (const [field, wrong] of Object.entries(fields)) {
      it(`${type}: missing ${field}, then ${field}=${JSON.stringify(wrong)}`, async () => {
        const published = await metric(svc.app, 'events_published_total')
        const { [field]: _dropped, ...missing } = body as Record<string, unknown>
        const res1 = await post(type, missing)
        expect(res1.statusCode).toBe(400)
        expect(res1.json().error).toContain(field)
        const res2 = await post(type, { ...body, [field]: wrong })
        expect(res2.statusCode).toBe(400)
        expect(res2.json().error).toContain(field)
        expect(await metric(svc.app, 'events_published_total')).toBe(published)
      })
    }
  }

  for (const [type, fields] of Object.entries(optional)) {
    for (const [field, wrong] of Object.entries(fields)) {
      it(`${type}: optional ${field}=${JSON.stringify(wrong)}`, async () => {
        const res = await post(type, { ...required[type as keyof typeof required].body, [field]: wrong })
        expect(res.statusCode).toBe(400)
        expect(res.json().error).toContain(field)
      })
    }
  }

  it('rejects garbage JSON, an empty body, a JSON array and a non-JSON content type', async () => {
    const garbage = await svc.app.inject({ method: 'POST', url: '/api/events/movie', headers: { 'content-type': 'application/json' }, payload: '{"movie_id": 1, tit' })
    expect(garbage.statusCode).toBe(400)
    expect(garbage.json()).toHaveProperty('error')
    const empty = await svc.app.inject({ method: 'POST', url: '/api/events/user', headers: { 'content-type': 'application/json' }, payload: '' })
    expect(empty.statusCode).toBe(400)
    const array = await post('payment', [paymentBody(1)])
    expect(array.statusCode).toBe(400)
    expect(array.json().error).toMatch(/object/)
    const text = await svc.app.inject({ method: 'POST', url: '/api/events/movie', headers: { 'content-type': 'text/plain' }, payload: 'hello' })
    expect(text.statusCode).toBe(415)
  })
})
