// The kafkajs log adapter (lib/kafka/kafka-client.ts) with a real kafkajs client against a port
// nothing listens on: each refused connect attempt is logged at info, not warn — the caller
// reports the outcome (here, the rejected connect) itself.
import { createServer } from 'node:net'
import { expect, it } from 'vitest'
import { createKafkaClient } from '../../lib/kafka/kafka-client.ts'
import { captureLogs } from '../helpers/logs.ts'

async function closedPort(): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as { port: number }
  await new Promise((resolve) => server.close(resolve))
  return port
}

it('logs each refused connect attempt at info, never at warn', async () => {
  const { logger, lines } = captureLogs('debug')
  const kafka = createKafkaClient({ clientId: 'log-test', brokers: [`127.0.0.1:${await closedPort()}`], connectionTimeoutMs: 500, requestTimeoutMs: 500, logLevel: 'info' }, logger)
  const admin = kafka.admin()
  await expect(admin.connect()).rejects.toThrow(/ECONNREFUSED|Connection error/)
  const attempts = lines.filter((l) => /^(Connection error|Failed to connect to seed broker)/.test(String(l.msg)))
  expect(attempts.length).toBeGreaterThan(0)
  expect(attempts.every((l) => l.level === 30)).toBe(true)
  expect(lines.filter((l) => Number(l.level) >= 40)).toEqual([])
})
