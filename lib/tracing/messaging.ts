// Trace context through the outbox and Kafka (W3C traceparent/tracestate in message headers):
// the transaction that writes an outbox row stores its context; the relay's PRODUCER span
// continues it and puts it in the message's headers; a consumer's CONSUMER span continues it
// from there. Hand-written rather than @opentelemetry/instrumentation-kafkajs: that one starts
// every producer span of a sendBatch() in the one active context, while a relay batch holds
// rows written by different requests (each its own trace).
//
// With no tracer (tracing off) nothing is created; with no SDK registered the propagator is
// the API's no-op, so capturing the context stores nothing.
import { context, propagation, ROOT_CONTEXT, SpanKind, SpanStatusCode, trace, type Span, type TextMapGetter, type Tracer } from '@opentelemetry/api'
import type { IHeaders } from 'kafkajs'

/** What a row or a message carries: traceparent (and tracestate) as the propagator wrote them. */
export type TraceCarrier = Record<string, string>

/** The active trace context as a carrier to store with an outbox row; null when there is none. */
export function captureTraceContext(): TraceCarrier | null {
  const carrier: TraceCarrier = {}
  propagation.inject(context.active(), carrier)
  return carrier.traceparent ? carrier : null
}

const MESSAGING = { 'messaging.system': 'kafka' } as const

export interface ProducerSpans {
  /** Per message, in order: the headers to add (traceparent of its PRODUCER span). */
  headers: TraceCarrier[]
  /** Ends every span, marked failed when the publish failed. */
  end(error?: Error): void
}

/** One PRODUCER span per message, each the child of the context its row stored (or a root). */
export function startProducerSpans(tracer: Tracer, messages: readonly { topic: string; key: string; stored: TraceCarrier | null }[]): ProducerSpans {
  const spans: Span[] = []
  const headers = messages.map(({ topic, key, stored }) => {
    const parent = stored ? propagation.extract(ROOT_CONTEXT, stored) : ROOT_CONTEXT
    const span = tracer.startSpan(
      `send ${topic}`,
      { kind: SpanKind.PRODUCER, attributes: { ...MESSAGING, 'messaging.operation.type': 'send', 'messaging.destination.name': topic, 'messaging.kafka.message.key': key } },
      parent,
    )
    spans.push(span)
    const carrier: TraceCarrier = {}
    propagation.inject(trace.setSpan(parent, span), carrier)
    return carrier
  })
  return {
    headers,
    end(error) {
      for (const span of spans) {
        if (error) span.setStatus({ code: SpanStatusCode.ERROR, message: error.message })
        span.end()
      }
    },
  }
}

const headerGetter: TextMapGetter<IHeaders | undefined> = {
  keys: (headers) => Object.keys(headers ?? {}),
  get: (headers, key) => {
    const value = headers?.[key]
    const first = Array.isArray(value) ? value[0] : value
    return first === undefined ? undefined : first.toString()
  },
}

export interface ConsumedMessage {
  topic: string
  partition: number
  message: { offset: string; key?: Buffer | null; headers?: IHeaders }
}

/**
 * Runs `process` inside a CONSUMER span continuing the trace the message's headers carry
 * (a new trace when they carry none); the span ends when it settles, marked failed if it
 * throws. With no tracer, just runs it. For every Kafka consumer (events service, replicas).
 */
export function withConsumerSpan<T>(tracer: Tracer | undefined, consumed: ConsumedMessage, process: () => Promise<T>): Promise<T> {
  return withConsumerSpans(tracer, [consumed], process)
}

/**
 * The same for messages processed together (a replica applies a chunk of a batch in one
 * transaction): one CONSUMER span per message, each continuing its own message's trace, all
 * covering `process`. With one message, `process` runs in its span (its database spans and log
 * lines belong to it); with several, in none of them (the work is no single trace's).
 */
export async function withConsumerSpans<T>(tracer: Tracer | undefined, messages: readonly ConsumedMessage[], process: () => Promise<T>): Promise<T> {
  if (!tracer || messages.length === 0) return process()
  const started = messages.map((consumed) => {
    const parent = propagation.extract(ROOT_CONTEXT, consumed.message.headers, headerGetter)
    const span = tracer.startSpan(
      `process ${consumed.topic}`,
      {
        kind: SpanKind.CONSUMER,
        attributes: {
          ...MESSAGING,
          'messaging.operation.type': 'process',
          'messaging.destination.name': consumed.topic,
          'messaging.destination.partition.id': String(consumed.partition),
          'messaging.kafka.offset': Number(consumed.message.offset),
          ...(consumed.message.key ? { 'messaging.kafka.message.key': consumed.message.key.toString() } : {}),
        },
      },
      parent,
    )
    return { parent, span }
  })
  try {
    return started.length === 1 ? await context.with(trace.setSpan(started[0].parent, started[0].span), process) : await process()
  } catch (error) {
    for (const { span } of started) span.setStatus({ code: SpanStatusCode.ERROR, message: (error as Error).message })
    throw error
  } finally {
    for (const { span } of started) span.end()
  }
}
