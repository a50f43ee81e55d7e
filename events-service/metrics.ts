// The service's Prometheus metrics, in its own registry: several services may share a process.
import { Counter, Gauge, Histogram, Registry } from 'prom-client'

export type EventsMetrics = ReturnType<typeof createMetrics>

export function createMetrics() {
  const registry = new Registry()
  return {
    registry,
    published: new Counter({
      name: 'events_published_total',
      help: 'POSTed events by topic and outcome: acked (stored, answered 201), failed or timeout (answered 503)',
      labelNames: ['topic', 'outcome'] as const,
      registers: [registry],
    }),
    publishSeconds: new Histogram({
      name: 'events_publish_duration_seconds',
      help: 'Time from accepting an event to the broker ack (or the failure), by topic and outcome',
      labelNames: ['topic', 'outcome'] as const,
      buckets: [0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5],
      registers: [registry],
    }),
    lateAcks: new Counter({
      name: 'events_late_acks_total',
      help: 'Events answered 503 whose send the broker acknowledged afterwards (stored although the client saw an error)',
      labelNames: ['topic'] as const,
      registers: [registry],
    }),
    producerConnected: new Gauge({
      name: 'events_producer_connected',
      help: '1 when the Kafka producer is connected and usable',
      registers: [registry],
    }),
    processed: new Counter({
      name: 'events_processed_total',
      help: 'Events the service\'s own consumer processed (and then committed), by topic',
      labelNames: ['topic'] as const,
      registers: [registry],
    }),
    processingFailures: new Counter({
      name: 'events_processing_failures_total',
      help: 'Consumed messages that could not be processed after every attempt (logged and skipped), by topic',
      labelNames: ['topic'] as const,
      registers: [registry],
    }),
    duplicates: new Counter({
      name: 'events_duplicates_total',
      help: 'Consumed events whose id this process had already processed (logged, not processed again), by topic',
      labelNames: ['topic'] as const,
      registers: [registry],
    }),
  }
}
