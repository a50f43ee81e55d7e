import type { FastifyInstance } from 'fastify'
import type { Database } from '../../lib/db/database.ts'
import type { ContractRules } from '../../lib/contract/rules.ts'
import { errors } from '../../lib/errors.ts'
import { methodNotAllowed } from '../../lib/http/errors.ts'
import { optionalIntParam } from '../../lib/http/query.ts'
import { recordUserCreated } from '../events.ts'

interface UserInput {
  username: string
  email: string
}

// What the contract (UserInput) requires, and the columns' limits where the legacy answered 500.
// `email` is an address, internationalised ones included (lib/contract/formats.ts).
const userInputSchema = {
  type: 'object',
  required: ['username', 'email'],
  properties: {
    username: { type: 'string', maxLength: 100 },
    email: { type: 'string', format: 'email', maxLength: 255 },
  },
} as const

const COLUMNS = 'id, username, email'

export async function userRoutes(app: FastifyInstance, opts: { db: Database; rules: ContractRules }): Promise<void> {
  const { db, rules } = opts

  app.get('/api/users', async (request) => {
    const id = optionalIntParam(request.query, 'id')
    if (id === undefined) return (await db.query(`SELECT ${COLUMNS} FROM users ORDER BY id`)).rows
    const { rows } = await db.query(`SELECT ${COLUMNS} FROM users WHERE id = $1`, [id])
    if (rows.length === 0) throw new errors.USER_NOT_FOUND(id)
    return rows[0]
  })

  app.post<{ Body: UserInput }>('/api/users', { schema: { body: userInputSchema } }, async (request, reply) => {
    rules.check(request, 'user-username-non-empty', request.body)
    const { username, email } = request.body
    // A duplicate username or email is a 409 (unique violation, mapped by the shared error handler).
    const user = await db.transaction(async (tx) => {
      const { rows } = await tx.query<{ id: number }>(`INSERT INTO users (username, email) VALUES ($1, $2) RETURNING ${COLUMNS}`, [username, email])
      await recordUserCreated(tx, rows[0]!.id)
      return rows[0]
    })
    return reply.code(201).send(user)
  })

  methodNotAllowed(app, '/api/users', ['GET', 'POST'])
}
