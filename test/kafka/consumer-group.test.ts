// Kafka semantics the services rely on, checked with kafkajs over TCP against the run's real broker:
// keyed ordering, a consumer group sharing partitions, failover, and resuming at committed offsets.
import { afterAll, expect, inject, it } from 'vitest'
import { createTopicsWithLeaders } from '../../lib/kafka/topics.ts'
import type { Consumer } from 'kafkajs'
import { idempotentProducer, kafkaClient, uniqueName, waitFor } from './helpers.ts'

const kafka = kafkaClient(inject('kafkaBrokers').split(','), 'consumer-group-test')
const topic = uniqueName('orders')
const groupId = uniqueName('group')
const admin = kafka.admin()
const producer = idempotentProducer(kafka)
const consumers: Consumer[] = []

interface Received {
  consumer: string
  id: string
  key: string
  seq: number
  partition: number
  offset: number
}
const received: Received[] = []
/** Each consumer's latest assignment of `topic`, from its GROUP_JOIN events. */
const assignments = new Map<string, number[]>()

async function startConsumer(name: string): Promise<Consumer> {
  // kafkajs heartbeats (and so notices rebalances) and stops only between fetches, which
  // long-poll for maxWaitTimeInMs (5s by default): short polls keep joins and leaves quick.
  const consumer = kafka.consumer({ groupId, heartbeatInterval: 500, sessionTimeout: 10_000, maxWaitTimeInMs: 250 })
  consumers.push(consumer)
  consumer.on(consumer.events.GROUP_JOIN, (e) => assignments.set(name, [...(e.payload.memberAssignment[topic] ?? [])].sort()))
  await consumer.connect()
  // fromBeginning only applies where the group has no committed offset yet.
  await consumer.subscribe({ topic, fromBeginning: true })
  await consumer.run({
    eachMessage: async ({ partition, message }) => {
      const { id, key, seq } = JSON.parse(message.value!.toString())
      expect(message.key!.toString()).toBe(key)
      received.push({ consumer: name, id, key, seq, partition, offset: Number(message.offset) })
    },
  })
  return consumer
}

async function leave(consumer: Consumer, name: string) {
  await consumer.disconnect() // commits what it processed, then leaves the group
  assignments.delete(name)
}

const idsOf = (name: string) => received.filter((r) => r.consumer === name).map((r) => r.id)

afterAll(async () => {
  for (const c of consumers) await c.disconnect().catch(() => {})
  await producer.disconnect().catch(() => {})
  await admin.deleteTopics({ topics: [topic] }).catch(() => {})
  await admin.disconnect().catch(() => {})
})

it('shares a 3-partition topic in a group, fails over, and resumes at committed offsets', { timeout: 120_000 }, async () => {
  await admin.connect()
  expect(await createTopicsWithLeaders(admin, [{ topic, numPartitions: 3 }])).toBe(true)
  await producer.connect()

  // 1. Two consumers split the three partitions between them.
  const a = await startConsumer('a')
  const b = await startConsumer('b')
  await waitFor('a and b to split partitions 0,1,2', () => {
    const pa = assignments.get('a') ?? []
    const pb = assignments.get('b') ?? []
    return pa.length > 0 && pb.length > 0 && [...pa, ...pb].sort().join() === '0,1,2'
  })

  // 2. 1,000 keyed messages, acknowledged by the broker (acks -1) in 10 batches.
  const keys = Array.from({ length: 20 }, (_, i) => `key-${i}`)
  const nextSeq = new Map(keys.map((k) => [k, 0]))
  const message = (batch: string, i: number, key = keys[i % keys.length]) => {
    const seq = nextSeq.get(key)!
    nextSeq.set(key, seq + 1)
    return { key, value: JSON.stringify({ id: `${batch}-${i}`, key, seq }) }
  }
  for (let batch = 0; batch < 10; batch++) {
    const messages = Array.from({ length: 100 }, (_, i) => message('first', batch * 100 + i))
    await producer.send({ topic, acks: -1, messages })
  }
  await waitFor('1,000 messages across the group', () => received.length >= 1000)

  const ids = received.map((r) => r.id)
  expect(new Set(ids).size).toBe(1000) // every message...
  expect(ids.length).toBe(1000) // ...exactly once
  expect(new Set(received.map((r) => r.partition))).toEqual(new Set([0, 1, 2]))
  expect(idsOf('a').length).toBeGreaterThan(0)
  expect(idsOf('b').length).toBeGreaterThan(0)
  for (const key of keys) {
    const forKey = received.filter((r) => r.key === key)
    expect(forKey.map((r) => r.seq)).toEqual(forKey.map((_, i) => i)) // in order per key
    expect(new Set(forKey.map((r) => r.partition)).size).toBe(1) // a key lives on one partition
  }

  // 3. b leaves: a takes over all partitions and gets new messages on each of them.
  await leave(b, 'b')
  await waitFor('a to own partitions 0,1,2', () => assignments.get('a')?.join() === '0,1,2')
  const second = Array.from({ length: 30 }, (_, i) => ({ partition: i % 3, ...message('second', i) }))
  await producer.send({ topic, acks: -1, messages: second })
  await waitFor('a to receive the second batch', () => idsOf('a').filter((id) => id.startsWith('second-')).length >= 30)
  const secondSeen = received.filter((r) => r.id.startsWith('second-'))
  expect(secondSeen.every((r) => r.consumer === 'a')).toBe(true)
  expect(new Set(secondSeen.map((r) => r.partition))).toEqual(new Set([0, 1, 2]))
  expect(new Set(received.map((r) => r.id)).size).toBe(received.length) // still no duplicates

  // 4. a leaves too; the group's committed offsets are the end of every partition.
  await leave(a, 'a')
  const ends = await admin.fetchTopicOffsets(topic)
  const [committed] = await admin.fetchOffsets({ groupId, topics: [topic] })
  const byPartition = (list: { partition: number; offset: string }[]) =>
    Object.fromEntries(list.map((p) => [p.partition, p.offset]))
  expect(byPartition(committed.partitions)).toEqual(byPartition(ends))

  // 5. Messages produced while nobody listens; a new member resumes at the committed offsets,
  //    so it gets exactly these, none of the 1,030 already committed (despite fromBeginning).
  const third = Array.from({ length: 30 }, (_, i) => ({ partition: i % 3, ...message('third', i) }))
  await producer.send({ topic, acks: -1, messages: third })
  await startConsumer('c')
  await waitFor('c to receive the third batch', () => idsOf('c').length >= 30)
  expect(idsOf('c').sort()).toEqual(third.map((m) => JSON.parse(m.value).id).sort())
  const firstOffsetOfC = received.filter((r) => r.consumer === 'c').reduce<Record<number, number>>((acc, r) => {
    acc[r.partition] = Math.min(acc[r.partition] ?? Infinity, r.offset)
    return acc
  }, {})
  expect(Object.fromEntries(Object.entries(firstOffsetOfC).map(([p, o]) => [p, String(o)]))).toEqual(byPartition(committed.partitions))
})
