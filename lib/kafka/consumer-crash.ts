// When a kafkajs consumer's run is over: kafkajs restarts the consumer itself after retriable
// errors (logged, below warn while a fresh broker's coordinator starts); any other crash ends the
// run, and the caller recreates the consumer. `end()` ends it too (stop()).
import type { Consumer } from 'kafkajs'
import type { Logger } from '../logger.ts'
import { COORDINATOR_STARTING } from './kafka-client.ts'

export function untilCrash(consumer: Consumer, logger: Logger, what = 'kafka consumer'): { ended: Promise<void>; end: () => void } {
  let end!: () => void
  const ended = new Promise<void>((resolve) => {
    end = resolve
    consumer.on(consumer.events.CRASH, ({ payload }) => {
      if (!payload.restart) {
        logger.error({ err: payload.error.message }, `${what} crashed, recreating it`)
        resolve()
      } else {
        // Retried at once; at start-up (a fresh broker's coordinator) not worth a warning.
        const level = COORDINATOR_STARTING.test(payload.error.message) ? 'info' : 'warn'
        logger[level]({ err: payload.error.message }, `${what} restarting after an error`)
      }
    })
  })
  return { ended, end }
}

export interface ConsumerRestartOptions {
  /** True once the owner is stopping: no further run starts. */
  stopping: () => boolean
  logger: Logger
  what: string
}

/**
 * Runs `runOnce` (connect, subscribe, run until the consumer is over) again and again until
 * stopped: after a failed start or a crash it waits 0.5 s, doubling up to 10 s (back to 0.5 s
 * after a run that started), then runs it again. `wake()` ends a wait at once (stop()).
 */
export function keepConsumerRunning(runOnce: () => Promise<void>, options: ConsumerRestartOptions): { loop: Promise<void>; wake: () => void } {
  let wake: () => void = () => {}
  const loop = (async () => {
    let backoffMs = 500
    while (!options.stopping()) {
      try {
        await runOnce()
        backoffMs = 500
      } catch (err) {
        if (options.stopping()) break
        options.logger.warn({ err: (err as Error).message, retryInMs: backoffMs }, `${options.what} cannot run yet, retrying`)
      }
      if (options.stopping()) break
      await new Promise<void>((resolve) => {
        wake = resolve
        setTimeout(resolve, backoffMs).unref()
      })
      backoffMs = Math.min(backoffMs * 2, 10_000)
    }
  })()
  return { loop, wake: () => wake() }
}
