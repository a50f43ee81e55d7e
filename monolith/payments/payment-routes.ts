import type { FastifyInstance } from 'fastify'
import type { Database } from '../../lib/db/database.ts'
import { methodNotAllowed, notFound } from '../../lib/http/errors.ts'
import { optionalIdParam } from '../../lib/http/query.ts'
import { recordPaymentCreated } from '../events.ts'

interface PaymentInput {
  user_id: number
  amount: number
}

const paymentInputSchema = {
  type: 'object',
  required: ['user_id', 'amount'],
  properties: {
    user_id: { type: 'integer', minimum: 1, maximum: 2_147_483_647 },
    // DECIMAL(10, 2)
    amount: { type: 'number', exclusiveMinimum: 0, maximum: 99_999_999.99 },
  },
} as const

// amount is DECIMAL: cast so clients get a JSON number, as the Go program wrote it.
const COLUMNS = 'id, user_id, amount::float8 AS amount, timestamp'

export async function paymentRoutes(app: FastifyInstance, opts: { db: Database }): Promise<void> {
  const { db } = opts

  app.get('/api/payments', async (request) => {
    const id = optionalIdParam(request.query, 'id')
    const userId = optionalIdParam(request.query, 'user_id')
    // `id` wins when both are given, as in the legacy program.
    if (id !== undefined) {
      const { rows } = await db.query(`SELECT ${COLUMNS} FROM payments WHERE id = $1`, [id])
      if (rows.length === 0) throw notFound(`payment ${id} not found`)
      return rows[0]
    }
    if (userId !== undefined) return (await db.query(`SELECT ${COLUMNS} FROM payments WHERE user_id = $1 ORDER BY id`, [userId])).rows
    return (await db.query(`SELECT ${COLUMNS} FROM payments ORDER BY id`)).rows
  })

  app.post<{ Body: PaymentInput }>('/api/payments', { schema: { body: paymentInputSchema } }, async (request, reply) => {
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
