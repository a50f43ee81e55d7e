import type { FastifyInstance } from 'fastify'
import type { Database } from '../../lib/db/database.ts'
import { badRequest, methodNotAllowed, notFound } from '../../lib/http/errors.ts'
import { optionalIdParam } from '../../lib/http/query.ts'
import { recordSubscriptionCreated } from '../events.ts'

interface SubscriptionInput {
  user_id: number
  plan_type: string
  start_date: string
  end_date: string
}

const subscriptionInputSchema = {
  type: 'object',
  required: ['user_id', 'plan_type', 'start_date', 'end_date'],
  properties: {
    user_id: { type: 'integer', minimum: 1, maximum: 2_147_483_647 },
    plan_type: { type: 'string', minLength: 1, maxLength: 50 },
    start_date: { type: 'string', format: 'date-time' },
    end_date: { type: 'string', format: 'date-time' },
  },
} as const

const COLUMNS = 'id, user_id, plan_type, start_date, end_date'

export async function subscriptionRoutes(app: FastifyInstance, opts: { db: Database }): Promise<void> {
  const { db } = opts

  app.get('/api/subscriptions', async (request) => {
    const id = optionalIdParam(request.query, 'id')
    const userId = optionalIdParam(request.query, 'user_id')
    if (id !== undefined) {
      const { rows } = await db.query(`SELECT ${COLUMNS} FROM subscriptions WHERE id = $1`, [id])
      if (rows.length === 0) throw notFound(`subscription ${id} not found`)
      return rows[0]
    }
    if (userId !== undefined) return (await db.query(`SELECT ${COLUMNS} FROM subscriptions WHERE user_id = $1 ORDER BY id`, [userId])).rows
    return (await db.query(`SELECT ${COLUMNS} FROM subscriptions ORDER BY id`)).rows
  })

  app.post<{ Body: SubscriptionInput }>('/api/subscriptions', { schema: { body: subscriptionInputSchema } }, async (request, reply) => {
    const { user_id, plan_type, start_date, end_date } = request.body
    if (Date.parse(end_date) <= Date.parse(start_date)) throw badRequest('end_date must be after start_date')
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
