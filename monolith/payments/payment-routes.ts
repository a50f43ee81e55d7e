import type { FastifyInstance } from 'fastify'
import type { Database } from '../../lib/db/database.ts'
import type { ContractRules } from '../../lib/contract/rules.ts'
import { errors } from '../../lib/errors.ts'
import { methodNotAllowed } from '../../lib/http/errors.ts'
import { optionalIntParam } from '../../lib/http/query.ts'
import { recordPaymentCreated } from '../events.ts'

interface PaymentInput {
  user_id: number
  amount: number
}

// What the contract (PaymentInput) requires, and the columns' limits where the legacy answered 500.
// A zero or negative amount is a rule, observed, not refused.
const paymentInputSchema = {
  type: 'object',
  required: ['user_id', 'amount'],
  properties: {
    // INTEGER; a user that does not exist is the foreign key's 400.
    user_id: { type: 'integer', minimum: -2_147_483_648, maximum: 2_147_483_647 },
    // DECIMAL(10, 2): PostgreSQL rounds to cents, then overflows at 10^8.
    amount: { type: 'number', exclusiveMinimum: -99_999_999.995, exclusiveMaximum: 99_999_999.995 },
  },
} as const

// amount is DECIMAL: cast so clients get a JSON number, as the Go program wrote it.
const COLUMNS = 'id, user_id, amount::float8 AS amount, timestamp'

export async function paymentRoutes(app: FastifyInstance, opts: { db: Database; rules: ContractRules }): Promise<void> {
  const { db, rules } = opts

  app.get('/api/payments', async (request) => {
    // `id` wins when both are given, as in the legacy program (which then never read user_id).
    const id = optionalIntParam(request.query, 'id')
    if (id !== undefined) {
      const { rows } = await db.query(`SELECT ${COLUMNS} FROM payments WHERE id = $1`, [id])
      if (rows.length === 0) throw new errors.PAYMENT_NOT_FOUND(id)
      return rows[0]
    }
    const userId = optionalIntParam(request.query, 'user_id')
    if (userId === undefined) return (await db.query(`SELECT ${COLUMNS} FROM payments ORDER BY id`)).rows
    rules.check(request, 'user-id-filter-positive', { user_id: userId })
    return (await db.query(`SELECT ${COLUMNS} FROM payments WHERE user_id = $1 ORDER BY id`, [userId])).rows
  })

  app.post<{ Body: PaymentInput }>('/api/payments', { schema: { body: paymentInputSchema } }, async (request, reply) => {
    rules.check(request, 'payment-amount-positive', request.body)
    const { user_id, amount } = request.body
    const payment = await db.transaction(async (tx) => {
      const { rows } = await tx.query<{ id: number }>(`INSERT INTO payments (user_id, amount) VALUES ($1, $2) RETURNING ${COLUMNS}`, [user_id, amount])
      await recordPaymentCreated(tx, rows[0]!.id)
      return rows[0]
    })
    return reply.code(201).send(payment)
  })

  methodNotAllowed(app, '/api/payments', ['GET', 'POST'])
}
