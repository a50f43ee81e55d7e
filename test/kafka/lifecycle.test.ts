// The launcher's own promises, on a broker of this file's own: restart() keeps acknowledged data,
// a taken port is named in the error, and nothing is left running or listening afterwards,
// not even when the Node process that started the broker is SIGKILLed.
import { spawn } from 'node:child_process'
import { rmSync } from 'node:fs'
import { createServer, type Server } from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createTopicsWithLeaders } from '../../lib/kafka/topics.ts'
import { startKafka, type RunningKafka } from '../../dev/kafka/launcher.ts'
import { idempotentProducer, isAlive, isListening, kafkaClient, uniqueName, waitFor } from './helpers.ts'

describe('a broker started by this file', () => {
  let broker: RunningKafka

  beforeAll(async () => {
    broker = await startKafka()
  })
  afterAll(async () => {
    await broker?.stop()
    if (broker) rmSync(broker.dataDir, { recursive: true, force: true })
  })

  it('keeps every acknowledged message across restart()', { timeout: 90_000 }, async () => {
    const kafka = kafkaClient(broker.brokers, 'restart-test')
    const topic = uniqueName('durable')
    const admin = kafka.admin()
    await admin.connect()
    await createTopicsWithLeaders(admin, [{ topic, numPartitions: 2 }])
    await admin.disconnect()
    const producer = idempotentProducer(kafka)
    await producer.connect()
    const before = Array.from({ length: 200 }, (_, i) => ({ key: `k${i % 7}`, value: `before-${i}` }))
    for (let i = 0; i < before.length; i += 50) await producer.send({ topic, acks: -1, messages: before.slice(i, i + 50) })
    await producer.disconnect()

    const oldPid = broker.pid
    await broker.restart()
    expect(isAlive(oldPid)).toBe(false)
    expect(broker.pid).not.toBe(oldPid)

    // Still usable for writes, and everything from before is there (read by a brand-new group).
    const after = idempotentProducer(kafka)
    await after.connect()
    await after.send({ topic, acks: -1, messages: [{ key: 'k0', value: 'after-0' }] })
    await after.disconnect()
    const seen: string[] = []
    const consumer = kafka.consumer({ groupId: uniqueName('restart-check'), maxWaitTimeInMs: 250 })
    await consumer.connect()
    await consumer.subscribe({ topic, fromBeginning: true })
    await consumer.run({ eachMessage: async ({ message }) => void seen.push(message.value!.toString()) })
    try {
      await waitFor('all 201 messages after the restart', () => seen.length >= 201)
    } finally {
      await consumer.disconnect()
    }
    expect(seen.sort()).toEqual([...before.map((m) => m.value), 'after-0'].sort())
  })

  it('refuses a port that is already taken, naming it', async () => {
    await expect(startKafka({ port: broker.port })).rejects.toThrow(`port ${broker.port} is already in use`)

    const squatter: Server = createServer()
    await new Promise<void>((ok) => squatter.listen(0, '127.0.0.1', ok))
    const { port } = squatter.address() as { port: number }
    try {
      await expect(startKafka({ port })).rejects.toThrow(new RegExp(`port ${port} is already in use.*another port`))
    } finally {
      squatter.close()
    }
  })

  it('stop() leaves no JVM and no listening port behind', async () => {
    const { pid, port } = broker
    expect(isAlive(pid)).toBe(true)
    expect(await isListening(port)).toBe(true)
    await broker.stop()
    expect(isAlive(pid)).toBe(false) // stop() resolves only once the JVM has exited
    expect(await isListening(port)).toBe(false)
    await broker.stop() // idempotent
  })
})

it('the JVM dies with its Node parent, even on SIGKILL', { timeout: 90_000 }, async () => {
  // A separate Node process starts a broker and reports it; then it is killed without any chance to clean up.
  const script = `
    import { startKafka } from ${JSON.stringify(new URL('../../dev/kafka/launcher.ts', import.meta.url).href)}
    const kafka = await startKafka()
    console.log(JSON.stringify({ pid: kafka.pid, port: kafka.port, dataDir: kafka.dataDir }))
    setInterval(() => {}, 60_000)`
  const parent = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] })
  try {
    const started = await new Promise<{ pid: number; port: number; dataDir: string }>((ok, fail) => {
      let out = ''
      parent.stdout!.on('data', (d) => {
        out += d
        if (out.includes('\n')) ok(JSON.parse(out))
      })
      parent.once('exit', (code) => fail(new Error(`the broker's parent exited early (code ${code})`)))
    })
    expect(isAlive(started.pid)).toBe(true)
    parent.kill('SIGKILL')
    await waitFor(`JVM ${started.pid} to die with its parent`, () => !isAlive(started.pid), 10_000)
    await waitFor(`port ${started.port} to close`, async () => !(await isListening(started.port)), 10_000)
    rmSync(started.dataDir, { recursive: true, force: true })
  } finally {
    parent.kill('SIGKILL')
  }
})
