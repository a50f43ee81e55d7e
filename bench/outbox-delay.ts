// npm run bench:outbox: the outbox's delivery delay, from the moment a client sends
// POST /api/movies to the moment the event can be read from movie-events, at rest and under a
// steady write rate. Not part of npm test. Real PostgreSQL (BENCH_PG_ADMIN_URL, default the
// local postgres) in a throw-away database, a Kafka started with dev/kafka (or KAFKA_BROKERS).
//
//   BENCH_REST_WRITES (default 50)   creates at rest, one every 200 ms
//   BENCH_RATE        (default 200)  writes per second of the loaded run
//   BENCH_LOAD_S      (default 10)   length of the loaded run
//   BENCH_WARMUP_S    (default 10)   the same load first, not measured (JIT, pools, Kafka warm up)
//
// The monolith runs in-process, as server.ts builds it (LISTEN/NOTIFY wake-ups included);
// everything started here is stopped at the end.
import { rmSync } from 'node:fs'
import { setTimeout as sleep } from 'node:timers/promises'
import { Kafka, logLevel } from 'kafkajs'
import { startKafka, type RunningKafka } from '../dev/kafka/launcher.ts'
import { createPgDatabase } from '../lib/db/pg-database.ts'
import { createLogger } from '../lib/logger.ts'
import { pgRelayDeps } from '../lib/outbox/pg-relay.ts'
import { buildApp } from '../monolith/app.ts'
import { loadConfig } from '../monolith/config.ts'
import { createEmptyDatabase } from '../dev/pg-admin.ts'
import { migrate } from '../lib/db/migrate.ts'

const ADMIN_URL = process.env.BENCH_PG_ADMIN_URL ?? 'postgres://postgres:postgres@127.0.0.1:5432/postgres'
const REST_WRITES = Number(process.env.BENCH_REST_WRITES ?? 50)
const RATE = Number(process.env.BENCH_RATE ?? 200)
const LOAD_S = Number(process.env.BENCH_LOAD_S ?? 10)
const WARMUP_S = Number(process.env.BENCH_WARMUP_S ?? 10)
const PREFIX = `bench-${Date.now().toString(36)}.`

const sentAt = new Map<string, number>()
const delays = new Map<string, number>()

function summary(name: string, titles: string[]): void {
  const d = titles.map((t) => delays.get(t)).filter((x): x is number => x !== undefined).sort((a, b) => a - b)
  const q = (p: number) => d[Math.min(d.length - 1, Math.floor(p * d.length))]!.toFixed(1)
  console.log(`${name}: ${d.length}/${titles.length} delivered; create-to-topic ms p50 ${q(0.5)}, p95 ${q(0.95)}, p99 ${q(0.99)}, max ${d.at(-1)!.toFixed(1)}`)
}

/** The relay's share, from the table: commit (created_at) to marked sent, for titles like `pattern`. */
async function relayShare(pattern: string): Promise<string> {
  const { rows } = await db.query<{ p50: number; p95: number; max: number }>(
    `SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY ms) AS p50, percentile_cont(0.95) WITHIN GROUP (ORDER BY ms) AS p95, max(ms) AS max
       FROM (SELECT EXTRACT(EPOCH FROM sent_at - created_at) * 1000 AS ms FROM outbox
              WHERE sent_at IS NOT NULL AND payload::jsonb #>> '{payload,title}' LIKE $1) t`,
    [pattern],
  )
  const r = rows[0]!
  return `row written to marked sent ms p50 ${Number(r.p50).toFixed(1)}, p95 ${Number(r.p95).toFixed(1)}, max ${Number(r.max).toFixed(1)}`
}

let kafka: RunningKafka | undefined
const database = await createEmptyDatabase(ADMIN_URL, 'cinemaabyss_bench')
const db = createPgDatabase({ connectionString: database.url, max: 20 })
try {
  await migrate(db)
  const brokers = process.env.KAFKA_BROKERS?.split(',') ?? (kafka = await startKafka()).brokers
  const logger = createLogger({ level: 'warn', name: 'bench' })
  const config = loadConfig({ KAFKA_BROKERS: brokers.join(','), KAFKA_TOPIC_PREFIX: PREFIX, LOG_LEVEL: 'warn', KAFKA_LOG_LEVEL: 'error' })
  const app = buildApp(config, { db, logger, outbox: pgRelayDeps({ ...config, databaseUrl: database.url }, logger) })
  await app.ready()

  // The reader: a consumer on movie-events that stamps each event when it is fetched.
  const client = new Kafka({ clientId: 'bench-reader', brokers, logLevel: logLevel.NOTHING })
  const consumer = client.consumer({ groupId: `${PREFIX}reader`, maxWaitTimeInMs: 100 })
  const create = (title: string) => {
    sentAt.set(title, performance.now())
    return app.inject({ method: 'POST', url: '/api/movies', payload: { title, description: 'bench', rating: 5 } })
  }
  // One create first: the relay creates the topics, the reader can subscribe.
  await create('warm-up')
  while ((await db.query('SELECT 1 FROM outbox WHERE sent_at IS NULL')).rowCount > 0) await sleep(50)
  await sleep(500)
  await consumer.connect()
  await consumer.subscribe({ topic: `${PREFIX}movie-events`, fromBeginning: true })
  await consumer.run({
    eachMessage: async ({ message }) => {
      const title = JSON.parse(message.value!.toString()).payload.title as string
      const started = sentAt.get(title)
      if (started !== undefined && !delays.has(title)) delays.set(title, performance.now() - started)
    },
  })
  await sleep(3_000) // the group is joined

  const rest = Array.from({ length: REST_WRITES }, (_, i) => `rest-${i}`)
  for (const title of rest) {
    const res = await create(title)
    if (res.statusCode !== 201) throw new Error(`create answered ${res.statusCode}`)
    await sleep(200)
  }
  await sleep(2_000)
  summary(`at rest (${REST_WRITES} creates, one per 200 ms)`, rest)
  console.log(`  at rest: ${await relayShare('rest-%')}`)

  /** Creates at RATE per second for `seconds`, titles `${name}-i`; waits for every answer. */
  async function steadyLoad(name: string, seconds: number) {
    const titles: string[] = []
    const failed = new Set<string>()
    const pending: Array<Promise<unknown>> = []
    const started = performance.now()
    let slowAnswers = 0
    for (let i = 0; i < RATE * seconds; i++) {
      const wait = started + (i * 1000) / RATE - performance.now()
      if (wait > 0) await sleep(wait)
      const title = `${name}-${i}`
      titles.push(title)
      const t0 = performance.now()
      pending.push(
        create(title).then((res) => {
          if (res.statusCode !== 201) failed.add(title)
          if (performance.now() - t0 > 250) slowAnswers++
        }),
      )
    }
    await Promise.all(pending)
    const achieved = (titles.length / ((performance.now() - started) / 1000)).toFixed(0)
    return { titles, failed, slowAnswers, achieved }
  }

  await steadyLoad('warm', WARMUP_S)
  await sleep(3_000)
  const load = await steadyLoad('load', LOAD_S)
  const delivered = load.titles.filter((t) => !load.failed.has(t))
  const deadline = Date.now() + 30_000
  while (delivered.some((t) => !delays.has(t)) && Date.now() < deadline) await sleep(100)
  summary(
    `under load (${load.titles.length} creates at ${RATE}/s for ${LOAD_S} s after ${WARMUP_S} s of warm-up; achieved ${load.achieved}/s, ` +
      `${load.failed.size} not 201, ${load.slowAnswers} answers > 250 ms)`,
    delivered,
  )
  console.log(`  under load: ${await relayShare('load-%')}`)

  await consumer.disconnect()
  await app.close()
} finally {
  await db.close()
  await database.drop()
  if (kafka) {
    await kafka.stop()
    rmSync(kafka.dataDir, { recursive: true, force: true })
  }
}
