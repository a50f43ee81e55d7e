// POST /api/events/{movie,user,payment}: validate, wrap in an envelope, publish, and answer
// 201 only once the broker has acknowledged the event (acks=all).
import type { FastifyInstance } from 'fastify'
import { errors } from '../lib/errors.ts'
import { methodNotAllowed } from '../lib/http/errors.ts'
import { buildEvent, EVENT_ID_PATTERN, EVENT_KINDS, eventKey, HTTP_EVENT_TYPES, topicName } from '../lib/events/events.ts'
import type { EventsMetrics } from './metrics.ts'
import { PublishError, type Publisher } from '../lib/kafka/publisher.ts'
import { captureTraceContext, startProducerSpans } from '../lib/tracing/messaging.ts'
import type { Tracer } from '@opentelemetry/api'

export interface EventRoutesOptions {
  publisher: Publisher
  metrics: EventsMetrics
  topicPrefix: string
  /** Tracing on (lib/tracing/): the publish is a PRODUCER span in the request's trace, its traceparent in the message. */
  tracer?: Tracer
}

function eventIdFrom(header: string | string[] | undefined): string | undefined {
  if (header === undefined) return undefined
  if (typeof header !== 'string' || !EVENT_ID_PATTERN.test(header)) {
    throw new errors.BAD_IDEMPOTENCY_KEY()
  }
  return header
}

export async function eventRoutes(app: FastifyInstance, opts: EventRoutesOptions): Promise<void> {
  const { publisher, metrics } = opts
  for (const type of HTTP_EVENT_TYPES) {
    const url = `/api/events/${type}`
    const topic = topicName(type, opts.topicPrefix)
    app.post<{ Body: Record<string, unknown> }>(url, { schema: { body: EVENT_KINDS[type].schema } }, async (request, reply) => {
      const event = buildEvent(type, request.body, eventIdFrom(request.headers['idempotency-key']))
      const started = process.hrtime.bigint()
      const observe = (outcome: string) => {
        metrics.published.inc({ topic, outcome })
        metrics.publishSeconds.observe({ topic, outcome }, Number(process.hrtime.bigint() - started) / 1e9)
      }
      // TRACING
      const span = opts.tracer && startProducerSpans(opts.tracer, [{ topic, key: eventKey(event), stored: captureTraceContext() }])
      try {
        const { partition, offset } = await publisher.publish(topic, eventKey(event), event, span?.headers[0])
        span?.end()
        observe('acked')
        request.log.info({ topic, partition, offset, id: event.id, type }, 'event published')
        return reply.code(201).send({ status: 'success', partition, offset, event })
      } catch (err) {
        span?.end(err as Error)
        if (!(err instanceof PublishError)) throw err
        observe(err.kind === 'timeout' ? 'timeout' : 'failed')
        request.log.warn({ topic, id: event.id, err: err.message }, 'event not acknowledged, answering 503')
        throw new errors.EVENT_NOT_ACKNOWLEDGED(err.kind === 'timeout' ? 'no answer in time' : 'Kafka unavailable')
      }
    })
    methodNotAllowed(app, url, ['POST'])
  }
}
