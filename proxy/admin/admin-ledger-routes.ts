// GET /admin/ledger?route=&limit= — the rollout ledger, newest first (registered inside the
// admin API, so behind its token check).
import type { FastifyInstance } from 'fastify'
import { errors } from '../../lib/errors.ts'
import type { Ledger } from '../rollout/ledger.ts'

export interface AdminLedgerRoutesOptions {
  ledger: Ledger
}

export const LEDGER_PAGE = { default: 50, max: 1_000 }

export async function adminLedgerRoutes(app: FastifyInstance, opts: AdminLedgerRoutesOptions): Promise<void> {
  const { ledger } = opts
  app.get<{ Querystring: { route?: string; limit?: string } }>(
    '/admin/ledger',
    {
      schema: {
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: {
            route: { type: 'string', minLength: 1, maxLength: 63 },
            // Query values are strings (the app does not coerce types).
            limit: { type: 'string', pattern: '^[1-9][0-9]{0,3}$' },
          },
        },
      },
    },
    async (request) => {
      const { route } = request.query
      const limit = request.query.limit === undefined ? LEDGER_PAGE.default : Number(request.query.limit)
      if (limit > LEDGER_PAGE.max) throw new errors.QUERY_OUT_OF_RANGE('limit', 1, LEDGER_PAGE.max)
      try {
        return { store: ledger.kind, location: ledger.location, entries: await ledger.list({ route, limit }) }
      } catch (error) {
        request.log.error({ err: (error as Error).message, store: ledger.kind }, 'ledger unreadable')
        throw new errors.LEDGER_UNAVAILABLE(ledger.kind, (error as Error).message)
      }
    },
  )
}
