// server.ts as a real process (what `npm run start:events` runs) on the run's Kafka: it serves
// the API over the network, consumes its own events, and on SIGTERM shuts down in order
// (HTTP, producer, consumer group) and exits 0. A bad variable stops it at start, named.
import { spawnSync } from 'node:child_process'
import { afterAll, expect, inject, it } from 'vitest'
import { REPO_ROOT, startService, type ServiceProcess } from '../helpers/processes.ts'
import { deleteTopics, kafkaClient, movieBody, uniqueName, waitFor } from './support.ts'

const brokers = inject('kafkaBrokers')
const kafka = kafkaClient(brokers.split(','), 'events-server-test')
const prefix = `${uniqueName('srv')}.`
const group = uniqueName('events-service')
let service: ServiceProcess | undefined

afterAll(async () => {
  await service?.stop()
  await deleteTopics(kafka, ['movie-events', 'user-events', 'payment-events'].map((t) => prefix + t))
})

it('publishes and consumes over the network, then shuts down gracefully on SIGTERM', { timeout: 90_000 }, async () => {
  service = await startService(
    'events-service/server.ts',
    { KAFKA_BROKERS: brokers, KAFKA_TOPIC_PREFIX: prefix, KAFKA_CONSUMER_GROUP: group, LOG_LEVEL: 'info', KAFKA_LOG_LEVEL: 'error' },
    { readyPath: '/ready' },
  )
  const health = await fetch(`${service.url}/api/events/health`)
  expect(await health.json()).toEqual({ status: true })

  const res = await fetch(`${service.url}/api/events/movie`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(movieBody(42)),
  })
  expect(res.status).toBe(201)
  const { event, partition, offset } = await res.json()
  await waitFor('the service to log the event as processed', () =>
    service!.output().split('\n').some((l) => l.includes('"msg":"event processed"') && l.includes(event.id)),
  )
  const line = JSON.parse(service.output().split('\n').find((l) => l.includes('"msg":"event processed"') && l.includes(event.id))!)
  expect(line).toMatchObject({ service: 'events-service', topic: `${prefix}movie-events`, partition, offset, type: 'movie', id: event.id })

  const code = await service.stop()
  expect(code).toBe(0)
  const out = service.output()
  // Each step's line is there, after "shutting down" (the last lines may reach the pipe out of
  // order when pino flushes at exit, so their relative order is not compared).
  const at = ['shutting down', 'kafka producer closed', 'kafka consumer stopped', 'stopped'].map((m) => out.indexOf(`"msg":"${m}"`))
  expect(at.every((i) => i >= 0)).toBe(true)
  expect(Math.min(...at)).toBe(at[0])

  // The group was left, not abandoned to a session timeout.
  const admin = kafka.admin()
  await admin.connect()
  try {
    const { groups } = await admin.describeGroups([group])
    expect(groups[0]!.state).toBe('Empty')
  } finally {
    await admin.disconnect()
  }
})

it('refuses to start with a bad variable, naming it', () => {
  const result = spawnSync(process.execPath, ['events-service/server.ts'], {
    cwd: REPO_ROOT,
    env: { PATH: process.env.PATH ?? '', KAFKA_SEND_TIMEOUT_MS: 'soon', KAFKA_TOPIC_PARTITIONS: '0' },
    encoding: 'utf8',
    timeout: 30_000,
  })
  expect(result.status).toBe(1)
  expect(result.stderr).toContain('KAFKA_SEND_TIMEOUT_MS must be an integer')
  expect(result.stderr).toContain('KAFKA_TOPIC_PARTITIONS must be between 1 and 10000')
})
