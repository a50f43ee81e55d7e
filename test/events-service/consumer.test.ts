// The service's own consumer on the run's real Kafka: a failing handler or an unreadable
// message does not stop it, a restarted consumer resumes exactly at the committed offsets,
// and shutdown leaves the group.
import { afterAll, describe, expect, inject, it } from 'vitest'
import type { EventEnvelope } from '../../lib/events/events.ts'
import {
  deleteTopics,
  kafkaClient,
  metric,
  movieBody,
  processedLines,
  startEventsApp,
  uniqueName,
  userBody,
  waitFor,
  type EventsAppUnderTest,
} from './support.ts'

const brokers = inject('kafkaBrokers').split(',')
const kafka = kafkaClient(brokers, 'events-consumer-test')
const started: EventsAppUnderTest[] = []

async function start(env: Record<string, string> = {}, deps: Parameters<typeof startEventsApp>[2] = {}) {
  const svc = await startEventsApp(brokers, env, deps)
  started.push(svc)
  return svc
}

afterAll(async () => {
  for (const s of started) await s.app.close().catch(() => {})
  await deleteTopics(kafka, [...new Set(started.flatMap((s) => Object.values(s.topics)))])
})

const postMovie = async (svc: EventsAppUnderTest, movieId: number, extra: Record<string, unknown> = {}) => {
  const res = await svc.app.inject({ method: 'POST', url: '/api/events/movie', payload: movieBody(movieId, extra) })
  expect(res.statusCode).toBe(201)
  return res.json().event as EventEnvelope
}

describe('a handler error', () => {
  it('is retried, then logged with the event and skipped; the consumer goes on with the next events', { timeout: 60_000 }, async () => {
    const attempts = new Map<string, number>()
    const svc = await start(
      { EVENT_HANDLER_ATTEMPTS: '2' },
      {
        onEvent: (event) => {
          attempts.set(event.id, (attempts.get(event.id) ?? 0) + 1)
          if (event.payload.action === 'explode') throw new Error('handler bug')
        },
      },
    )
    const bad = await postMovie(svc, 1, { action: 'explode' })
    const good = await postMovie(svc, 1, { action: 'viewed' })

    await waitFor('the event after the failing one to be processed', () => processedLines(svc.lines).some((l) => l.id === good.id))
    expect(attempts.get(bad.id)).toBe(2)
    const failure = svc.lines.find((l) => l.msg === 'event processing failed, skipped')
    expect(failure).toMatchObject({ level: 50, id: bad.id, topic: svc.topics.movie, err: 'handler bug', event: bad })
    expect(processedLines(svc.lines).some((l) => l.id === bad.id)).toBe(false)
    expect(await metric(svc.app, 'events_processing_failures_total', { topic: svc.topics.movie })).toBe(1)
    expect(await metric(svc.app, 'events_processed_total', { topic: svc.topics.movie })).toBe(1)
  })

  it('an unreadable message in a topic is logged and skipped too', { timeout: 60_000 }, async () => {
    const svc = await start()
    const producer = kafka.producer()
    await producer.connect()
    await producer.send({ topic: svc.topics.user, messages: [{ key: '5', value: 'not json at all' }, { key: '5', value: '{"id": 1}' }] })
    await producer.disconnect()
    const res = await svc.app.inject({ method: 'POST', url: '/api/events/user', payload: userBody(5) })
    expect(res.statusCode).toBe(201)
    const id = res.json().event.id

    await waitFor('the valid event after two unreadable ones', () => processedLines(svc.lines).some((l) => l.id === id))
    const skipped = svc.lines.filter((l) => l.msg === 'unreadable message skipped')
    expect(skipped.map((l) => l.offset)).toEqual([0, 1])
    expect(skipped[0]).toMatchObject({ level: 50, topic: svc.topics.user, value: 'not json at all' })
    expect(await metric(svc.app, 'events_processing_failures_total', { topic: svc.topics.user })).toBe(2)
  })
})

describe('restarting the consumer', () => {
  it('resumes at the committed offsets: nothing committed is processed again, nothing is skipped', { timeout: 120_000 }, async () => {
    const prefix = `${uniqueName('resume')}.`
    const group = uniqueName('events-service')
    const env = { KAFKA_TOPIC_PREFIX: prefix, KAFKA_CONSUMER_GROUP: group }

    // First life: 10 events, processed and committed, then a graceful shutdown.
    const first = await start(env)
    const before: string[] = []
    for (let i = 0; i < 10; i++) before.push((await postMovie(first, 100 + (i % 4))).id)
    await waitFor('the first service to process 10 events', () => processedLines(first.lines).length === 10)
    await first.app.close()

    // The group is left (no member), with an offset committed per partition.
    const admin = kafka.admin()
    await admin.connect()
    try {
      const { groups } = await admin.describeGroups([group])
      expect(groups[0]!.state).toBe('Empty')
      expect(groups[0]!.members).toEqual([])
      const [committed] = await admin.fetchOffsets({ groupId: group, topics: [first.topics.movie] })
      expect(committed!.partitions.reduce((sum, p) => sum + Math.max(0, Number(p.offset)), 0)).toBe(10)
    } finally {
      await admin.disconnect()
    }

    // While no consumer runs, 8 more events arrive (published by an instance without a consumer).
    const publisher = await start({ ...env, KAFKA_CONSUMER_ENABLED: 'false' })
    const during: string[] = []
    for (let i = 0; i < 8; i++) during.push((await postMovie(publisher, 100 + (i % 4))).id)
    await publisher.app.close()

    // Second life, same group: exactly the 8 new ones, each once.
    const second = await start(env)
    await waitFor('the second service to process the 8 new events', () => processedLines(second.lines).length >= 8)
    // Re-processing would happen before the new events of each partition: it would be here by now.
    const processed = processedLines(second.lines).map((l) => l.id)
    expect(processed.sort()).toEqual([...during].sort())
    expect(processed.filter((id) => before.includes(id as string))).toEqual([])
    // New events go on being processed by the second life.
    const after = await postMovie(second, 100)
    await waitFor('an event posted to the second life', () => processedLines(second.lines).some((l) => l.id === after.id))
    expect(processedLines(second.lines)).toHaveLength(9)
  })
})
