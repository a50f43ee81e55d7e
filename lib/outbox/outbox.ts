// Writing to the outbox: called inside the transaction that writes the entity, so the event
// exists exactly when the row does (a rollback takes both away). Publishing is the relay's job.
import { randomUUID } from 'node:crypto'
import type { Queryable } from '../db/database.ts'
import { buildEvent, EVENT_KINDS, eventKey, type EventEnvelope, type EventType } from '../events/events.ts'
import { captureTraceContext } from '../tracing/messaging.ts'

/** The LISTEN/NOTIFY channel the outbox trigger notifies on commit (003_outbox.sql). */
export const OUTBOX_CHANNEL = 'outbox_events'

/** One message for the relay: the envelope is published as the value, `key` as the message key. */
export interface OutboxMessage {
  /** The envelope's id (a UUID): the row's id and the `event-id` header. */
  id: string
  /** The envelope's type: the `event-type` header. */
  aggregateType: string
  key: string
  /** Topic without KAFKA_TOPIC_PREFIX. */
  topic: string
  envelope: { id: string; type: string; timestamp: string; payload: unknown }
  /** Published only once every earlier row is sent (a writer handover follows every change before it). */
  barrier?: boolean
}

/**
 * Inserts `message` in `tx`'s transaction: the relay publishes it once that commits. The row
 * keeps the active trace context (the request's), which the relay's publish continues.
 */
export async function recordOutboxMessage(tx: Queryable, message: OutboxMessage): Promise<void> {
  const traceContext = captureTraceContext()
  await tx.query('INSERT INTO outbox (id, aggregate_type, aggregate_id, topic, payload, trace_context, barrier) VALUES ($1, $2, $3, $4, $5::json, $6::jsonb, $7)', [
    message.id,
    message.aggregateType,
    message.key,
    message.topic,
    JSON.stringify(message.envelope),
    traceContext && JSON.stringify(traceContext),
    message.barrier === true,
  ])
}

/** Records the event in `tx`'s transaction; the envelope id is a fresh UUID, the outbox row's id. */
export async function recordEvent(tx: Queryable, type: EventType, payload: Record<string, unknown>): Promise<EventEnvelope> {
  const event = buildEvent(type, payload, randomUUID())
  await recordOutboxMessage(tx, { id: event.id, aggregateType: type, key: eventKey(event), topic: EVENT_KINDS[type].topic, envelope: event })
  return event
}

/**
 * A database timestamp as RFC 3339 UTC, as events carry them. Both drivers already hand
 * timestamptz back formatted like the legacy printed it (lib/db/timestamptz.ts): kept as is,
 * microseconds included; a Date (from a caller's own value) is formatted here.
 */
export function rfc3339(value: unknown): string {
  if (typeof value === 'string') return value
  const date = value instanceof Date ? value : new Date(String(value))
  if (Number.isNaN(date.getTime())) throw new Error(`not a timestamp: ${String(value)}`)
  return date.toISOString()
}
