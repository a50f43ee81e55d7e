// `npm start`'s progress lines: one per step as it happens, with the time since the command
// started, so a first run (Kafka's jars downloading, PGlite migrating) never looks stuck.
//   0.9 s  PostgreSQL: starting embedded PGlite…
import type { KafkaProgress } from '../kafka/launcher.ts'

export type Progress = (message: string) => void

export function createProgress(write: (line: string) => void = console.log, elapsedSeconds = () => process.uptime()): Progress {
  return (message) => write(`${elapsedSeconds().toFixed(1).padStart(6)} s  ${message}`)
}

const megabytes = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(0)} MB`

/** What the embedded Kafka's launcher reports, in words. */
export function describeKafkaStep(event: KafkaProgress): string {
  switch (event.step) {
    case 'jars-cached':
      return `Kafka jars: cached (${event.dir})`
    case 'jars-downloading':
      return 'Kafka jars: downloading from Maven Central with mvn (first run only)…'
    case 'jars-downloaded':
      return `Kafka jars: downloaded ${megabytes(event.bytes)} (${event.jars} jars) into ${event.dir}`
    case 'broker-starting':
      return `Kafka: broker starting on 127.0.0.1:${event.port}…`
    case 'broker-up':
      return `Kafka: broker up on 127.0.0.1:${event.port}`
  }
}
