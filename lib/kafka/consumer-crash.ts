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
