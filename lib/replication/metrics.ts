// The movie replica's Prometheus metrics, in the service's registry. `origin` is the side that
// wrote the change, so each label value is one direction (legacy → catalog on the movies
// service, catalog → legacy on the monolith; an `echo` is this store's own change coming back).
import { Counter, Gauge, Histogram, type Registry } from 'prom-client'

export type ReplicaMetrics = ReturnType<typeof createReplicaMetrics>

export function createReplicaMetrics(registry: Registry) {
  return {
    events: new Counter({
      name: 'movie_replication_events_total',
      help: 'movie-state messages consumed by this store, by the side that wrote them and the outcome: applied, duplicate (this version is here), stale (a newer one is), echo (this store\'s own change), parked (poison)',
      labelNames: ['origin', 'result'] as const,
      registers: [registry],
    }),
    lag: new Histogram({
      name: 'movie_replication_lag_seconds',
      help: 'From the writing side\'s commit to the change applied here, by the side that wrote it',
      labelNames: ['origin'] as const,
      buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300],
      registers: [registry],
    }),
    behindMessages: new Gauge({
      name: 'movie_replication_behind_messages',
      help: 'movie-state messages on the topic this store has not consumed yet (checked every few seconds; NaN while Kafka cannot be asked)',
      registers: [registry],
    }),
    behindSeconds: new Gauge({
      name: 'movie_replication_behind_seconds',
      help: 'How long this store has been behind the movie-state topic (0 when caught up): the age of its oldest unapplied change, at most. Alerted on',
      registers: [registry],
    }),
    consumerConnected: new Gauge({
      name: 'movie_replication_consumer_connected',
      help: '1 when this store\'s movie-state consumer is running',
      registers: [registry],
    }),
  }
}
