// LISTEN outbox_events on a dedicated PostgreSQL connection: the relay wakes as soon as a
// transaction that wrote events commits (the trigger of 003_outbox.sql notifies). A lost
// connection is re-established with a backoff; meanwhile the relay's poll covers.
import pg from 'pg'
import type { Logger } from '../logger.ts'
import { OUTBOX_CHANNEL } from './outbox.ts'
import type { WakeupSource } from './relay.ts'

export function pgWakeups(connectionString: string, logger: Logger, options: { connectTimeoutMs?: number } = {}): WakeupSource {
  const log = logger.child({ component: 'outbox-listener' })
  let client: pg.Client | undefined
  let stopped = false
  let retryTimer: NodeJS.Timeout | undefined
  let retryMs = 1_000

  function reconnectLater(onWake: () => void): void {
    if (stopped || retryTimer) return
    retryTimer = setTimeout(() => {
      retryTimer = undefined
      void listen(onWake)
    }, retryMs)
    retryTimer.unref()
    retryMs = Math.min(retryMs * 2, 30_000)
  }

  async function listen(onWake: () => void): Promise<void> {
    const c = new pg.Client({ connectionString, connectionTimeoutMillis: options.connectTimeoutMs ?? 2_000, keepAlive: true })
    client = c
    let lost = false
    const onLost = (err?: Error) => {
      if (lost) return
      lost = true
      if (!stopped) log.warn({ err: err?.message }, 'LISTEN connection lost; polling until it is back')
      c.end().catch(() => {})
      reconnectLater(onWake)
    }
    c.on('error', onLost)
    c.on('end', () => onLost())
    c.on('notification', () => onWake())
    try {
      await c.connect()
      await c.query(`LISTEN ${OUTBOX_CHANNEL}`)
      retryMs = 1_000
      // Rows committed while nobody listened are picked up now.
      onWake()
    } catch (err) {
      onLost(err as Error)
    }
  }

  return {
    start(onWake) {
      void listen(onWake)
    },
    async stop() {
      stopped = true
      clearTimeout(retryTimer)
      await client?.end().catch(() => {})
    },
  }
}
