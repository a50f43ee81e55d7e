// The event kinds: the three of the contract (api-specification.yaml: MovieEvent, UserEvent,
// PaymentEvent), which the events service's HTTP API accepts, and `subscription`, which only the
// monolith publishes (through its outbox) to the payment domain's topic. Schemas, topics,
// partition keys and the event envelope, shared by the events service and the outbox relay.
import { randomUUID } from 'node:crypto'

export const EVENT_TYPES = ['movie', 'user', 'payment', 'subscription'] as const
export type EventType = (typeof EVENT_TYPES)[number]
/** The kinds a client may POST to the events service (the contract's three). */
export const HTTP_EVENT_TYPES = ['movie', 'user', 'payment'] as const satisfies readonly EventType[]

export interface EventEnvelope {
  id: string
  type: EventType
  /** When the service accepted the event, RFC 3339 UTC. */
  timestamp: string
  /** The request body, restricted to the fields of the contract. */
  payload: Record<string, unknown>
}

const id = { type: 'integer', minimum: -Number.MAX_SAFE_INTEGER, maximum: Number.MAX_SAFE_INTEGER } as const
const text = (maxLength: number) => ({ type: 'string', minLength: 1, maxLength }) as const
const dateTime = { type: 'string', format: 'date-time' } as const

interface EventKind {
  schema: { type: 'object'; required: readonly string[]; properties: Record<string, unknown> }
  /** Topic name before KAFKA_TOPIC_PREFIX. */
  topic: string
  /** The entity whose events must stay in order: it is the Kafka message key. */
  keyField: string
}

export const EVENT_KINDS: Record<EventType, EventKind> = {
  movie: {
    topic: 'movie-events',
    keyField: 'movie_id',
    schema: {
      type: 'object',
      required: ['movie_id', 'title', 'action'],
      properties: {
        movie_id: id,
        title: text(255),
        action: text(100),
        user_id: id,
        rating: { type: 'number', minimum: 0, maximum: 10 },
        genres: { type: 'array', maxItems: 50, items: text(50) },
        description: { type: 'string', maxLength: 100_000 },
      },
    },
  },
  user: {
    topic: 'user-events',
    keyField: 'user_id',
    schema: {
      type: 'object',
      required: ['user_id', 'action', 'timestamp'],
      properties: {
        user_id: id,
        username: { type: 'string', maxLength: 255 },
        email: { type: 'string', maxLength: 255 },
        action: text(100),
        timestamp: dateTime,
      },
    },
  },
  payment: {
    topic: 'payment-events',
    keyField: 'payment_id',
    schema: {
      type: 'object',
      required: ['payment_id', 'user_id', 'amount', 'status', 'timestamp'],
      properties: {
        payment_id: id,
        user_id: id,
        amount: { type: 'number' },
        status: text(50),
        timestamp: dateTime,
        method_type: { type: 'string', maxLength: 50 },
      },
    },
  },
  // Not in the contract: subscriptions belong to the payment domain, so their events share
  // payment-events (consumers tell them apart by the envelope's `type`).
  subscription: {
    topic: 'payment-events',
    keyField: 'subscription_id',
    schema: {
      type: 'object',
      required: ['subscription_id', 'user_id', 'plan_type', 'start_date', 'end_date', 'action', 'timestamp'],
      properties: {
        subscription_id: id,
        user_id: id,
        plan_type: text(50),
        start_date: dateTime,
        end_date: dateTime,
        action: text(100),
        timestamp: dateTime,
      },
    },
  },
}

export function topicName(type: EventType, prefix = ''): string {
  return prefix + EVENT_KINDS[type].topic
}

/** Every topic an event kind goes to, each once. */
export function eventTopics(prefix = ''): string[] {
  return [...new Set(EVENT_TYPES.map((type) => topicName(type, prefix)))]
}

/** Client-chosen event ids (Idempotency-Key): safe in logs and headers. */
export const EVENT_ID_PATTERN = /^[A-Za-z0-9._:-]{1,128}$/

/**
 * The envelope published to Kafka. Unknown body fields are dropped (as the Go service's
 * structs did), so the payload only ever holds contract fields.
 */
export function buildEvent(type: EventType, body: Record<string, unknown>, eventId?: string, now = new Date()): EventEnvelope {
  const payload: Record<string, unknown> = {}
  for (const field of Object.keys(EVENT_KINDS[type].schema.properties)) {
    if (body[field] !== undefined) payload[field] = body[field]
  }
  return {
    id: eventId ?? `${type}-${String(body[EVENT_KINDS[type].keyField])}-${randomUUID()}`,
    type,
    timestamp: now.toISOString(),
    payload,
  }
}

/** The partition key: one entity's events land on one partition, in order. */
export function eventKey(event: EventEnvelope): string {
  return String(event.payload[EVENT_KINDS[event.type].keyField])
}

/** Parses a consumed message value; throws a readable error for anything that is not an envelope. */
export function parseEvent(value: Buffer | null): EventEnvelope {
  if (!value) throw new Error('message has no value')
  const parsed: unknown = JSON.parse(value.toString('utf8'))
  const e = parsed as Partial<EventEnvelope>
  if (
    typeof parsed !== 'object' || parsed === null ||
    typeof e.id !== 'string' || typeof e.timestamp !== 'string' ||
    !EVENT_TYPES.includes(e.type as EventType) ||
    typeof e.payload !== 'object' || e.payload === null
  ) {
    throw new Error('message is not an event envelope {id, type, timestamp, payload}')
  }
  return parsed as EventEnvelope
}
