// `npm run kafka -- [--port 9092] [--data-dir DIR] [--heap 512m]`: a local Kafka until Ctrl-C.
// `npm run kafka:warm` (= --warm-only): only download the broker's jars into the cache (CI, first setup).
import { resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { ensureJars, KafkaLaunchError, KAFKA_VERSION, startKafka } from './launcher.ts'

const { values: args } = parseArgs({
  options: {
    port: { type: 'string', default: '9092' },
    'data-dir': { type: 'string' },
    heap: { type: 'string' },
    'warm-only': { type: 'boolean', default: false },
    help: { type: 'boolean', short: 'h', default: false },
  },
})

if (args.help) {
  console.log(`Usage: npm run kafka -- [--port 9092] [--data-dir DIR] [--heap 512m]
       npm run kafka:warm     download the Kafka ${KAFKA_VERSION} jars only
--port 0 picks a free port. Data persists in --data-dir (default .data/kafka) between runs.`)
  process.exit(0)
}

try {
  if (args['warm-only']) {
    const started = Date.now()
    const dir = await ensureJars()
    console.log(`Kafka ${KAFKA_VERSION} jars ready in ${dir} (${((Date.now() - started) / 1000).toFixed(1)}s)`)
  } else {
    await serve()
  }
} catch (err) {
  // Our own errors already say what to do; anything else gets its stack.
  console.error(err instanceof KafkaLaunchError ? `kafka: ${err.message}` : err)
  process.exit(1)
}

async function serve() {
  const port = Number(args.port)
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new KafkaLaunchError(`--port must be 0..65535, got ${args.port}`)
  const dataDir = resolve(args['data-dir'] ?? fileURLToPath(new URL('../../.data/kafka', import.meta.url)))
  const started = Date.now()
  const kafka = await startKafka({
    port,
    dataDir,
    heap: args.heap,
    onExit(code, signal) {
      console.error(`kafka: the broker exited on its own (code ${code}, signal ${signal}); see ${kafka.logFile}`)
      process.exit(1)
    },
  })
  console.log(`Kafka ${KAFKA_VERSION} is up in ${((Date.now() - started) / 1000).toFixed(1)}s (pid ${kafka.pid})
  brokers:  ${kafka.brokers.join(',')}
  data:     ${kafka.dataDir}
  logs:     ${kafka.logFile}
Ctrl-C to stop.`)

  let stopping = false
  const shutdown = async (signal: string) => {
    if (stopping) return
    stopping = true
    console.log(`\n${signal}: stopping Kafka...`)
    await kafka.stop()
    console.log('Kafka stopped.')
    process.exit(0)
  }
  process.on('SIGINT', () => void shutdown('SIGINT'))
  process.on('SIGTERM', () => void shutdown('SIGTERM'))
}
