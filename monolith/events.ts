// The monolith's own events, recorded in the outbox inside the transaction that creates the
// row (lib/outbox). Each reads back the row it describes, so the event carries what was
// committed, database defaults (payment status, creation times) included.
import type { Queryable } from '../lib/db/database.ts'
import { recordEvent, rfc3339 } from '../lib/outbox/outbox.ts'

async function row(tx: Queryable, sql: string, id: number): Promise<Record<string, unknown>> {
  const { rows } = await tx.query<Record<string, unknown>>(sql, [id])
  if (!rows[0]) throw new Error(`row ${id} vanished inside its own transaction`)
  return rows[0]
}

/** UserEvent, action "created", timestamp = the user's created_at. */
export async function recordUserCreated(tx: Queryable, userId: number): Promise<void> {
  const user = await row(tx, 'SELECT id, username, email, created_at FROM users WHERE id = $1', userId)
  await recordEvent(tx, 'user', {
    user_id: user.id,
    username: user.username,
    email: user.email,
    action: 'created',
    timestamp: rfc3339(user.created_at),
  })
}

/** PaymentEvent: status as stored, timestamp = the payment's timestamp. */
export async function recordPaymentCreated(tx: Queryable, paymentId: number): Promise<void> {
  const payment = await row(tx, 'SELECT id, user_id, amount::float8 AS amount, status, timestamp, payment_method FROM payments WHERE id = $1', paymentId)
  await recordEvent(tx, 'payment', {
    payment_id: payment.id,
    user_id: payment.user_id,
    amount: payment.amount,
    status: payment.status ?? 'completed',
    timestamp: rfc3339(payment.timestamp),
    method_type: payment.payment_method ?? undefined,
  })
}

/** Subscription event (payment-events, see lib/events/events.ts), timestamp = created_at. */
export async function recordSubscriptionCreated(tx: Queryable, subscriptionId: number): Promise<void> {
  const sub = await row(tx, 'SELECT id, user_id, plan_type, start_date, end_date, created_at FROM subscriptions WHERE id = $1', subscriptionId)
  await recordEvent(tx, 'subscription', {
    subscription_id: sub.id,
    user_id: sub.user_id,
    plan_type: sub.plan_type,
    start_date: rfc3339(sub.start_date),
    end_date: rfc3339(sub.end_date),
    action: 'created',
    timestamp: rfc3339(sub.created_at),
  })
}
