import type { FastifyInstance } from 'fastify'
import type { Database } from '../../lib/db/database.ts'
import type { ContractRules } from '../../lib/contract/rules.ts'
import { errors } from '../../lib/errors.ts'
import { methodNotAllowed } from '../../lib/http/errors.ts'
import { optionalIntParam } from '../../lib/http/query.ts'
import { recordSubscriptionCreated } from '../events.ts'

interface SubscriptionInput {
  user_id: number
  plan_type: string
  start_date: string
  end_date: string
}

// What the contract (SubscriptionInput) requires, and the columns' limits where the legacy answered
// 500. Dates in any order and an empty plan_type are rules, observed, not refused.
const subscriptionInputSchema = {
  type: 'object',
  required: ['user_id', 'plan_type', 'start_date', 'end_date'],
  properties: {
    user_id: { type: 'integer', minimum: -2_147_483_648, maximum: 2_147_483_647 },
    plan_type: { type: 'string', maxLength: 50 },
    start_date: { type: 'string', format: 'date-time' },
    end_date: { type: 'string', format: 'date-time' },
  },
} as const

const COLUMNS = 'id, user_id, plan_type, start_date, end_date'

export async function subscriptionRoutes(app: FastifyInstance, opts: { db: Database; rules: ContractRules }): Promise<void> {
  const { db, rules } = opts

  app.get('/api/subscriptions', async (request) => {
    // `id` wins when both are given, as in the legacy program (which then never read user_id).
    const id = optionalIntParam(request.query, 'id')
    if (id !== undefined) {
      const { rows } = await db.query(`SELECT ${COLUMNS} FROM subscriptions WHERE id = $1`, [id])
      if (rows.length === 0) throw new errors.SUBSCRIPTION_NOT_FOUND(id)
      return rows[0]
    }
    const userId = optionalIntParam(request.query, 'user_id')
    if (userId === undefined) return (await db.query(`SELECT ${COLUMNS} FROM subscriptions ORDER BY id`)).rows
    rules.check(request, 'user-id-filter-positive', { user_id: userId })
    return (await db.query(`SELECT ${COLUMNS} FROM subscriptions WHERE user_id = $1 ORDER BY id`, [userId])).rows
  })

  app.post<{ Body: SubscriptionInput }>('/api/subscriptions', { schema: { body: subscriptionInputSchema } }, async (request, reply) => {
    rules.check(request, 'subscription-plan-type-non-empty', request.body)
    rules.check(request, 'subscription-dates', request.body)
    const { user_id, plan_type, start_date, end_date } = request.body
    const subscription = await db.transaction(async (tx) => {
      const { rows } = await tx.query<{ id: number }>(
        `INSERT INTO subscriptions (user_id, plan_type, start_date, end_date) VALUES ($1, $2, $3, $4) RETURNING ${COLUMNS}`,
        [user_id, plan_type, start_date, end_date],
      )
      await recordSubscriptionCreated(tx, rows[0]!.id)
      return rows[0]
    })
    return reply.code(201).send(subscription)
  })

  methodNotAllowed(app, '/api/subscriptions', ['GET', 'POST'])
}
