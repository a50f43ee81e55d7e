// Small shared pieces for the Kafka tests: bounded polling, process and port checks, clients.
import { readFileSync } from 'node:fs'
import { connect } from 'node:net'
import { Kafka, logLevel, Partitioners, type logCreator, type Producer } from 'kafkajs'

/** The shared polling helper (test/helpers/poll.ts), under the name these tests use. */
export { eventually as waitFor } from '../helpers/poll.ts'

/** True while `pid` is a live process; a zombie (dead, not yet reaped by init) counts as gone. */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
  } catch {
    return false
  }
  try {
    // /proc/<pid>/stat: "pid (comm) STATE ..."; comm may contain spaces, so split after ')'.
    const state = readFileSync(`/proc/${pid}/stat`, 'utf8').split(')').pop()!.trim()[0]
    return state !== 'Z'
  } catch {
    return false
  }
}

/** True if something accepts TCP connections on 127.0.0.1:port. */
export function isListening(port: number): Promise<boolean> {
  return new Promise((done) => {
    const socket = connect(port, '127.0.0.1')
    socket.once('connect', () => {
      socket.destroy()
      done(true)
    })
    socket.once('error', () => done(false))
  })
}

export function kafkaClient(brokers: string[], clientId: string): Kafka {
  // kafkajs logs every error *response* at ERROR, even retriable ones it then retries
  // (REBALANCE_IN_PROGRESS, COORDINATOR_LOAD_IN_PROGRESS), which these tests cause on purpose;
  // those are dropped here, real failures still reject the awaited call.
  const logCreator: logCreator = () => ({ namespace, level, log }) => {
    const retriedResponse = namespace === 'Connection' && log.message.startsWith('Response')
    if (level <= logLevel.ERROR && !retriedResponse) console.error(`kafkajs [${namespace}] ${log.message}`, log.error ?? '')
  }
  return new Kafka({ clientId, brokers, logLevel: logLevel.ERROR, logCreator })
}

/** Idempotent producer: acks from all in-sync replicas, no duplicates or reordering on retry. */
export function idempotentProducer(kafka: Kafka): Producer {
  return kafka.producer({ idempotent: true, maxInFlightRequests: 1, createPartitioner: Partitioners.DefaultPartitioner })
}

export const uniqueName = (prefix: string) => `${prefix}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`
