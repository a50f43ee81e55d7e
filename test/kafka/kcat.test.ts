// An independent client (kcat, on librdkafka) sees what kafkajs wrote: the broker speaks plain
// Kafka protocol, not something only kafkajs understands.
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import { afterAll, expect, inject, it } from 'vitest'
import { createTopicsWithLeaders } from '../../lib/kafka/topics.ts'
import { idempotentProducer, kafkaClient, uniqueName } from './helpers.ts'

const exec = promisify(execFile)
const brokers = inject('kafkaBrokers')
const kafka = kafkaClient(brokers.split(','), 'kcat-test')
const topic = uniqueName('kcat')
const admin = kafka.admin()
const producer = idempotentProducer(kafka)

async function kcat(...args: string[]): Promise<string> {
  try {
    const { stdout } = await exec('kcat', ['-b', brokers, ...args], { timeout: 30_000 })
    return stdout
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new Error('kcat is not installed: apt-get install -y kcat', { cause: err })
    throw err
  }
}

afterAll(async () => {
  await producer.disconnect().catch(() => {})
  await admin.deleteTopics({ topics: [topic] }).catch(() => {})
  await admin.disconnect().catch(() => {})
})

it('kcat lists the topic and consumes what kafkajs produced', async () => {
  await admin.connect()
  await createTopicsWithLeaders(admin, [{ topic, numPartitions: 2 }])
  await producer.connect()
  const sent = Array.from({ length: 50 }, (_, i) => ({ key: `k${i % 5}`, value: `hello ${i}` }))
  await producer.send({ topic, acks: -1, messages: sent })

  const metadata = JSON.parse(await kcat('-L', '-J'))
  const listed = metadata.topics.find((t: { topic: string }) => t.topic === topic)
  expect(listed?.partitions).toHaveLength(2)
  expect(metadata.brokers).toEqual([expect.objectContaining({ id: 1, name: brokers })])

  // -e: exit at the end of every partition; -J: one JSON object per message.
  const lines = (await kcat('-C', '-t', topic, '-o', 'beginning', '-e', '-q', '-J')).trim().split('\n')
  const consumed = lines.map((line) => JSON.parse(line) as { key: string; payload: string; partition: number })
  expect(consumed.map((m) => `${m.key}=${m.payload}`).sort()).toEqual(sent.map((m) => `${m.key}=${m.value}`).sort())
  expect(new Set(consumed.map((m) => m.partition))).toEqual(new Set([0, 1]))
})
