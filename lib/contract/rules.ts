// Business rules stricter than the legacy system. The legacy answered 2xx to requests that break
// them, so clients may send such requests today: each rule is observed (counted in
// contract_rule_violations_total{service,rule} and logged at info with the request id), and
// enforced (400 naming the fields) only when ENFORCE_RULES lists it. The one list of rules, used
// by the monolith and the movies service alike.
import type { FastifyRequest } from 'fastify'
import { Counter, type Registry } from 'prom-client'
import { env } from '../config.ts'
import { errors } from '../errors.ts'
import { compareRfc3339 } from './formats.ts'

interface Rule<Input> {
  /** The request fields the rule reads, named in the log line and in the 400 when enforced. */
  fields: readonly string[]
  /** What a request must do to follow the rule, as the 400 says it. */
  message: string
  isBroken(input: Input): boolean
}

const rule = <Input>(fields: readonly string[], message: string, isBroken: (input: Input) => boolean): Rule<Input> => ({ fields, message, isBroken })
const blank = (value: string) => value.trim() === ''

export const CONTRACT_RULES = {
  'subscription-dates': rule<{ start_date: string; end_date: string }>(
    ['start_date', 'end_date'],
    'end_date must be after start_date',
    (s) => compareRfc3339(s.end_date, s.start_date) <= 0,
  ),
  'subscription-plan-type-non-empty': rule<{ plan_type: string }>(['plan_type'], 'plan_type must not be empty', (s) => blank(s.plan_type)),
  'payment-amount-positive': rule<{ amount: number }>(['amount'], 'amount must be greater than 0', (p) => !(p.amount > 0)),
  'user-username-non-empty': rule<{ username: string }>(['username'], 'username must not be empty', (u) => blank(u.username)),
  'movie-title-non-empty': rule<{ title: string }>(['title'], 'title must not be empty', (m) => blank(m.title)),
  'movie-genres-non-empty': rule<{ genres?: string[] }>(['genres'], 'genres must not contain an empty name', (m) => (m.genres ?? []).some(blank)),
  'user-id-filter-positive': rule<{ user_id?: number }>(['user_id'], 'user_id must be a positive integer', (q) => q.user_id !== undefined && q.user_id < 1),
} as const

export type RuleName = keyof typeof CONTRACT_RULES
type InputOf<N extends RuleName> = (typeof CONTRACT_RULES)[N] extends Rule<infer Input> ? Input : never
export const RULE_NAMES = Object.keys(CONTRACT_RULES) as RuleName[]

/** The configuration every service checking the rules reads (spread into its config.ts spec). */
export const contractRulesEnv = {
  enforceRules: env.subsetOf('ENFORCE_RULES', RULE_NAMES, 'contract rules answered with 400 instead of only counted; default none'),
}

export interface ContractRules {
  /** Observes `name` on `input`: counted and logged when broken; a 400 when the rule is enforced. */
  check<N extends RuleName>(request: FastifyRequest, name: N, input: InputOf<N>): void
}

export function createContractRules(options: { service: string; enforce: readonly RuleName[]; registry: Registry }): ContractRules {
  const enforced = new Set(options.enforce)
  const violations = new Counter({
    name: 'contract_rule_violations_total',
    help: 'Requests breaking a contract rule stricter than the legacy system, by service and rule',
    labelNames: ['service', 'rule'] as const,
    registers: [options.registry],
  })
  // Every rule has its series from the start, so a rate over it is 0 rather than absent.
  for (const name of RULE_NAMES) violations.inc({ service: options.service, rule: name }, 0)

  return {
    check(request, name, input) {
      const definition = CONTRACT_RULES[name] as Rule<typeof input>
      if (!definition.isBroken(input)) return
      violations.inc({ service: options.service, rule: name })
      const enforcing = enforced.has(name)
      request.log.info({ rule: name, fields: definition.fields, enforced: enforcing }, `contract rule ${name} broken`)
      if (enforcing) throw new errors.CONTRACT_RULE_BROKEN(definition.message, name)
    },
  }
}
